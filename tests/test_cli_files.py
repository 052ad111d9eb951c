"""The file policy (skipcore/outputs.py) through the real commands: nothing of the user's is
replaced or deleted, --force replaces only what skipcore wrote, an output is never an input, and
every bad output path gets one line, never a traceback.

Unwritable locations: the tests run as root, where chmod does not stop writes, so they use a path
whose parent is a file, and /proc (a real file system that takes no new files), not os.access
monkeypatching.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from skipcore.cli import main
from skipcore.golden.artifact import save
from skipcore.golden.random import random_artifact
from skipcore.outputs import MANIFEST, OutputError, OutputPlan, atomic_path, atomic_write_text


def run_cli(capsys, *argv) -> tuple[int, str]:
    """Run the CLI in-process; return (exit status, stderr)."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def assert_one_line_refusal(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def model(tmp_path) -> Path:
    """A small random artifact whose provenance names a user .npz (absolute path)."""
    rng = np.random.default_rng(7)
    data = tmp_path / "data.npz"
    x = rng.random((24, 12, 2)).astype(np.float32)
    y = np.arange(24) % 3
    np.savez(data, x=x, y=y, x_test=x[:12], y_test=y[:12])
    art = random_artifact(rng, channels=2, layer_sizes=[6, 4], kinds=["lif", "lif"], spans=[2, 1],
                          input_kind="real", classes=3, readout_mode="sequence")
    art.provenance = {"dataset": "npz", "dataset_path": str(data), "float_accuracy": 0.5,
                      "float_accuracy_split": "test"}
    return save(art, tmp_path / "v.skc")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIPCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SKIPCORE_SIM_CACHE", raising=False)
    return tmp_path / "cache"


# ---------------------------------------------------------------------------------------------
# an output is never an input


def test_eval_json_onto_the_model_is_refused_even_with_force(model, capsys):
    before = model.read_bytes()
    for extra in ([], ["--force"]):
        rc, err = run_cli(capsys, "eval", model, "--json", model, "--no-progress", *extra)
        assert_one_line_refusal(rc, err, "--json", "input")
    assert model.read_bytes() == before


def test_input_is_caught_through_a_link_and_dot_paths(model, tmp_path, capsys, monkeypatch):
    link = tmp_path / "link.skc"
    link.symlink_to(model)
    monkeypatch.chdir(tmp_path)
    before = model.read_bytes()
    rc, err = run_cli(capsys, "eval", "./v.skc", "--json", "link.skc", "--force", "--no-progress")
    assert_one_line_refusal(rc, err, "input")
    rc, err = run_cli(capsys, "simulate", "v.skc", "--json", "./v.skc", "--force")
    assert_one_line_refusal(rc, err, "input")
    assert model.read_bytes() == before


def test_simulate_json_onto_the_model_is_refused(model, capsys):
    before = model.read_bytes()
    rc, err = run_cli(capsys, "simulate", model, "--json", model, "--fast")
    assert_one_line_refusal(rc, err, "--json", "input")
    assert model.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# single output files: exists / folder / unwritable


def test_eval_json_rules(model, tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    rc, err = run_cli(capsys, "eval", model, "--json", folder, "--no-progress")
    assert_one_line_refusal(rc, err, "is a folder")

    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    rc, err = run_cli(capsys, "eval", model, "--json", a_file / "out.json", "--no-progress")
    assert_one_line_refusal(rc, err, "is a file")

    existing = tmp_path / "res.json"
    existing.write_text("mine")
    rc, err = run_cli(capsys, "eval", model, "--json", existing, "--no-progress")
    assert_one_line_refusal(rc, err, "exists", "--force")
    assert existing.read_text() == "mine"
    rc, err = run_cli(capsys, "eval", model, "--json", existing, "--no-progress", "--force")
    assert rc == 0, err
    assert json.loads(existing.read_text())["samples"] == 12
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_unwritable_location_gets_one_line(model, capsys):
    rc, err = run_cli(capsys, "eval", model, "--json", "/proc/skipcore-test/out.json", "--no-progress")
    assert_one_line_refusal(rc, err, "cannot write")


def test_quantize_output_checks_come_first(tmp_path, capsys):
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"a checkpoint is read only after the output checks")
    folder = tmp_path / "DIR"
    folder.mkdir()
    rc, err = run_cli(capsys, "quantize", checkpoint, "-o", folder, "--force")
    assert_one_line_refusal(rc, err, "is a folder")
    assert not (tmp_path / "DIR.tmp").exists() and list(folder.iterdir()) == []
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    rc, err = run_cli(capsys, "quantize", checkpoint, "-o", a_file / "model.skc")
    assert_one_line_refusal(rc, err, "is a file")
    rc, err = run_cli(capsys, "quantize", checkpoint, "-o", checkpoint, "--force")
    assert_one_line_refusal(rc, err, "input")
    assert checkpoint.read_bytes().startswith(b"a checkpoint")


# ---------------------------------------------------------------------------------------------
# output folders: --force replaces only skipcore's own files


def test_generate_keeps_a_users_core_json(model, tmp_path, capsys):
    out = tmp_path / "D"
    out.mkdir()
    (out / "core.json").write_text("the user's")
    rc, err = run_cli(capsys, "generate", model, "--lanes", "2", "-o", out)
    assert_one_line_refusal(rc, err, "core.json", "--force")
    rc, err = run_cli(capsys, "generate", model, "--lanes", "2", "-o", out, "--force")
    assert_one_line_refusal(rc, err, "not written by skipcore")
    assert (out / "core.json").read_text() == "the user's" and not (out / "core.v").exists()


