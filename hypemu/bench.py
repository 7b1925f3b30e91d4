"""The benchmark engine behind ``hypemu bench``: repeats, medians, spreads, paired baselines, the
table and the JSON report.

The benchmarks themselves (what is measured) are the *suite*, in ``benchmarks/`` of the source tree,
next to ``asm/`` and ``scenarios/``; this module finds it, runs it and reports. The split keeps the
package free of benchmark code (the suite's bare-Unicorn baselines import Unicorn, which inside
hypemu only ``engine.py`` does) while ``hypemu bench`` stays one command.

Method:
- A benchmark's set-up returns a ``Case``: ``measure`` runs hypemu's operation once and returns its
  cost (seconds, or megabytes), ``baseline`` (optional) does the same for the thing it is compared
  with (bare Unicorn running the same code bytes, ...).
- Each repeat runs ``measure`` and ``baseline`` back to back, alternating which goes first, and
  keeps their ratio. The row reports the medians of the figures and the median of those per-repeat
  ratios, so a machine that is noisy over seconds still gives a stable ratio.
- ``ratio`` is always the measured cost (hypemu's, or a bare-Unicorn variant's) over the
  baseline's for the same work: 1.0 is as fast, 4.0 four times slower (or four times the memory).
  ``spread`` is the interquartile range over the median.
- Garbage collection is off inside timed sections (as ``timeit`` does). ``--quick`` runs each
  benchmark once on a tiny size: a smoke test whose figures are not comparable.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import json
import operator
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from . import __version__

ROOT = Path(__file__).resolve().parent.parent
SUITE_DIR = ROOT / "benchmarks"
"""Where the suite lives: the source tree (as ``asm/`` for kvm.py), which an editable install keeps."""


class BenchError(Exception):
    """The suite cannot run as asked (not found, unknown name, unwritable output): one line, no
    traceback (the CLI exits 2)."""


_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


# --- what a benchmark is --------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A target of the issue: ``field`` (value or ratio) ``op`` ``limit``, with its wording."""

    field: str
    op: str
    limit: float
    text: str

    def __post_init__(self) -> None:
        if self.field not in ("value", "ratio") or self.op not in _COMPARE:
            raise ValueError(f"target {self.field} {self.op} {self.limit}: not a target")

    def met(self, value: Optional[float], ratio: Optional[float]) -> Optional[bool]:
        figure = value if self.field == "value" else ratio
        return None if figure is None else _COMPARE[self.op](figure, self.limit)


@dataclass
class Case:
    """A benchmark, set up. ``measure``/``baseline``: one repeat each, returning a cost (seconds or
    MB); ``figure`` turns a cost into the row's unit (per operation, per second...); ``detail``
    (called after the repeats with the median cost of ``measure``) says what the figure means and
    what bounds it."""

    measure: Callable[[], float]
    baseline: Optional[Callable[[], float]] = None
    figure: Callable[[float], float] = lambda cost: cost
    detail: Callable[[float], str] = lambda cost: ""


@dataclass
class Benchmark:
    """A named benchmark of the suite: ``setup(**size)`` returns the ``Case`` to measure. ``full`` and
    ``quick`` are its sizes; ``unavailable()`` says why it cannot run here (None: it can)."""

    name: str
    unit: str
    doc: str
    setup: Callable[..., Case]
    full: dict[str, Any]
    quick: dict[str, Any]
    repeats: int = 11
    target: Optional[Target] = None
    unavailable: Callable[[], Optional[str]] = lambda: None
    baseline: str = ""       # what its ratio is measured against (the table's footnote)


