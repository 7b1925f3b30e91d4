"""The ``hypemu tables`` and ``hypemu map`` commands: the inspection views of ``hypemu.views``
printed, as text, JSON (``tables --json``: a result object with a ``tables`` key) or a picture
(``map -o``).

Why apart from ``cli``: the two commands are one concept (looking inside a board), ``cli`` only
registers them (``add_parsers``). Errors are printed here as ``cli`` prints them: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any, Callable, Optional

from . import cp15, memmap, views
from .asm import AsmError
from .machine import Machine
from .result import INPUT_ERRORS, run
from .lpae import base_lower_bound, bits
from .ptdump import TableDump
from .scenario import DEFAULT_SCENARIO, Scenario, ScenarioError, from_mapping, load_file
from .errors import OptionError

PLOT_MISSING = ("hypemu: map -o draws with matplotlib, which is not installed: "
                "pip install 'hypemu[plot]' (or run `hypemu map` without -o for the text form)")


def add_parsers(sub: Any) -> None:
    """Register ``tables`` and ``map`` on the ``hypemu`` subcommand parser."""
    tables = sub.add_parser(
        "tables", help="list the HYP page tables (ptdump style)",
        description="List each HYP table (boot and runtime; the one table of single-step) as it is "
                    "in memory after the scenario's steps: VA and PA ranges, size, level, "
                    "block/page, AP, XN, memory type (through HMAIR), SH, AF, the PA of each "
                    "descriptor on the walk, and the range's name from the layout. Runs with equal "
                    "attributes are coalesced; invalid descriptors and UNPREDICTABLE bits are shown.")
    tables.add_argument("file", nargs="?", metavar="FILE", help="a scenario (default: the built-in one)")
    tables.add_argument("--after-step", type=int, metavar="N",
                        help="stop after steps[N] (0-based; default: after every step)")
    tables.add_argument("--cpu", type=int, default=0, metavar="N",
                        help="whose HTCR, HSCTLR and HMAIR the walk uses (default 0)")
    tables.add_argument("--json", action="store_true",
                        help="one JSON result object (of the steps run) with a 'tables' key")
    tables.set_defaults(handler=cmd_tables)
    mapper = sub.add_parser(
        "map", help="the physical memory map and the HYP VA spaces (text, or a picture with -o)",
        description="The physical map (RAM banks, kernel image, init code and page, bounce page, "
                    "HYP text and data, each CPU's stack, each table page, the end of lowmem) and "
                    "the HYP VA spaces with what the kernel side maps where; a refused layout shows "
                    "the collision it was refused for.")
    mapper.add_argument("file", nargs="?", metavar="FILE", help="a scenario (default: the built-in one)")
    mapper.add_argument("-o", "--output", metavar="OUT",
                        help="draw to OUT (.svg or .png; needs the extra hypemu[plot])")
    mapper.set_defaults(handler=cmd_map)


def _scenario(path: Optional[str]) -> Scenario:
    return load_file(path) if path else from_mapping(DEFAULT_SCENARIO)


def _guarded(body: Callable[[Scenario], int], path: Optional[str]) -> int:
    """Run a command body; input errors are one line on stderr and exit status 2."""
    try:
        scenario = _scenario(path)
    except (ScenarioError, AsmError) as err:
        print(f"hypemu: {err}", file=sys.stderr)
        return 2
    try:
        return body(scenario)
    except INPUT_ERRORS as err:
        where = f"{path}: " if path and not isinstance(err, (ScenarioError, AsmError)) else ""
        print(f"hypemu: {where}{err}", file=sys.stderr)
        return 2


def cmd_tables(args: argparse.Namespace) -> int:
    return _guarded(lambda s: _tables(s, args), args.file)


def _tables(s: Scenario, args: argparse.Namespace) -> int:
    stop = views.machine_after(s, args.after_step)
    m = stop.machine
    if m is not None and not 0 <= args.cpu < s.cpus:
        raise OptionError(f"--cpu {args.cpu}: the board has cpus 0..{s.cpus - 1}")
    dumps = views.table_dumps(m, args.cpu) if m is not None else []
    where = (f"after steps[{args.after_step}]" if args.after_step is not None
             else f"after all {len(s.steps)} steps")
    if args.json:
        ran = s if args.after_step is None else replace(
            s, steps=s.steps[:args.after_step + 1], step_lines=s.step_lines[:args.after_step + 1])
        out = run(ran).to_dict()
        out["tables"] = {"after_step": args.after_step, "steps_done": stop.steps_done,
                         "cpu": args.cpu, "ended": stop.ended,
                         "dumps": [d.to_dict() for d in dumps]}
        print(json.dumps(out))
        return 0
    print(f"HYP tables of {s.name} {where}")
    if stop.ended:
        print(f"  (stopped early: {stop.ended})")
    if m is None:
        print("  no tables: the kernel side refused the layout before building them")
    for d in dumps:
        print(d.text())
    if m is not None:
        print(_live(m, dumps))
    return 0


def _live(m: Machine, dumps: list[TableDump]) -> str:
    """Which table each CPU walks now (its HTTBR, with its HYP MMU on or off)."""
    names = {d.pgd: d.name for d in dumps}
    parts = []
    for cpu in range(m.scenario.cpus):
        if m.mode(cpu) == "off":
            parts.append(f"cpu{cpu} off")
            continue
        regs = m.hyp_registers(cpu)
        x = base_lower_bound(regs["HTCR"] & cp15.HTCR_T0SZ)   # HTTBR holds the base in [39:x]
        base = bits(regs["HTTBR"], 39, x) << x
        mmu = "on" if regs["HSCTLR"] & cp15.HSCTLR_M else "off"
        parts.append(f"cpu{cpu} HTTBR {regs['HTTBR']:#x} ({names.get(base, 'no table listed here')}"
                     f", HYP MMU {mmu})")
    return "live: " + "; ".join(parts)


def cmd_map(args: argparse.Namespace) -> int:
    return _guarded(lambda s: _map(s, args.output), args.file)


def _map(s: Scenario, output: Optional[str]) -> int:
    if output is not None and not output.lower().endswith((".svg", ".png")):
        raise OptionError(f"{output}: the picture must be a .svg or a .png file")
    mmap = views.memory_map(s)
    if output is None:
        print(memmap.text(mmap))
        return 0
    try:
        from . import mapplot
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("matplotlib"):
            raise
        print(PLOT_MISSING, file=sys.stderr)
        return 2
    try:
        mapplot.save(mmap, output)
    except OSError as err:
        print(f"hypemu: cannot write {output}: {err.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {output}")
    return 0