def test_generate_twice_needs_force_and_force_replaces_its_own_files(model, tmp_path, capsys):
    out = tmp_path / "D"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # an unrelated file of the user's does not block
    rc, err = run_cli(capsys, "generate", model, "--lanes", "2", "-o", out)
    assert rc == 0, err
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"] == {"core.json": "generate", "core.v": "generate"}
    rc, err = run_cli(capsys, "generate", model, "--lanes", "3", "-o", out)
    assert_one_line_refusal(rc, err, "--force")
    rc, err = run_cli(capsys, "generate", model, "--lanes", "3", "-o", out, "--force")
    assert rc == 0, err
    assert json.loads((out / "core.json").read_text())["lanes"] == 3
    assert (out / "notes.txt").read_text() == "mine"


def test_generate_into_a_file_is_one_line(model, tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    rc, err = run_cli(capsys, "generate", model, "--lanes", "1", "-o", a_file)
    assert_one_line_refusal(rc, err, "is a file")


def test_build_force_keeps_a_users_build_folder_and_readme(model, tmp_path, capsys):
    proj = tmp_path / "proj"
    (proj / "build").mkdir(parents=True)
    (proj / "build" / "mine.v").write_text("module mine; endmodule")
    (proj / "README.md").write_text("my notes")
    for extra in ([], ["--force"]):
        rc, err = run_cli(capsys, "build", model, "--board", "generic", "-o", proj, *extra)
        assert_one_line_refusal(rc, err)
    assert (proj / "README.md").read_text() == "my notes"
    assert (proj / "build" / "mine.v").is_file()
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    rc, err = run_cli(capsys, "build", model, "--board", "generic", "-o", a_file)
    assert_one_line_refusal(rc, err, "is a file")


def test_build_generic_rerun_with_force(model, tmp_path, capsys):
    proj = tmp_path / "proj"
    assert run_cli(capsys, "build", model, "--board", "generic", "-o", proj)[0] == 0
    rc, err = run_cli(capsys, "build", model, "--board", "generic", "-o", proj)
    assert_one_line_refusal(rc, err, "--force")
    rc, err = run_cli(capsys, "build", model, "--board", "generic", "-o", proj, "--force", "--lanes", "2")
    assert rc == 0, err
    assert json.loads((proj / "report.json").read_text())["lanes"] == 2


def test_verify_json_next_to_a_users_core_is_refused_before_work(model, tmp_path, capsys, cache):
    folder = tmp_path / "R"
    (folder / "core").mkdir(parents=True)
    (folder / "core" / "core.v").write_text("// generated by the user with other lanes")
    rc, err = run_cli(capsys, "verify", model, "--json", folder / "report.json", "--no-progress")
    assert_one_line_refusal(rc, err, "core/", "--force")
    rc, err = run_cli(capsys, "verify", model, "--json", folder / "report.json", "--no-progress", "--force")
    assert_one_line_refusal(rc, err, "not written by skipcore")
    assert (folder / "core" / "core.v").read_text().startswith("// generated by the user")
    assert sorted(p.name for p in folder.iterdir()) == ["core"]


def test_simulate_out_rules(model, tmp_path, capsys, cache):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    rc, err = run_cli(capsys, "simulate", model, "--out", a_file, "--fast")
    assert_one_line_refusal(rc, err, "is a file")
    out = tmp_path / "S"
    (out / "core").mkdir(parents=True)
    (out / "core" / "core.v").write_text("// mine")
    for extra in ([], ["--force"]):
        rc, err = run_cli(capsys, "simulate", model, "--out", out, "--fast", *extra)
        assert_one_line_refusal(rc, err, "core/")
    assert (out / "core" / "core.v").read_text() == "// mine"


def test_simulate_with_an_unwritable_cache(model, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    monkeypatch.setenv("SKIPCORE_SIM_CACHE", str(a_file / "sim"))
    rc, err = run_cli(capsys, "simulate", model, "--fast", "--samples", "2")
    assert_one_line_refusal(rc, err, "simulation cache")


def test_train_out_unwritable_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    rc, err = run_cli(capsys, "train", "--out", a_file / "run", "--epochs", "1", "--limit", "20", "--no-progress")
    assert_one_line_refusal(rc, err, "is a file")


def test_demo_refuses_a_users_step_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "train").mkdir(parents=True)
    (out / "train" / "mine.txt").write_text("mine")
    for extra in ([], ["--force"]):
        rc, err = run_cli(capsys, "demo", "--quick", "--out", out, "--board", "none", "--no-progress", *extra)
        assert_one_line_refusal(rc, err, "train")
    assert (out / "train" / "mine.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# the library pieces


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "f.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(tmp_path / "missing" / "f.json", "x")


def test_force_removes_a_commands_stale_files_only(tmp_path):
    out = tmp_path / "run"
    plan = OutputPlan("train", force=False)
    plan.folder(out, "--out", files=("best.pt", "model.skc"))
    plan.prepare()
    for name in ("best.pt", "model.skc", "mine.txt"):
        (out / name).write_text(name)
    other = OutputPlan("generate", force=False)
    other.folder(out, "-o", files=("core.v",))
    other.prepare()
    (out / "core.v").write_text("core")
    plan = OutputPlan("train", force=True)
    plan.folder(out, "--out", files=("best.pt",))
    plan.prepare()
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "core.v", "mine.txt"])
    assert json.loads((out / MANIFEST).read_text())["files"] == {"best.pt": "train", "core.v": "generate"}


def test_atomic_writes_get_the_umask_mode(tmp_path):
    import os

    from skipcore.outputs import atomic_write_text

    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