def benchmark(name: str, unit: str, *, full: dict[str, Any], quick: dict[str, Any],
              repeats: int = 11,
              target: Optional[Target] = None,
              unavailable: Callable[[], Optional[str]] = lambda: None, baseline: str = ""
              ) -> Callable[[Callable[..., Case]], Benchmark]:
    """Decorator for a suite module: turns ``setup(**size) -> Case`` into a ``Benchmark``; its
    docstring's first line is the description, ``baseline`` names what its ratio divides by."""
    def wrap(setup: Callable[..., Case]) -> Benchmark:
        lines = (setup.__doc__ or "").strip().splitlines()
        return Benchmark(name, unit, lines[0] if lines else "", setup, full, quick, repeats,
                         target, unavailable, baseline)
    return wrap


# --- timing helpers for suite modules -------------------------------------------------------------
def seconds(fn: Callable[[], Any]) -> float:
    """Wall time of one ``fn()`` call, with the garbage collector off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def per_op(ops: float, scale: float) -> Callable[[float], float]:
    """Cost in seconds -> time per operation, times ``scale`` (1e3: ms, 1e6: us)."""
    return lambda cost: cost / ops * scale


def rate(work: float) -> Callable[[float], float]:
    """Cost in seconds -> ``work`` (fills, walks, calls...) per second."""
    return lambda cost: work / cost


def spread(samples: Sequence[float]) -> float:
    """Interquartile range / median: 0.05 means the middle half of the repeats lay within 5% of the
    median's size. Robust, as the median is, to the odd repeat a busy machine disturbs."""
    if len(samples) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4)
    mid = statistics.median(samples)
    return (q3 - q1) / mid if mid else 0.0


# --- results --------------------------------------------------------------------------------------
@dataclass
class Row:
    """One benchmark's result: the JSON object of ``benchmarks[]`` (plus the target and detail)."""

    name: str
    value: float
    unit: str
    baseline: Optional[float]
    ratio: Optional[float]
    repeats: int
    spread: float
    ratio_spread: Optional[float] = None
    target: Optional[str] = None
    met: Optional[bool] = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "baseline": self.baseline,
                "ratio": self.ratio, "repeats": self.repeats, "spread": self.spread,
                "ratio_spread": self.ratio_spread, "target": self.target, "met": self.met,
                "detail": self.detail}


@dataclass
class Report:
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    unavailable: list[dict[str, Any]] = field(default_factory=list)   # {"name", "reason"}
    failed: list[dict[str, Any]] = field(default_factory=list)        # {"name", "error"}

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "benchmarks": [r.to_dict() for r in self.rows],
                "unavailable": list(self.unavailable), "failed": list(self.failed)}


def measure(bench: Benchmark, quick: bool) -> Row:
    """Set ``bench`` up and run its repeats: paired with its baseline, alternating the order."""
    case = bench.setup(**(bench.quick if quick else bench.full))
    repeats = 1 if quick else bench.repeats
    if not quick:   # warm-up: translated code, caches, first-call costs
        case.measure()
        if case.baseline:
            case.baseline()
    costs, base_costs, ratios = [], [], []
    for i in range(repeats):
        if case.baseline is None:
            costs.append(case.measure())
            continue
        if i % 2:
            base = case.baseline()
            cost = case.measure()
        else:
            cost = case.measure()
            base = case.baseline()
        costs.append(cost)
        base_costs.append(base)
        ratios.append(cost / base)
    values = [case.figure(c) for c in costs]
    value = statistics.median(values)
    baseline = statistics.median(case.figure(c) for c in base_costs) if base_costs else None
    ratio = statistics.median(ratios) if ratios else None
    target = bench.target
    return Row(bench.name, value, bench.unit, baseline, ratio, repeats, spread(values),
               spread(ratios) if ratios else None, target.text if target else None,
               target.met(value, ratio) if target and not quick else None,
               case.detail(statistics.median(costs)))


