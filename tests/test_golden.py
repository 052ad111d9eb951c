"""The golden model against traces computed by hand, and the artifact's schema checks."""
import io
import json
import zipfile

import numpy as np
import pytest

from skipcore.golden import artifact as A
from skipcore.golden.artifact import Artifact, ArtifactError, InputSpec, LayerSpec, ReadoutSpec, Widths
from skipcore.golden.contract import decay, quantize_input
from skipcore.golden import reference
from skipcore.golden.model import run, run_batched
from skipcore.golden.random import random_artifact, random_inputs


def i64(*values):
    return np.array(values, dtype=np.int64)


def lif_example() -> Artifact:
    """Two LIF neurons, W4 S8 D2; neuron 1 saturates at the bottom of the 8-bit range."""
    layer = LayerSpec(kind="lif", span=0, w_in=np.array([[7], [-7]]), bias=i64(3, -100),
                      threshold=i64(10, 10), decay=i64(2, 3), decay_mode="mult", reset="soft")
    readout = ReadoutSpec(w=np.array([[1, 0], [0, 1]]), bias=i64(0, 1), kind="sum", mode="sequence")
    return Artifact(InputSpec(1, "spike", 1, 0), Widths(4, 8, 8, 2), [layer], readout).validate()


def test_lif_known_answer():
    art = lif_example()
    x = np.array([1, 1, 0, 1], dtype=np.float32).reshape(1, 4, 1)
    res = run(art, x, traces=True)
    # neuron 0: H = 10, 10, 3, (2*3)>>2 + 10 = 11 -> spikes 1,1,0,1 and V = 0,0,3,1 (soft reset)
    # neuron 1: H = -107, (3*-107)>>2 - 107 = -81 - 107 = -188 -> -128 (saturates), then
    #           (3*-128)>>2 - 100 = -196 -> -128, (3*-128)>>2 - 107 = -203 -> -128
    assert res.spikes[0][0].tolist() == [[1, 0], [1, 0], [0, 0], [1, 0]]
    assert res.states[0]["v"][0].tolist() == [[0, -107], [0, -128], [3, -128], [1, -128]]
    assert res.saturation == {"membrane": 3}
    # sum readout: m = [1,1], [2,2], [2,3], [3,4]; sequence prediction = argmax of the last = 1
    assert res.readout[0].tolist() == [[1, 1], [2, 2], [2, 3], [3, 4]]
    assert res.predictions.tolist() == [1]


def test_lif_hard_reset_keeps_nothing_above_threshold():
    art = lif_example()
    art.layers[0].reset = "hard"
    art.layers[0].bias = i64(8, 0)  # H = 15 >= 10: soft leaves 5, hard leaves 0
    x = np.ones((1, 2, 1), dtype=np.float32)
    v_hard = run(art, x, traces=True).states[0]["v"][0, :, 0].tolist()
    art.layers[0].reset = "soft"
    v_soft = run(art, x, traces=True).states[0]["v"][0, :, 0].tolist()
    assert v_hard == [0, 0]
    assert v_soft == [5, (2 * 5 >> 2) + 15 - 10]


def alif_example(trace_bits: int = 4) -> Artifact:
    """Two ALIF neurons, W4 S8 D4, alpha = rho = 0.5, b0 = 4, beta = 1.0 (16/16).

    ``trace_bits`` T = D = 4 by default (a version 1/2 artifact's trace); with rho = 0.5 every
    T >= D gives the same B (the trace just carries T - D more zero bits).
    """
    layer = LayerSpec(kind="alif", span=0, w_in=np.array([[7], [7]]), bias=i64(0, 125),
                      threshold=i64(4, 4), decay=i64(8, 8), rho=i64(8, 8), beta=i64(16, 16),
                      decay_mode="mult")
    readout = ReadoutSpec(w=np.array([[1, 0], [0, 1]]), bias=i64(0, 0), kind="leaky",
                          mode="per_step", decay=i64(8, 0))
    return Artifact(InputSpec(1, "spike", 1, 0), Widths(4, 8, 8, 4, trace_bits), [layer], readout).validate()


