"""The trace options of ``hypemu run``: ``--trace[=KINDS]``, ``--cpu N``, ``--trace-format``,
``--events``, and what they print.

Why a module of its own: the command line (``cli``) only adds these options and calls ``emit``
after each run; which events, in which form, and that asking for any of them records the detail
(``Machine(trace=True)``) is decided here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

from . import tarmac, tracer
from .errors import OptionError
from .result import Result


def explicit(argv: Optional[Sequence[str]]) -> Optional[list[str]]:
    """``--trace=KINDS`` -> ``--trace-kinds=KINDS``: a bare ``--trace`` takes no value, so that
    ``hypemu run --trace a.yaml`` still traces the file ``a.yaml``."""
    if argv is None:
        argv = sys.argv[1:]
    if "run" not in argv:   # only `run` has --trace: elsewhere argparse names the stray option
        return list(argv)
    return [f"--trace-kinds={a[len('--trace='):]}" if a.startswith("--trace=") else a
            for a in argv]


def add_options(run_p: argparse.ArgumentParser) -> None:
    run_p.add_argument("--trace", dest="trace", action="store_const", const="", default=None,
                       help="print the event trace of each run (every event but walks and "
                            "fills); --trace=KINDS: only those, a comma list of "
                            f"{', '.join(tracer.GROUPS)}, or all")
    run_p.add_argument("--trace-kinds", dest="trace", help=argparse.SUPPRESS)
    run_p.add_argument("--cpu", type=int, default=None, metavar="N",
                       help="with --trace: only the events of cpu N (the step headings stay)")
    run_p.add_argument("--trace-format", choices=("text", "tarmac"), default="text",
                       help="with --trace: the plain trace (default) or a Tarmac-like one")
    run_p.add_argument("--events", action="store_true",
                       help="with --json: add the event log (with the trace's detail) to each "
                            "result")


def wanted(args: argparse.Namespace) -> bool:
    """Whether the runs must record the trace's detail; OptionError for options that need
    another one."""
    if args.trace is None and (args.cpu is not None or args.trace_format != "text"):
        raise OptionError("--cpu and --trace-format go with --trace")
    if args.events and not args.json:
        raise OptionError("--events goes with --json")
    if args.trace is not None:
        tracer.parse_kinds(args.trace)   # an unknown kind is found before anything runs
    return args.trace is not None or bool(args.events)


def add_events(result_dict: dict[str, Any], events: list[Any], args: argparse.Namespace) -> None:
    """``--json --events``: the result gets the whole event log."""
    if args.events:
        result_dict["events"] = tracer.event_dicts(events)


def emit(result: Result, args: argparse.Namespace) -> None:
    """Print the trace of one run (to stderr when stdout carries JSON)."""
    if args.trace is None:
        return
    if args.cpu is not None and result.cpus and not 0 <= args.cpu < len(result.cpus):
        raise OptionError(f"--cpu {args.cpu}: {result.file or result.name} has "
                          f"{len(result.cpus)} CPU(s), 0..{len(result.cpus) - 1}")
    selection = tracer.Selection(tracer.parse_kinds(args.trace), args.cpu)
    shown = tracer.select(result.events, selection)
    tables = tracer.table_names(result.layout)
    form = tarmac.lines if args.trace_format == "tarmac" else tracer.text
    out = sys.stderr if args.json else sys.stdout
    for line in form(shown, tables):
        print("  " + line if args.trace_format == "text" else line, file=out)