# --- the suite ------------------------------------------------------------------------------------
def load_suite(directory: Optional[Path] = None) -> list[Benchmark]:
    """Every ``Benchmark`` defined by ``bench_*.py`` in the suite directory, in file then definition
    order. The directory goes on ``sys.path`` so that suite modules share ``benchlib``."""
    directory = Path(directory or SUITE_DIR)
    files = sorted(directory.glob("bench_*.py")) if directory.is_dir() else []
    if not files:
        raise BenchError(
            f"the benchmark suite is not at {directory} (no bench_*.py there): it ships in the "
            f"source tree next to hypemu/, so run hypemu from a clone installed with "
            f"`pip install -e .` (as `make` does)")
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    suite: dict[str, Benchmark] = {}
    for path in files:
        try:
            module = importlib.import_module(path.stem)
        except ImportError as err:
            raise BenchError(f"cannot load the benchmark suite's {path.name}: {err}") from None
        for obj in vars(module).values():
            if isinstance(obj, Benchmark) and obj.name not in suite:
                suite[obj.name] = obj
    return list(suite.values())


def select(suite: list[Benchmark], only: Optional[Iterable[str]]) -> list[Benchmark]:
    """The benchmarks named by ``only`` (all when None), in suite order."""
    if not only:
        return suite
    known = [b.name for b in suite]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise BenchError(f"unknown benchmark {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(known)})")
    wanted = set(only)
    return [b for b in suite if b.name in wanted]