def test_alif_known_answer_with_late_reset_and_saturation():
    art = alif_example()
    x = np.array([1, 1, 1, 0, 0], dtype=np.float32).reshape(1, 5, 1)
    res = run(art, x, traces=True)
    u, b = res.states[0]["u"][0], res.states[0]["b"][0]
    # neuron 0 by hand:
    # t0: b=0, B=4,  u=0+7=7 > 4 -> S=1
    # t1: q=1: b=0+(16-8)=8, B=4+8=12, u=(8*7)>>4 + 7 - 12 = 3-5 = -2 -> S=0   (reset one step late)
    # t2: b=(8*8)>>4=4, B=8, u=(8*-2)>>4 + 7 = -1+7 = 6 -> S=0
    # t3: b=2, B=6, u=(8*6)>>4 = 3 -> S=0
    # t4: b=1, B=5, u=(8*3)>>4 = 1 -> S=0
    assert res.spikes[0][0, :, 0].tolist() == [1, 0, 0, 0, 0]
    assert u[:, 0].tolist() == [7, -2, 6, 3, 1]
    assert b[:, 0].tolist() == [0, 8, 4, 2, 1]
    # neuron 1 saturates at +127 every step: 132, 63+132-12, 63+132-16, 63+125-18, 63+125-19
    assert u[:, 1].tolist() == [127] * 5
    assert b[:, 1].tolist() == [0, 8, 12, 14, 15]
    assert res.spikes[0][0, :, 1].tolist() == [1] * 5
    assert res.saturation == {"membrane": 5}
    # leaky readout class 0 decays by half, class 1 forgets at once (decay 0)
    assert res.readout[0].tolist() == [[1, 1], [0, 1], [0, 1], [0, 1], [0, 1]]
    assert res.predictions[0].tolist() == [0, 1, 1, 1, 1]  # tie at t0 -> lowest class


def test_alif_trace_fraction_bits_by_hand():
    """Section 3.4: b keeps T fraction bits. With rho = 15/16 at D = 4 a D-bit trace loses one
    spike's increment (1/16) after one step; with T = 8 it decays as rho**t does."""
    x = np.array([1, 0, 0, 0, 0], dtype=np.float32).reshape(1, 5, 1)
    for t_bits, want in ((4, [0, 1, 0, 0, 0]), (8, [0, 16, 15, 14, 13])):
        art = alif_example(t_bits)
        art.layers[0].rho[:] = 15
        # b_1 = (16 - 15) << (T - 4); then (15 * b) >> 4: 16, 15, 14 (14.06), 13 (13.125)
        for model in (run, reference.run):
            b = model(art, x, traces=True).states[0]["b"][0, :, 0]
            assert b.tolist() == want
    # the threshold reads b at T bits: B = b0 + (beta * b) >> T, with beta = 16 (1.0): 4 + 1 at t = 1
    res = run(alif_example(8), x, traces=True)
    assert res.states[0]["b"][0, :, 0].tolist() == [0, 128, 64, 32, 16]


def test_floor_shift_and_shift_decay():
    v = i64(-5, -1, 0, 1, 5)
    assert decay(v, i64(1), 1, "mult").tolist() == [-3, -1, 0, 0, 2]  # floor(-2.5) = -3
    assert decay(v, i64(1), 1, "shift").tolist() == [-2, 0, 0, 1, 3]  # v - floor(v/2)


def test_input_quantisation_rounds_half_up_and_clamps():
    spec = InputSpec(1, "real", 4, 1)  # Q2.1 in [-8, 7] quarter... steps of 0.5
    x = np.array([0.25, -0.25, 0.74, 3.5, 100.0, -100.0])
    assert quantize_input(spec, x).tolist() == [1, 0, 1, 7, 7, -8]


def test_span_delivers_a_spike_exactly_k_steps_later():
    for span in (1, 3, 7):
        # neuron 0 fires once (at t=0, driven by the input); neuron 1 only listens to neuron 0's
        # recurrent weight, with a threshold it reaches only when that replay arrives.
        layer = LayerSpec(kind="lif", span=span, w_in=np.array([[20], [0]]), bias=i64(0, 0),
                          threshold=i64(10, 5), decay=i64(0, 0),
                          w_rec=np.array([[0, 0], [7, 0]]), decay_mode="mult", reset="hard")
        readout = ReadoutSpec(w=np.ones((1, 2), dtype=np.int64), bias=i64(0))
        art = Artifact(InputSpec(1, "spike", 1, 0), Widths(8, 16, 16, 4), [layer], readout).validate()
        x = np.zeros((1, 12, 1), dtype=np.float32)
        x[0, 0, 0] = 1
        spikes = run(art, x, traces=True).spikes[0][0]
        assert np.flatnonzero(spikes[:, 1]).tolist() == [span]


