"""Bad or conflicting options are refused with one line before any work, and inputs are resolved
from what the user names (issue 13 items 2 and 3).

"Before any work" is shown by order, not by time: the artifacts here name a dataset that does not
exist, so a check that ran after loading the data would fail with a dataset error instead.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from skipcore.cli import main
from skipcore.errors import DatasetError
from skipcore.evaluate import resolve_data
from skipcore.golden.artifact import load, save
from skipcore.golden.random import random_artifact


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_line_refusal(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0], err
    for w in words:
        assert w in lines[0], (w, lines[0])


def small_artifact(rng, *, channels=1, classes=10, provenance=None):
    art = random_artifact(rng, channels=channels, layer_sizes=[5], kinds=["lif"], spans=[2], input_kind="real",
                          classes=classes, readout_mode="sequence")
    art.provenance = dict(provenance or {})
    return art


@pytest.fixture
def unreachable_model(tmp_path) -> Path:
    """An artifact whose training data does not exist: any option check must come before loading it."""
    art = small_artifact(np.random.default_rng(1), provenance={
        "dataset": "npz", "dataset_path": str(tmp_path / "gone.npz")})
    return save(art, tmp_path / "m.skc")


# ---------------------------------------------------------------------------------------------
# verify


@pytest.mark.parametrize("argv, words", [
    (["--board", "nosuchboard"], ["--board", "nosuchboard", "icebreaker"]),
    (["--limit", "0"], ["--limit", "0"]),
    (["--limit", "-3"], ["--limit"]),
    (["--cocotb-samples", "-1"], ["--cocotb-samples", "-1"]),
    (["--lanes", "0"], ["--lanes"]),
    (["--jobs", "0"], ["--jobs"]),
    (["--clock", "0"], ["--clock"]),
])
def test_verify_refuses_bad_options_first(unreachable_model, tmp_path, capsys, argv, words):
    out = tmp_path / "report"
    rc, _, err = run_cli(capsys, "verify", unreachable_model, "--out", out, "--no-progress", *argv)
    assert_one_line_refusal(rc, err, *words)
    assert not out.exists()


def test_verify_default_options_reach_the_data(unreachable_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path / "cache"))
    rc, _, err = run_cli(capsys, "verify", unreachable_model, "--out", tmp_path / "r", "--no-progress")
    assert_one_line_refusal(rc, err, "gone.npz", "--data")  # the fixture is what the tests above rely on


# ---------------------------------------------------------------------------------------------
# simulate, eval, generate


def test_simulate_random_with_data_is_refused(unreachable_model, tmp_path, capsys):
    rc, _, err = run_cli(capsys, "simulate", unreachable_model, "--random", "--data", "mnist1d", "--fast")
    assert_one_line_refusal(rc, err, "--random", "--data")


@pytest.mark.parametrize("command, argv, words", [
    ("simulate", ["--samples", "0"], ["--samples"]),
    ("simulate", ["--lanes", "0"], ["--lanes"]),
    ("simulate", ["--random", "--steps", "0"], ["--steps"]),
    ("simulate", ["--steps", "50"], ["--steps", "--random"]),  # the provenance's dataset sets the length
    ("simulate", ["--data", "mnist1d", "--steps", "50"], ["--steps", "--random"]),
    ("generate", ["--lanes", "2", "--data", "mnist1d", "--steps", "50", "-o", "G"], ["--steps", "--data"]),
    ("eval", ["--limit", "0"], ["--limit"]),
    ("generate", ["--lanes", "0", "-o", "G"], ["--lanes"]),
    ("generate", ["--lanes", "2", "--samples", "0", "-o", "G"], ["--samples"]),
])
def test_commands_refuse_bad_counts(unreachable_model, tmp_path, capsys, monkeypatch, command, argv, words):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, command, unreachable_model, *argv)
    assert_one_line_refusal(rc, err, *words)
    assert not (tmp_path / "G").exists()


# ---------------------------------------------------------------------------------------------
# train


@pytest.mark.parametrize("argv, words", [
    (["--spans", "2,2", "--max-span", "4"], ["--spans", "--max-span"]),
    (["--recurrence", "none", "--spans", "2,2"], ["--recurrence none", "--spans 2,2"]),
    (["--recurrence", "asrc", "--spans", "2,2"], ["--recurrence asrc"]),
    (["--recurrence", "src", "--max-span", "3"], ["--max-span", "--recurrence src"]),
    (["--limit", "0"], ["--limit"]),
    (["--epochs", "0"], ["--epochs"]),
])
def test_train_refuses_conflicting_options(tmp_path, capsys, argv, words):
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, "train", "--out", out, "--no-progress", *argv)
    assert_one_line_refusal(rc, err, *words)
    assert not out.exists()


def test_train_points_a_user_npz_to_dataset_npz(tmp_path, capsys):
    data = tmp_path / "my.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((30, 40, 1)).astype(np.float32), y=np.arange(30) % 10)  # no x_test
    rc, _, err = run_cli(capsys, "train", "--preset", "mnist1d-lif-src", "--data", data, "--out", tmp_path / "r")
    assert_one_line_refusal(rc, err, "--dataset npz")


def test_train_accepts_mnist1d_arrays_as_npz():
    from argparse import Namespace

    from skipcore.commands.train import check_data_option
    from skipcore.datasets import _cache_dir, load_dataset

    load_dataset("mnist1d", limit=5)  # makes sure the cached arrays exist
    cached = _cache_dir() / "mnist1d-default-seed42.npz"
    check_data_option(Namespace(data=str(cached), dataset=None, preset="mnist1d-lif-src"))  # no error


def test_train_qat_run_relative_data_and_force(tmp_path, capsys, monkeypatch):
    """One tiny real run covers: --data relative to the working folder is stored absolute in the
    provenance (eval from elsewhere finds it), and --force without --qat removes the earlier
    run's model.skc (skipcore's own), keeping the user's files."""
    pytest.importorskip("torch")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    work = tmp_path / "work"
    work.mkdir()
    rng = np.random.default_rng(3)
    x = rng.random((60, 8, 2)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) > 0.5).astype(np.int64)
    np.savez(work / "mine.npz", x=x, y=y, x_test=x[:20], y_test=y[:20])
    monkeypatch.chdir(work)
    common = ["train", "--preset", "mnist1d-lif-src", "--dataset", "npz", "--data", "mine.npz", "--layers", "6",
              "--epochs", "1", "--batch", "16", "--threads", "1", "--no-progress", "--out", "run"]
    rc, _, err = run_cli(capsys, *common, "--qat", "--qat-epochs", "1")
    assert rc == 0, err
    run = work / "run"
    art = load(run / "model.skc")
    assert os.path.isabs(art.provenance["dataset_path"])
    (run / "notes.txt").write_text("mine")

    monkeypatch.chdir(tmp_path)  # another folder: the provenance path still resolves
    rc, out, err = run_cli(capsys, "eval", run / "model.skc", "--no-progress", "--json", tmp_path / "e.json")
    assert rc == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["samples"] == 20

    monkeypatch.chdir(work)
    rc, _, err = run_cli(capsys, *common)
    assert_one_line_refusal(rc, err, "--force")
    rc, _, err = run_cli(capsys, *common, "--force")
    assert rc == 0, err
    assert not (run / "model.skc").exists() and not (run / "qat_summary.json").exists()
    assert (run / "best.pt").is_file() and (run / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("argv, words", [
    (["--board", "nosuchboard"], ["--board", "nosuchboard"]),
    (["--lanes", "0"], ["--lanes"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--qat-epochs", "0"], ["--qat-epochs"]),
    (["--preset", "nosuchpreset"], ["nosuchpreset"]),
])
def test_demo_refuses_bad_options_before_training(tmp_path, capsys, argv, words):
    out = tmp_path / "demo"
    rc, _, err = run_cli(capsys, "demo", "--quick", "--out", out, "--no-progress", *argv)
    assert_one_line_refusal(rc, err, *words)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# inputs: the data named by the user, read in its own format


def test_mnist1d_model_runs_on_a_user_npz_of_the_same_shape(tmp_path, capsys):
    rng = np.random.default_rng(5)
    art = small_artifact(rng, provenance={"dataset": "mnist1d", "float_accuracy": 0.9})
    model = save(art, tmp_path / "m.skc")
    data = tmp_path / "user.npz"
    np.savez(data, x=rng.random((25, 40, 1)).astype(np.float32), y=np.arange(25) % 10, classes=10)
    rc, out, err = run_cli(capsys, "eval", model, "--data", data, "--no-progress", "--json", tmp_path / "r.json")
    assert rc == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["dataset"] == "npz" and result["samples"] == 5  # the 20 % test split carved from 25


def test_quantize_reads_a_user_npz_for_an_mnist1d_checkpoint(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "train", "--preset", "mnist1d-lif-src", "--limit", "40", "--layers", "4",
                         "--epochs", "1", "--threads", "1", "--no-progress", "--out", "run")
    assert rc == 0, err
    rng = np.random.default_rng(2)
    np.savez("user.npz", x=rng.random((30, 40, 1)).astype(np.float32), y=np.arange(30) % 10, classes=10)
    rc, out, err = run_cli(capsys, "quantize", "run/best.pt", "--data", "user.npz", "-o", "m.skc", "--threads", "1")
    assert rc == 0, err
    assert "accuracy on val" in out


def test_a_relative_provenance_path_that_is_gone_names_the_fix(tmp_path):
    with pytest.raises(DatasetError, match="--data PATH"):
        resolve_data(None, {"dataset": "npz", "dataset_path": "runs/not-here.npz"})


def test_an_unknown_path_format_names_the_formats(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError, match=".npz file, an ECG folder"):
        resolve_data(str(tmp_path / "stuff"), {"dataset": "mnist1d"})


def test_verify_labels_the_training_time_float_accuracy():
    from skipcore.flow import _training_float_accuracy
    from skipcore.report import VerifyReport, rows

    training = _training_float_accuracy({"dataset": "mnist1d", "float_accuracy": 0.917,
                                         "float_accuracy_split": "test"})
    report = VerifyReport(model="m.skc", dataset="npz", samples=5, steps=40,
                          accuracy={"float": None, "golden": 0.5, "rtl": 0.5}, mismatches={}, cycles={}, build={},
                          throughput={}, extra={"float_training": training})
    text = dict(rows(report))["accuracy float"]
    assert "not measured here" in text and "training time 91.70 %" in text and "mnist1d test" in text
    assert report.to_json()["accuracy"]["float"] is None
    assert report.to_json()["float_training"]["accuracy"] == pytest.approx(0.917)


@pytest.mark.parametrize("command", [["quantize", "missing.pt"], ["import", "missing.pth", "-o", "m.skc"],
                                     ["sweep", "missing.pt", "-o", "S"], ["train", "--qat", "--out", "R"]])
def test_a_bad_fold_is_refused_in_one_line(tmp_path, capsys, monkeypatch, command):
    """``--fold`` (CONTRACT.md section 7) takes float or decay; anything else is argparse's usage and one
    error line naming both values, before any work (the inputs do not exist: nothing was read)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in (*command, "--fold", "quant")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert errors == [err.strip().splitlines()[-1]]
    assert all(w in errors[0] for w in ("--fold", "'quant'", "'float'", "'decay'")), errors
    assert list(tmp_path.iterdir()) == []


def test_fold_without_qat_is_refused(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "train", "--out", tmp_path / "run", "--no-progress", "--fold", "decay")
    assert_one_line_refusal(rc, err, "--qat")
    assert not (tmp_path / "run").exists()
