"""The file policy of every skipcore command: what may be written where, and how.

Rules (README "Files skipcore writes"):

* Nothing that exists is replaced or deleted without ``--force``.
* ``--force`` replaces only what skipcore itself wrote. Each output folder holds a small
  ``.skipcore-manifest.json`` that lists the files and sub-folders skipcore wrote there and which
  command wrote them; a file or folder it does not list is the user's and is never replaced or
  deleted, with or without ``--force``. With ``--force`` a command also removes what the same
  command wrote there on an earlier run and does not write again (a stale model.skc, say).
* An output can never be an input of the same command (paths compared after
  ``os.path.realpath``, so links and ``./x`` versus ``x`` are caught).
* Every check runs before any work: a path that is a folder where a file is expected (or the
  reverse), or a location that cannot be written, gets one line naming the path and the fix.
* Files are written atomically: a temporary file in the same folder, then ``os.replace``; the
  temporary file is removed when writing fails, so nothing half-written is left.

This module needs only the standard library, so every layer (golden included) may use it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from skipcore.errors import ConfigError

MANIFEST = ".skipcore-manifest.json"

__all__ = ["MANIFEST", "OutputError", "OutputPlan", "OutputFolder", "atomic_path", "atomic_write_text",
           "atomic_write_bytes", "check_writable_dir", "real_path"]


class OutputError(ConfigError):
    """An output path cannot be used: it exists, is an input, is the wrong kind or is not writable."""


def real_path(path: str | os.PathLike) -> Path:
    """The absolute path with every link resolved (existing or not)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


# ---------------------------------------------------------------------------------------------
# atomic writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed.

    For writers that take a file name (``np.savez``, ``fig.savefig``, ``torch.save``). The
    temporary name keeps the suffix, since some writers choose the format from it.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); a written output gets the usual umask-based mode
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data, *, parents: bool = False, default=None) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically; ``parents`` creates missing folders
    (benchmark result files, whose folder may not exist yet)."""
    path = Path(path)
    if parents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    return atomic_write_text(path, json.dumps(data, indent=2, default=default) + "\n")


# ---------------------------------------------------------------------------------------------
# checks


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_dir(folder: str | os.PathLike, what: str) -> None:
    """Raise OutputError unless ``folder`` exists as a folder, or can be created, and takes new files.

    Probes with a real temporary file: ``os.access`` alone says yes to root on a read-only mount.
    """
    folder = real_path(folder)
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise OutputError(f"{what}: {base} is a file, so the folder {folder} cannot be created; choose another path")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise OutputError(f"{what}: cannot write in {base} ({exc.strerror or exc}); choose a writable location") \
            from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class _Manifest:
    """``.skipcore-manifest.json`` of one folder: relative paths -> the command that wrote them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, str] = {}
        self.folders: dict[str, str] = {}
        path = folder / MANIFEST
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                self.files = {str(k): str(v) for k, v in dict(data.get("files", {})).items()}
                self.folders = {str(k): str(v) for k, v in dict(data.get("folders", {})).items()}
            except (OSError, ValueError, TypeError, AttributeError):
                pass  # an unreadable manifest owns nothing: nothing is replaced

    def owns(self, rel: str) -> bool:
        if rel == MANIFEST or rel in self.files:
            return True
        parts = rel.split("/")
        return any("/".join(parts[:i]) in self.folders for i in range(1, len(parts)))

    def write(self) -> None:
        data = {"skipcore_manifest": 1, "files": dict(sorted(self.files.items())),
                "folders": dict(sorted(self.folders.items()))}
        atomic_write_text(self.folder / MANIFEST, json.dumps(data, indent=1) + "\n")


def _owned(file: Path, root: Path) -> bool:
    """Whether a manifest in ``file``'s folder or any folder up to ``root`` lists it."""
    folder = file.parent
    while True:
        if (folder / MANIFEST).is_file() and _Manifest(folder).owns(file.relative_to(folder).as_posix()):
            return True
        if folder == root or folder == folder.parent or root not in folder.parents:
            return False
        folder = folder.parent