def test_random_artifacts_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(40):
        art = random_artifact(rng)
        path = A.save(art, tmp_path / f"m{i}.skc")
        assert A.load(path) == art


def test_artifact_digest_is_the_content_not_the_file(tmp_path):
    """The model's identity (core.json, the board's artifact ID): a file saved twice keeps it, any
    change of an exponent, a width or a weight changes it."""
    import copy
    import dataclasses

    art = random_artifact(np.random.default_rng(3), layer_sizes=[5], weight_exps=True)
    first = A.save(art, tmp_path / "a.skc")
    second = A.save(A.load(first), tmp_path / "b.skc")
    digest = A.artifact_digest(art)
    assert A.artifact_digest(A.load(first)) == A.artifact_digest(A.load(second)) == digest
    def with_layer(**changes):
        layer = copy.copy(art.layers[0])
        vars(layer).update(changes)
        return dataclasses.replace(art, layers=[layer])

    readout = copy.copy(art.readout)
    readout.weight_exp += 1
    changed = [
        with_layer(input_exp=art.layers[0].input_exp + 1),
        with_layer(w_in=art.layers[0].w_in ^ 1),
        dataclasses.replace(art, widths=dataclasses.replace(art.widths, trace_bits=art.widths.decay_bits)),
        dataclasses.replace(art, readout=readout),
    ]
    digests = {A.artifact_digest(other) for other in changed}
    assert digest not in digests and len(digests) == len(changed)


def test_batched_equals_whole(tmp_path):
    rng = np.random.default_rng(2)
    art = random_artifact(rng, layer_sizes=[6, 5])
    x = random_inputs(rng, art, 10, 9)
    whole = run(art, x)
    parts = run_batched(art, x, batch_size=3)
    assert np.array_equal(whole.readout, parts.readout)
    assert np.array_equal(whole.predictions, parts.predictions)
    assert whole.saturation == parts.saturation


def test_shape_mismatch_of_inputs_is_named():
    with pytest.raises(ValueError, match=r"expected \(batch, steps, 1\)"):
        run(lif_example(), np.zeros((2, 3, 4)))


# ---- bad artifacts: each gets its own clear error ---------------------------------------------


@pytest.fixture
def saved(tmp_path):
    return A.save(lif_example(), tmp_path / "model.skc")


def rewrite(path, header_fn=None, arrays_fn=None):
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("header.json"))
        arrays = {n: np.load(io.BytesIO(zf.read(n))) for n in zf.namelist() if n.endswith(".npy")}
    if header_fn:
        header_fn(header)
    if arrays_fn:
        arrays_fn(arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("header.json", json.dumps(header))
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            zf.writestr(name, buf.getvalue())
    return path


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="corrupt or truncated"):
        A.load(saved)


def test_not_an_artifact(tmp_path):
    p = tmp_path / "x.skc"
    p.write_bytes(b"\x80\x04pickle?")
    with pytest.raises(ArtifactError, match="corrupt or truncated"):
        A.load(p)


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="no such artifact file"):
        A.load(tmp_path / "nope.skc")


def test_wrong_version(saved):
    rewrite(saved, header_fn=lambda h: h.update(version=99))
    with pytest.raises(ArtifactError, match=r"^version: .*version 99.*reads versions 1, 2, 3;"):
        A.load(saved)


def _to_version_2(header):
    header["version"] = 2
    del header["widths"]["trace_bits"]


def test_version_2_alif_artifact_keeps_its_d_bit_trace(tmp_path):
    """A version 2 file has no trace_bits: its ALIF traces keep D fraction bits, as when it was made."""
    art = alif_example(8)
    art.layers[0].rho[:] = 15
    path = rewrite(A.save(art, tmp_path / "v2.skc"), header_fn=_to_version_2)
    old = A.load(path)
    assert old.widths.trace_bits == old.widths.decay_bits == 4
    x = np.array([1, 0, 0, 0, 0], dtype=np.float32).reshape(1, 5, 1)
    assert run(old, x, traces=True).states[0]["b"][0, :, 0].tolist() == [0, 1, 0, 0, 0]
    # saved again it is a version 3 file that says T = 4 and means the same
    again = A.load(A.save(old, tmp_path / "v3.skc"))
    assert again == old
    with zipfile.ZipFile(tmp_path / "v3.skc") as zf:
        header = json.loads(zf.read("header.json"))
    assert header["version"] == 3 and header["widths"]["trace_bits"] == 4


