"""Writing generated cores: the one place that turns an artifact into ``core.v`` + ``core.json``.

``skipcore generate``, ``skipcore simulate``, ``skipcore verify`` and the tests all call
:func:`write_core` (into a folder the caller checked with :mod:`skipcore.outputs`) or
:func:`generate_core_dir` (the same, into the simulation cache when no folder is given).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from skipcore.outputs import OutputError, atomic_write_text, check_writable_dir

__all__ = ["CORE_FILES", "write_core", "generate_core_dir", "check_cache_writable"]

#: what write_core writes into its folder
CORE_FILES = ("core.v", "core.json")


def write_core(art, folder: str | os.PathLike, *, lanes: int, ring_depth: int | None = None, debug: bool = True,
               digest: str | None = None, activity: dict | None = None, events: int = 1):
    """Generate the core for ``art`` and write ``folder/core.v`` and ``folder/core.json`` atomically.

    ``digest`` defaults to ``golden.artifact.artifact_digest(art)``; ``activity`` is the cycle bound
    at a measured activity (``hdl.generate.activity_summary``). Returns the ``GeneratedCore``.
    """
    from skipcore.golden.artifact import artifact_digest
    from skipcore.hdl.generate import generate

    result = generate(art, lanes=lanes, ring_depth=ring_depth, debug=debug,
                      digest=digest if digest is not None else artifact_digest(art), activity=activity,
                      events=events)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "core.v", result.verilog)
    atomic_write_text(folder / "core.json", json.dumps(result.json, indent=1) + "\n")
    return result


def _hdl_source_digest() -> str:
    import skipcore.hdl as hdl_pkg

    h = hashlib.sha256()
    for path in sorted(Path(hdl_pkg.__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def check_cache_writable() -> Path:
    """The simulation cache folder, or OutputError (one line) when it cannot be written."""
    from skipcore.sim.runners import cache_root

    root = cache_root()
    check_writable_dir(root, f"simulation cache {root} (SKIPCORE_SIM_CACHE / SKIPCORE_CACHE)")
    return root


def generate_core_dir(art, *, lanes: int, ring_depth: int | None = None, debug: bool = True,
                      out: str | os.PathLike | None = None, events: int = 1) -> Path:
    """Write ``core.v`` + ``core.json`` for ``art`` and return the folder.

    Without ``out`` the folder is a cache entry keyed by the artifact, the options and the source
    of ``hdl/`` (a changed generator never reuses an old core).
    """
    from skipcore.golden.artifact import artifact_digest
    from skipcore.sim.runners import file_lock

    if out is not None:
        write_core(art, out, lanes=lanes, ring_depth=ring_depth, debug=debug, events=events)
        return Path(out)
    root = check_cache_writable()
    digest = artifact_digest(art)
    options = f"{lanes}|{ring_depth}|{debug}" + (f"|events={events}" if events != 1 else "")
    key = hashlib.sha256(f"{digest}|{options}|{_hdl_source_digest()}".encode()).hexdigest()[:20]
    folder = root / "cores" / key
    if (folder / "core.json").is_file() and (folder / "core.v").is_file():
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder.with_name(folder.name + ".lock")):
            write_core(art, folder, lanes=lanes, ring_depth=ring_depth, debug=debug, digest=digest, events=events)
    except OSError as exc:
        raise OutputError(f"simulation cache {folder}: {exc.strerror or exc}; set SKIPCORE_CACHE to a writable "
                          "folder") from None
    return folder