class OutputFolder:
    """One output folder of a command, with the files and sub-folders the command writes there."""

    def __init__(self, plan: "OutputPlan", path: str | os.PathLike, flag: str, files: Iterable[str],
                 folders: Iterable[str]) -> None:
        self.plan, self.flag = plan, flag
        self.path = Path(path)
        self.real = real_path(path)
        self.files = list(dict.fromkeys(files))
        self.folders = list(dict.fromkeys(folders))
        self._check()

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    def _check(self) -> None:
        flag, real = self.flag, self.real
        where = f"{flag} {self.path}"
        if real.exists() and not real.is_dir():
            raise OutputError(f"{where} is a file, not a folder; choose a folder")
        for inp in self.plan.inputs:
            if inp == real:
                raise OutputError(f"{where} is also an input of this command; choose another folder")
            for rel in self.files:
                if inp == real / rel:
                    raise OutputError(f"{where} would replace the input {inp}; choose another folder")
            for rel in self.folders:
                if _inside(inp, real / rel):
                    raise OutputError(f"{where} would replace {rel}/, which holds the input {inp}; "
                                      "choose another folder")
        check_writable_dir(real, where)
        if not real.is_dir():
            return
        present = []
        for rel in self.files:
            p = real / rel
            if p.is_dir():
                raise OutputError(f"{where}: {p} is a folder where skipcore writes a file; move it away")
            if p.exists() or p.is_symlink():
                present.append(rel)
        for rel in self.folders:
            p = real / rel
            if p.exists() and not p.is_dir():
                raise OutputError(f"{where}: {p} is a file where skipcore writes a folder; move it away")
            if p.is_dir() and any(p.iterdir()):
                present.append(rel + "/")
        if present and not self.plan.force:
            shown = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
            raise OutputError(f"{where} already holds {shown}; pass --force to replace what skipcore wrote "
                              "there, or choose another folder")
        if not present:
            return
        for rel in present:  # --force: only what a manifest says skipcore wrote
            p = real / rel.rstrip("/")
            files = [p] if p.is_file() or p.is_symlink() else [f for f in sorted(p.rglob("*")) if not f.is_dir()]
            for f in files:
                if not _owned(f, real):
                    raise OutputError(f"{where}: {f} was not written by skipcore (no {MANIFEST} lists it), so "
                                      "--force does not replace it; move it away or choose another folder")

    def prepare(self) -> None:
        """Create the folder, remove skipcore's own files that this run replaces or leaves stale,
        and record in the manifest what this run writes."""
        real, command = self.real, self.plan.command
        try:
            real.mkdir(parents=True, exist_ok=True)
            manifest = _Manifest(real)
            if self.plan.force:
                stale_files = [r for r, c in manifest.files.items() if c == command and r not in self.files]
                stale_folders = [r for r, c in manifest.folders.items() if c == command and r not in self.folders]
                for rel in self.files + stale_files:
                    p = real / rel
                    if (p.is_file() or p.is_symlink()) and _owned(p, real):
                        p.unlink()
                for rel in self.folders + stale_folders:
                    p = real / rel
                    if p.is_dir() and all(_owned(f, real) for f in p.rglob("*") if not f.is_dir()):
                        shutil.rmtree(p)
                for rel in stale_files:
                    manifest.files.pop(rel, None)
                for rel in stale_folders:
                    manifest.folders.pop(rel, None)
            for rel in self.files:
                manifest.files[rel] = command
                (real / rel).parent.mkdir(parents=True, exist_ok=True)
            for rel in self.folders:
                manifest.folders[rel] = command
                (real / rel).mkdir(parents=True, exist_ok=True)
            manifest.write()
        except OSError as exc:
            raise OutputError(f"{self.flag} {self.path}: {exc.strerror or exc}") from None


class OutputPlan:
    """Every output of one command, checked before the command does any work.

    ``inputs``: the command's input paths (names that are not existing paths are ignored).
    ``file()`` and ``folder()`` check at once and raise :class:`OutputError`; ``prepare()``
    then creates folders and removes what ``--force`` replaces.
    """

    def __init__(self, command: str, *, inputs: Iterable[str | os.PathLike | None] = (), force: bool = False) -> None:
        self.command = command
        self.force = bool(force)
        self.inputs = [real_path(p) for p in inputs if p is not None and str(p) != "" and os.path.lexists(p)]
        self._files: list[Path] = []
        self._folders: list[OutputFolder] = []

    def file(self, path: str | os.PathLike, flag: str) -> Path:
        """Check a single output file named by the user (``--json OUT.json``, ``-o model.skc``)."""
        path = Path(path)
        real = real_path(path)
        where = f"{flag} {path}"
        if real in self.inputs:
            raise OutputError(f"{where} is also an input of this command; choose another path")
        if any(_inside(inp, real) for inp in self.inputs):
            raise OutputError(f"{where} holds an input of this command; choose another path")
        if real.is_dir():
            raise OutputError(f"{where} is a folder; name a file (for example {path / 'out.json'})")
        if real.exists() and not self.force:
            raise OutputError(f"{where} exists; pass --force to replace it, or choose another path")
        check_writable_dir(real.parent, where)
        self._files.append(path)
        return path

    def folder(self, path: str | os.PathLike, flag: str, *, files: Iterable[str] = (),
               folders: Iterable[str] = ()) -> OutputFolder:
        """Check an output folder; ``files`` and ``folders`` are what the command writes in it."""
        out = OutputFolder(self, path, flag, files, folders)
        self._folders.append(out)
        return out

    def prepare(self) -> None:
        for path in self._files:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
        for folder in self._folders:
            folder.prepare()