def test_trace_bits_header_checks(tmp_path):
    path = A.save(alif_example(8), tmp_path / "m.skc")
    rewrite(path, header_fn=lambda h: h.update(version=2))
    with pytest.raises(ArtifactError, match=r"^widths\.trace_bits: a version 2 artifact has no trace_bits; set version 3"):
        A.load(path)
    path = A.save(alif_example(8), tmp_path / "m2.skc")
    rewrite(path, header_fn=lambda h: h["widths"].pop("trace_bits"))
    with pytest.raises(ArtifactError, match=r"^widths\.trace_bits: missing from the header"):
        A.load(path)
    for bad in (3, 13):  # below D = 4, above min(D + 8, 60 - max(S, R)) = 12
        art = alif_example(8)
        with pytest.raises(ArtifactError, match=r"^widths\.trace_bits: .* outside the allowed range"):
            Artifact(art.input, Widths(4, 8, 8, 4, bad), art.layers, art.readout).validate()
    assert Widths(16, 32, 40, 16).trace_bits == 20 and Widths(8, 16, 24, 8).trace_bits == 16


def _drop_exponents(header):
    header["version"] = 1
    for layer in header["layers"]:
        del layer["input_exp"], layer["recurrent_exp"]
    del header["readout"]["weight_exp"]
    del header["widths"]["trace_bits"]


def test_version_1_artifact_loads_with_zero_exponents(saved):
    """A version 1 file (no exponent fields) loads with every weight exponent 0 and runs the same."""
    before = A.load(saved)
    rewrite(saved, header_fn=_drop_exponents)
    old = A.load(saved)
    assert old.widths.trace_bits == old.widths.decay_bits  # (no ALIF layer here: T changes nothing)
    before.widths = Widths(4, 8, 8, 2, trace_bits=2)
    assert old == before and [(l.input_exp, l.recurrent_exp) for l in old.layers] == [(0, 0)] * len(old.layers)
    assert old.readout.weight_exp == 0


def test_version_1_header_with_an_exponent_is_refused(saved):
    def v1_with_exp(header):
        _drop_exponents(header)
        header["layers"][0]["input_exp"] = 2
    rewrite(saved, header_fn=v1_with_exp)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.input_exp: a version 1 artifact has no weight exponents"):
        A.load(saved)


def test_version_2_header_needs_its_exponents(saved):
    rewrite(saved, header_fn=lambda h: h["readout"].pop("weight_exp"))
    with pytest.raises(ArtifactError, match=r"^readout\.weight_exp: missing from the header"):
        A.load(saved)


def test_exponent_out_of_range_is_named(saved):
    rewrite(saved, header_fn=lambda h: h["layers"][0].update(input_exp=A.MAX_WEIGHT_EXP + 1))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.input_exp: .* outside the allowed range"):
        A.load(saved)


def test_weight_exponent_shifts_the_weight_into_the_accumulator():
    """Section 3.1: w_in = 3 with input_exp 2 adds 12 per input spike; readout w = 1 with weight_exp 3 adds 8."""
    art = lif_example()
    layer = art.layers[0]
    layer.w_in[:] = 3
    layer.bias[:] = 0
    layer.threshold[:] = i64(12, 13)
    layer.input_exp = 2
    art.readout.weight_exp = 3
    art.validate()
    res = run(art, np.ones((1, 2, 1)), traces=True)
    # neuron 0: H = 12 >= 12 each step (spike, V = 0); neuron 1: H = 12, then (3*12 >> 2) + 12 = 21 >= 13
    assert res.spikes[0][0].tolist() == [[1, 0], [1, 1]]
    assert res.states[0]["v"][0].tolist() == [[0, 12], [0, 8]]
    # readout: each spike adds 1 << 3 = 8 to its class; bias (0, 1) every step
    assert res.readout[0].tolist() == [[8, 1], [16, 10]]
    assert reference.run(art, np.ones((1, 2, 1)), traces=True).readout[0].tolist() == [[8, 1], [16, 10]]


def test_shape_mismatch(saved):
    def grow(arrays):
        arrays["arrays/layers.0.threshold.npy"] = np.array([10, 10, 10])
    rewrite(saved, arrays_fn=grow)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.threshold: shape mismatch: expected \(2,\), got \(3,\)"):
        A.load(saved)


