"""The import direction of DESIGN.md, checked on the source (torch only in quant/, amaranth only in
hdl/ and boards/, cocotb only in sim/, golden imports numpy only)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = {
    "torch": {"quant"},
    "amaranth": {"hdl", "boards"},
    "amaranth_boards": {"boards"},
    "cocotb": {"sim"},
    "cocotb_tools": {"sim"},
}


def imports_of(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.module:
            yield "." + node.module


@pytest.mark.parametrize("folder", ["golden", "quant", "hdl", "sim", "boards", "skipcore"])
def test_import_direction(folder):
    problems = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in ALLOWED and folder not in ALLOWED[top]:
                # the CLI commands may reach every layer (lazily, inside run())
                if folder == "skipcore" and "commands" in path.parts:
                    continue
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
            if folder == "golden" and top == "skipcore":
                parts = name.split(".")
                if len(parts) > 1 and parts[1] not in ("golden", "errors"):
                    problems.append(f"{path.relative_to(ROOT)} imports {name} (golden imports numpy only)")
    assert not problems, "\n".join(problems)


def test_golden_does_not_pull_heavy_packages():
    code = ("import sys, skipcore.golden.model, skipcore.golden.artifact; "
            "bad = [m for m in ('torch', 'amaranth', 'cocotb') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_lists_the_flow():
    out = subprocess.run([sys.executable, "-m", "skipcore.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("train", "quantize", "eval", "generate", "simulate", "build", "verify", "demo"):
        assert cmd in out.stdout
