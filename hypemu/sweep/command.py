"""``hypemu sweep``: run a sweep file, append its rows to the output, print the summary, draw a
heatmap. ``cli`` only registers it (``add_parser``); input errors are printed as ``cli`` prints
them (one line, exit 2).

Exit status: 0 when the sweep ran to its end (whatever the outcomes: a sweep maps them, it does
not judge them), 2 for invalid input or usage, 130 after Ctrl-C (the rows done are written).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InputError
from .driver import Sweep
from .progress import Progress
from .spec import load_sweep

INTERRUPTED = 130


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="run a sweep: a scenario over axes of its keys, one row per point",
        description="Run every point of a sweep file (a base scenario, axes over scenario keys, a "
                    "grid or a random sample), append one row per point to the output (resumed "
                    "when rerun), print a summary, optionally draw a heatmap.")
    p.add_argument("file", metavar="SWEEP.yaml", help="the sweep file")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="worker processes (default 1; 0: one per CPU)")
    p.add_argument("--out", metavar="FILE",
                   help="the rows: .jsonl (default NAME.jsonl), .csv or .parquet (needs pyarrow)")
    p.add_argument("--plot", nargs=2, metavar=("X", "Y"),
                   help="draw the share of ok points over two axes (needs hypemu[plot]); with -o")
    p.add_argument("-o", "--output", metavar="PNG", help="where --plot draws (.png or .svg)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run on a Ray cluster (an address, or auto; needs hypemu[ray])")
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    try:
        return _sweep(args)
    except InputError as err:
        print(f"hypemu: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # before the first point (reading a long output to resume it)
        print("interrupted before any point ran: nothing was written", file=sys.stderr)
        return INTERRUPTED


def _usage(args: argparse.Namespace, spec_axes: list[str]) -> None:
    if args.jobs < 0:
        raise InputError(f"-j {args.jobs}: expected 0 (one per CPU) or more")
    if (args.plot is None) != (args.output is None):
        raise InputError("--plot X Y and -o FILE go together")
    for axis in args.plot or ():
        if axis not in spec_axes:
            raise InputError(f"--plot {axis}: not an axis of this sweep (axes: {', '.join(spec_axes)})")
    if args.plot:
        from .plot import check_available
        check_available()


def _sweep(args: argparse.Namespace) -> int:
    from .run import default_jobs
    spec = load_sweep(args.file)
    _usage(args, [a.path for a in spec.axes])
    out = args.out or f"{spec.name}.jsonl"
    job = Sweep(spec, out, args.jobs or default_jobs(), args.ray)
    progress = Progress(job.total, job.old, sys.stderr)
    interrupted = False
    try:
        for _ in job.new_rows():
            progress.advance()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        job.close()
        progress.close()
    print(job.tally.text(job.new))
    print(f"rows: {out}")
    if interrupted:
        print(f"interrupted: {job.total - job.tally.total} points not run (rerun the same command "
              f"to go on)", file=sys.stderr)
        return INTERRUPTED
    if args.plot:
        from .plot import heatmap
        heatmap(spec, job.all_rows(), args.plot[0], args.plot[1], args.output)
        print(f"heatmap: {args.output}")
    return 0