def test_weight_beyond_its_bit_width(saved):
    def big(arrays):
        arrays["arrays/layers.0.w_in.npy"] = np.array([[8], [-7]])  # 4-bit symmetric max is 7
    rewrite(saved, arrays_fn=big)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.w_in: value 8 does not fit 4-bit weights"):
        A.load(saved)


def test_negative_decay(saved):
    rewrite(saved, arrays_fn=lambda a: a.update({"arrays/layers.0.decay.npy": np.array([2, -1])}))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.decay: value -1 does not fit Q0.2 decays"):
        A.load(saved)


def test_unknown_neuron_kind(saved):
    rewrite(saved, header_fn=lambda h: h["layers"][0].update(kind="izhikevich"))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.kind: unknown value 'izhikevich'; expected one of lif, alif"):
        A.load(saved)


def test_missing_array(saved):
    def drop(arrays):
        del arrays["arrays/layers.0.bias.npy"]
    rewrite(saved, arrays_fn=drop)
    with pytest.raises(ArtifactError, match=r"layers\[0\]\.bias: array missing"):
        A.load(saved)


def test_impossible_width():
    art = lif_example()
    art.widths = Widths(17, 8, 8, 2)
    with pytest.raises(ArtifactError, match=r"^widths\.weight_bits: 17 is outside the allowed range \[2, 16\]"):
        art.validate()


def test_save_refuses_to_overwrite(saved):
    with pytest.raises(ArtifactError, match="file exists"):
        A.save(lif_example(), saved)
    A.save(lif_example(), saved, overwrite=True)


def test_artifact_is_not_a_pickle(saved):
    """Every array the LIF example has is stored as a plain integer .npy, loadable without pickle."""
    expected = {f"arrays/layers.0.{n}.npy" for n in ("w_in", "bias", "threshold", "decay")}
    expected |= {"arrays/readout.w.npy", "arrays/readout.bias.npy"}
    with zipfile.ZipFile(saved) as zf:
        assert set(zf.namelist()) == expected | {"header.json"}
        for name in sorted(expected):
            arr = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
            assert arr.dtype == np.int64, name


# ---- loading checks dtypes and sizes before it converts or allocates --------------------------