def machine_info(quick: bool, command: str) -> dict[str, Any]:
    """What the figures were measured on: host CPU, Python, Unicorn, hypemu, and how."""
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "os": platform.platform(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "unicorn": _version("unicorn"), "hypemu": __version__, "budget": _budget(),
            "unicorn_calls": importlib.import_module(f"{__package__}.engine_regs").describe_calls(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": command, "quick": quick,
            "python_loop_ms": [python_speed()]}


def python_speed() -> float:
    """ms for a pure-Python loop of 10^6 iterations (best of 5): how fast this machine runs
    Python now. A shared VM's speed drifts; absolute figures move with it, ratios much less."""
    def once() -> float:
        return seconds(lambda: [0 for _ in range(1_000_000)]) * 1e3
    return round(min(once() for _ in range(5)), 2)


def _budget() -> str:
    """The instruction budget a board counts with here (native or Unicorn's count=)."""
    from .engine_budget import describe
    return describe()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_suite(benchmarks: list[Benchmark], quick: bool, machine: dict[str, Any],
        progress: Callable[[str], None] = lambda line: None) -> Report:
    """Measure each benchmark (or note why it is not available); ``progress`` gets each table row."""
    report = Report(machine)
    for bench in benchmarks:
        reason = bench.unavailable()
        if reason is not None:
            report.unavailable.append({"name": bench.name, "reason": reason})
            progress(_unavailable_line(bench.name, reason))
            continue
        try:
            row = measure(bench, quick)
        except Exception as err:   # a broken benchmark (or model) must not hide the others
            report.failed.append({"name": bench.name, "error": _error_line(err)})
            progress(f"{bench.name:<20} FAILED: {report.failed[-1]['error']}")
            continue
        report.rows.append(row)
        progress(_row_lines(row))
    return report


def _error_line(err: Exception) -> str:
    """The exception and where it was raised (file:line), on one line."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


# --- the table ------------------------------------------------------------------------------------
HEADER = (f"{'benchmark':<20} {'value':>12} {'unit':<9} {'spread':>7} {'baseline':>12} "
          f"{'ratio':>7} {'spread':>7}  target")


def _num(x: Optional[float]) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _row_lines(row: Row) -> str:
    status = "" if row.met is None else ("  met" if row.met else "  MISSED")
    target = f"{row.target}{status}" if row.target else ""
    one = row.repeats <= 1   # one repeat has no spread: print none rather than 0.0%
    spread, ratio_spread = ("", "") if one else (_pct(row.spread), _pct(row.ratio_spread))
    line = (f"{row.name:<20} {_num(row.value):>12} {row.unit:<9} {spread:>7} "
            f"{_num(row.baseline):>12} {_num(row.ratio):>7} {ratio_spread:>7}  {target}")
    return line.rstrip() + (f"\n{'':<20} {row.detail}" if row.detail else "")


def _unavailable_line(name: str, reason: str) -> str:
    return f"{name:<20} {reason}"


def _preamble(m: dict[str, Any], count: int) -> str:
    how = "quick: each benchmark once, tiny sizes (not comparable)" if m["quick"] else \
        "median of the repeats; spread = interquartile range / median"
    return (f"hypemu bench: {count} benchmark{'s' if count != 1 else ''}, {how}\n"
            f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['os']}, {m['python']}, "
            f"unicorn {m['unicorn']}\n"
            f"instruction budget: {m['budget']}; Unicorn calls: {m.get('unicorn_calls', '?')}\n"
            f"ratio = the cost of what is measured / its own baseline's (footnote), for the same "
            f"work\n\n{HEADER}")


def _footnote(benchmarks: list[Benchmark], report: Report) -> str:
    """What each ratio divides by: every row has its own baseline, so ratios of different rows
    do not compare; and the targets missed."""
    docs = {b.name: b.baseline for b in benchmarks}
    lines = ["", "ratio baselines (each row its own; ratios of different rows do not compare):"]
    lines += [f"  {r.name:<20} {docs.get(r.name) or 'the baseline column'}"
              for r in report.rows if r.ratio is not None]
    missed = [r.name for r in report.rows if r.met is False]
    judged = [r for r in report.rows if r.met is not None]   # --quick judges none
    speeds = report.machine.get("python_loop_ms", [])
    if len(speeds) == 2:
        lines.append(f"machine speed: a Python loop of 10^6 iterations took {speeds[0]} ms at "
                     f"the start, {speeds[1]} ms at the end (absolute figures move with it)")
    lines.append(f"targets missed: {', '.join(missed)}" if missed else
                 "targets: all met" if judged else "targets: none judged")
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------------
def main(quick: bool = False, json_path: Optional[str] = None, only: Optional[list[str]] = None,
         command: str = "hypemu bench", suite_dir: Optional[Path] = None, check: bool = False) -> int:
    """``hypemu bench``: print the table as rows complete, then the footnote; write JSON if asked.
    Exit status 0, or 1 when a benchmark failed (the others still run) or, with ``check``, when a
    target was missed. Raises BenchError for what the user can fix (the CLI exits 2)."""
    benchmarks = select(load_suite(suite_dir), only)
    out = Path(json_path) if json_path and json_path != "-" else None
    if out is not None and not out.parent.is_dir():
        raise BenchError(f"--json {json_path}: directory {out.parent} does not exist")
    stream = sys.stderr if json_path == "-" else sys.stdout
    machine = machine_info(quick, command)
    print(_preamble(machine, len(benchmarks)), file=stream, flush=True)
    report = run_suite(benchmarks, quick, machine, lambda line: print(line, file=stream, flush=True))
    machine["python_loop_ms"].append(python_speed())   # at the start and at the end
    print(_footnote(benchmarks, report), file=stream, flush=True)
    if json_path:
        _write_json(report, json_path)
    missed = check and any(r.met is False for r in report.rows)
    return 1 if report.failed or missed else 0


def list_suite(suite_dir: Optional[Path] = None) -> int:
    """``hypemu bench --list``: every benchmark, its unit, target and description."""
    for bench in load_suite(suite_dir):
        reason = bench.unavailable()
        target = f" (target {bench.target.text})" if bench.target else ""
        print(f"{bench.name:<20} {bench.unit:<9} {bench.doc}{target}"
              + (f" [{reason}]" if reason else ""))
    return 0


def _write_json(report: Report, json_path: str) -> None:
    text = json.dumps(report.to_dict(), indent=1, allow_nan=False) + "\n"
    if json_path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(json_path).write_text(text)
    except OSError as err:
        raise BenchError(f"--json {json_path}: {err.strerror or err}") from None
