"""The import direction of DESIGN.md, checked on the source: third-party packages (torch only in
quant/, amaranth only in hdl/ and boards/, cocotb only in sim/, golden imports numpy only) and the
project's own folders (golden imports none of the others; quant, hdl and sim import golden; the
CLI imports everything; library code never imports the CLI)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["golden", "quant", "hdl", "sim", "boards", "skipcore"]

ALLOWED = {
    "torch": {"quant"},
    "amaranth": {"hdl", "boards"},
    "amaranth_boards": {"boards"},
    "cocotb": {"sim"},
    "cocotb_tools": {"sim"},
    # NIR model exchange: the graph importer and exporter work on the float network (torch), so
    # they live in quant/; test_nir_only_in_its_two_modules narrows it further
    "nir": {"quant"},
}

#: the only modules that import ``nir`` (skipcore import / export --nir)
NIR_MODULES = {"quant/importers/nir_graph.py", "quant/nir_export.py"}

#: skipcore's own leaf modules: standard library (and numpy) only, so every layer may use them
LEAVES = {"errors", "outputs", "__version__"}

#: folder -> the project's folders and skipcore/ modules it may import (besides itself and LEAVES).
#: From DESIGN.md "Folders and import direction". Three edges are in the code but not in DESIGN.md
#: (reported to the lead, not added to the document): quant -> skipcore.datasets (training reads
#: the NumPy datasets), boards -> hdl (a board top wraps the generated core) and sim -> boards
#: (sim/tb_uart_top.py is the cocotb testbench of the board top).
INTERNAL = {
    "golden": set(),
    "quant": {"golden", "datasets"},
    "hdl": {"golden"},
    "sim": {"golden", "boards"},
    "boards": {"golden", "hdl"},
}

#: skipcore/ library modules (the CLI, cli.py and commands/, may import everything)
SKIPCORE_MODULES = {
    "datasets": {"golden"},  # reads .npz members header-first with golden's checked .npy reader
    "evaluate": {"golden", "datasets"},
    "cores": {"golden", "hdl", "sim"},  # the artifact digest is the cores cache key
    "report": set(),
    "shd_like": {"golden"},  # the SHD-like stream and its golden-calibrated network (benchmarks/bench_shd.py)
    "flow": {"golden", "hdl", "sim", "boards", "datasets", "evaluate", "cores", "report"},
}


def imports_of(path: Path):
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = ["skipcore"] + ([] if rel.parts[0] == "skipcore" else [rel.parts[0]]) + list(rel.parts[1:-1])
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = package[: len(package) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base == "skipcore":  # from skipcore import x
                for alias in node.names:
                    yield f"skipcore.{alias.name}"
            else:
                yield base


def _own_target(name: str) -> str | None:
    """The skipcore folder or top-level module an import reaches: skipcore.hdl.x -> hdl."""
    parts = name.split(".")
    return parts[1] if parts[0] == "skipcore" and len(parts) > 1 else None


@pytest.mark.parametrize("folder", FOLDERS)
def test_third_party_import_direction(folder):
    problems = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in ALLOWED and folder not in ALLOWED[top]:
                # the CLI commands may reach every layer (lazily, inside run())
                if folder == "skipcore" and "commands" in path.parts:
                    continue
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, "\n".join(problems)


def test_nir_only_in_its_two_modules():
    problems = [f"{path.relative_to(ROOT)} imports {name}" for folder in FOLDERS
                for path in sorted((ROOT / folder).rglob("*.py"))
                for name in imports_of(path)
                if name.split(".")[0] == "nir" and str(path.relative_to(ROOT)) not in NIR_MODULES]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("folder", sorted(INTERNAL))
def test_internal_import_direction(folder):
    problems = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imports_of(path):
            target = _own_target(name)
            if target is None or target == folder or target in LEAVES:
                continue
            if target not in INTERNAL[folder]:
                problems.append(f"{path.relative_to(ROOT)} imports {name} ({folder} may import "
                                f"{', '.join(sorted(INTERNAL[folder] | LEAVES)) or 'nothing of the project'})")
    assert not problems, "\n".join(problems)


def test_skipcore_library_modules_import_direction():
    problems = []
    for path in sorted((ROOT / "skipcore").glob("*.py")):
        module = path.stem
        if module in ("cli", "__init__") or module in LEAVES:
            allowed = set(FOLDERS) | set(SKIPCORE_MODULES) | {"commands"} if module == "cli" else set()
        else:
            assert module in SKIPCORE_MODULES, f"skipcore/{path.name}: add it to SKIPCORE_MODULES"
            allowed = SKIPCORE_MODULES[module]
        for name in imports_of(path):
            target = _own_target(name)
            if target is None or target == module or target in LEAVES:
                continue
            if target not in allowed:
                problems.append(f"skipcore/{path.name} imports {name}")
    assert not problems, "\n".join(problems)


def test_library_code_never_imports_the_cli():
    """Library modules and benchmarks use the library (skipcore.evaluate, skipcore.cores, ...),
    never skipcore.commands.* or skipcore.cli; the commands stay thin wrappers."""
    problems = []
    for base in [ROOT / f for f in FOLDERS + ["benchmarks"] if (ROOT / f).is_dir()]:
        for path in sorted(base.rglob("*.py")):
            if path.parent == ROOT / "skipcore" / "commands" or path == ROOT / "skipcore" / "cli.py":
                continue
            for name in imports_of(path):
                if name.startswith(("skipcore.commands", "skipcore.cli")):
                    problems.append(f"{path.relative_to(ROOT)} imports {name}")
    for path in sorted((ROOT / "skipcore" / "commands").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in LIBRARY_FUNCTIONS:
                problems.append(f"{path.relative_to(ROOT)} defines {node.name}, which belongs in the library")
    assert not problems, "\n".join(problems)


#: functions that tests, benchmarks and flow.py share; they live in skipcore/evaluate.py and cores.py
LIBRARY_FUNCTIONS = {"resolve_data", "check_data", "evaluate_artifact", "generate_core_dir", "write_core"}


def test_golden_does_not_pull_heavy_packages():
    code = ("import sys, skipcore.golden.model, skipcore.golden.artifact; "
            "bad = [m for m in ('torch', 'amaranth', 'cocotb') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_lists_the_flow():
    out = subprocess.run([sys.executable, "-m", "skipcore.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("train", "quantize", "eval", "generate", "simulate", "build", "verify", "demo"):
        assert cmd in out.stdout


def test_pyproject_lists_every_package():
    """A wheel holds only the packages pyproject names; the editable install would hide a missing one."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    dirs = {name: Path(path) for name, path in project["package-dir"].items()}
    found = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