def npy_bytes(dtype: str, shape: tuple, data: bytes = b"") -> bytes:
    """An .npy file whose header claims ``dtype`` and ``shape``, followed by ``data`` (maybe less)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def replace_member(path, member: str, payload: bytes, header_fn=None):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[member] = payload
    if header_fn:
        header = json.loads(members["header.json"])
        header_fn(header)
        members["header.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_float_array_is_refused_not_truncated(saved):
    """Before: astype(int64) turned 2.7 into 2 and NaN into -2**63; now the dtype is refused."""
    def floats(arrays):
        arrays["arrays/layers.0.threshold.npy"] = np.array([10.0, np.nan])
    rewrite(saved, arrays_fn=floats)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.threshold: must hold integers, got dtype float64 "
                                            r"\(expected int64\)"):
        A.load(saved)


@pytest.mark.parametrize("dtype", ["<c16", "|b1", "<U3", "<M8[s]"])
def test_other_non_integer_dtypes_are_refused(saved, dtype):
    arr = np.zeros(2, dtype=dtype)
    rewrite(saved, arrays_fn=lambda a: a.update({"arrays/layers.0.decay.npy": arr}))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.decay: must hold integers, got dtype"):
        A.load(saved)


def test_object_array_is_refused_before_unpickling(saved):
    payload = npy_bytes("|O", (2,), b"\x80\x04N.")
    replace_member(saved, "arrays/layers.0.bias.npy", payload)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.bias: must hold integers, got dtype object"):
        A.load(saved)


def test_narrow_integer_dtypes_load_as_int64(saved):
    def narrow(arrays):
        arrays["arrays/layers.0.w_in.npy"] = np.array([[7], [-7]], dtype=">i2")
        arrays["arrays/layers.0.decay.npy"] = np.array([2, 3], dtype=np.uint8)
    rewrite(saved, arrays_fn=narrow)
    art = A.load(saved)
    assert art == lif_example()
    assert all(getattr(art.layers[0], n).dtype == np.int64 for n in ("w_in", "decay"))


def test_huge_uint64_is_not_wrapped(saved):
    big = np.array([2**63 + 5, 3], dtype=np.uint64)  # astype(int64) would wrap to a negative number
    rewrite(saved, arrays_fn=lambda a: a.update({"arrays/layers.0.decay.npy": big}))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.decay: value 9223372036854775813 does not fit"):
        A.load(saved)


def test_huge_claimed_shape_is_refused_before_allocation(saved):
    """An .npy header claiming 10**12 elements (8 TB) gets an error, not a MemoryError."""
    replace_member(saved, "arrays/layers.0.w_in.npy", npy_bytes("<i8", (10**6, 10**6), b"\0" * 16))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.w_in: shape mismatch: expected \(2, 1\), "
                                            r"got \(1000000, 1000000\)"):
        A.load(saved)


def test_huge_topology_is_refused_by_size(saved):
    """The header itself claims a huge layer, and the arrays agree: the byte limit refuses it."""
    n = A.MAX_UNITS

    def huge(header):  # a second layer of 2**20 neurons; its (2**20, 2**20) w_rec is 8 TiB
        header["layers"].append(dict(header["layers"][0], neurons=n, span=1))

    replace_member(saved, "arrays/layers.1.w_rec.npy", npy_bytes("<i8", (n, n), b"\0" * 64), header_fn=huge)
    with pytest.raises(ArtifactError, match=r"^layers\[1\]\.w_rec: 8796093022208 bytes of data exceed the "
                                            r"artifact limit"):
        A.load(saved)


def test_header_sizes_beyond_the_unit_limit_are_refused(saved):
    rewrite(saved, header_fn=lambda h: h["layers"][0].update(neurons=10**12))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.neurons: 1000000000000 is outside the allowed range"):
        A.load(saved)
    A.save(lif_example(), saved, overwrite=True)
    rewrite(saved, header_fn=lambda h: h["readout"].update(classes="2"))
    with pytest.raises(ArtifactError, match=r"^readout\.classes: must be an integer, got '2'"):
        A.load(saved)


def test_array_shorter_than_its_header_claims(saved):
    replace_member(saved, "arrays/layers.0.bias.npy", npy_bytes("<i8", (2,), b"\0" * 8))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.bias: .* holds 8 data bytes but its header promises 16"):
        A.load(saved)


def test_zip_entry_that_lies_about_its_size(saved):
    """A zip-bomb shape: the central directory claims 1 GB for a member; nothing is inflated."""
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("arrays/layers.0.bias.npy")
    # patch the uncompressed size in the central directory record (offset 24 from its signature)
    name = info.filename.encode()
    cd = next(i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02" and data[i + 46:i + 46 + len(name)] == name)
    data[cd + 24 : cd + 28] = (10**9).to_bytes(4, "little")
    saved.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.bias: .* holds 999999.* data bytes but its header promises 16"):
        A.load(saved)


def test_oversized_header_json_is_refused(saved):
    rewrite(saved, header_fn=lambda h: h.update(provenance={"pad": "x" * (A.MAX_HEADER_BYTES + 1)}))
    with pytest.raises(ArtifactError, match=r"^header\.json: \d+ bytes, over the limit"):
        A.load(saved)


def test_from_parts_checks_dtypes_before_anything(saved):
    with zipfile.ZipFile(saved) as zf:
        header = json.loads(zf.read("header.json"))
        arrays = {n[len("arrays/"):-len(".npy")]: np.load(io.BytesIO(zf.read(n))) for n in zf.namelist()
                  if n.endswith(".npy")}
    assert A.from_parts(header, arrays) == lif_example()
    arrays["readout.bias"] = arrays["readout.bias"].astype(np.float32)
    with pytest.raises(ArtifactError, match=r"^readout\.bias: must hold integers, got dtype float32"):
        A.from_parts(header, arrays)
    arrays["readout.bias"] = [0, 1]
    with pytest.raises(ArtifactError, match=r"^readout\.bias: must hold integers, got list"):
        A.from_parts(header, arrays)


def test_damaged_npy_header_length(saved):
    """Found by the fuzz test: a header length that cuts the header dict made numpy's tokenizer raise."""
    with zipfile.ZipFile(saved) as zf:
        data = bytearray(zf.read("arrays/layers.0.bias.npy"))
    data[8] = 0x38  # header length 56 instead of 118: the dict literal ends mid-way
    replace_member(saved, "arrays/layers.0.bias.npy", bytes(data))
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.bias: arrays/layers\.0\.bias\.npy is not a valid \.npy "
                                            r"array \(damaged \.npy header"):
        A.load(saved)
