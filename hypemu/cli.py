"""The ``hypemu`` command (docs/DESIGN.md section 5).

Exit status: 0 every scenario met its expectation, 1 one did not, 2 invalid input or usage, 3 an
internal error (a bug of hypemu). A user never sees a Python traceback for bad input: input errors
are one line ``FILE:LINE: key: message``; an internal error prints its traceback and asks for a bug
report (``hypemu.errors`` says whose fault each error is).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Callable, Optional, Sequence

from . import __version__, tracecli, viewcmds
from .qemu import command as crosscheck
from .sweep import command as sweep_command
from .engine import Engine, EngineFactory
from .engine_pool import EnginePool
from .errors import BUG_REPORT, INTERNAL_EXIT, InputError
from .result import INPUT_ERRORS, Result, check_buildable, input_error_message, run
from .report import summary
from .scenario import DEFAULT_SCENARIO, Scenario, from_mapping, load_file

EXAMPLES = """examples:
  hypemu run                          the built-in default scenario (1 CPU, 1 GiB, dual-step init)
  hypemu run --json                   the same, as one JSON object (README: "The JSON result")
  hypemu run --trace                  the same, with every HYP event the guest caused
  hypemu run --trace=walk,fill,tlbi   ... only the HYP table walks, TLB fills and TLBIs
  hypemu run scenarios/*.yaml         run scenario files; exit 1 if one misses its expectation
  hypemu validate scenarios/*.yaml    check scenario files without running them
  hypemu run --kernel ~/linux scenarios/*.yaml
                                      the scenario library on your kernel tree's own init code
                                      and stub (its arch/arm/kvm/init.S, arch/arm/kernel/hyp-stub.S)
  hypemu tables --after-step 0        the HYP page tables after the first step (ptdump style)
  hypemu map -o map.svg               the memory map as a picture (text without -o)
  hypemu bench                        the benchmark suite
  hypemu crosscheck scenarios/*.yaml  each scenario on hypemu and on QEMU, side by side
  hypemu sweep sweeps/placement.yaml  a sweep: one row per point, a summary (--plot X Y -o map.png)
"""


class _Version(argparse.Action):
    """``--version``: hypemu's version and the instruction budget this installation counts with
    (native or Unicorn's count=), worked out only when asked (it imports Unicorn)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and budget, exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: Optional[str] = None) -> None:
        from .engine_budget import describe
        from .engine_regs import describe_calls
        print(f"hypemu {__version__}\ninstruction budget: {describe()}\n"
              f"Unicorn calls (registers, flushes): {describe_calls()}")
        parser.exit()


class OneLine(Exception):
    """Invalid input or usage, already worded: exit status 2, one line, no traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypemu", description="Simulate the Linux KVM/ARM HYP-mode bring-up on a Cortex-A15.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_p = sub.add_parser("run", help="run scenarios (default: the built-in one)", epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    run_p.add_argument("files", nargs="*", metavar="FILE", help="scenario files (YAML, format 1)")
    run_p.add_argument("--json", action="store_true", help="print one JSON object per scenario")
    tracecli.add_options(run_p)
    run_p.add_argument("-v", "--verbose", action="store_true",
                       help="every CPU's exception state, and HSCTLR, HTCR, HTTBR, HSR decoded")
    val_p = sub.add_parser("validate", help="check scenario files without running them")
    val_p.add_argument("files", nargs="+", metavar="FILE")
    for p in (run_p, val_p):
        p.add_argument("--kernel", metavar="PATH", help="a Linux kernel source tree whose own HYP "
                       "init code and stub replace hyp.code in every scenario given")
    bench_p = sub.add_parser(
        "bench", help="run the benchmark suite (ratios against bare Unicorn)",
        description="Run the benchmark suite (benchmarks/ of the source tree): each figure is the "
                    "median of several repeats, each ratio measured against its baseline in the "
                    "same run.")
    bench_p.add_argument("--quick", action="store_true",
                         help="each benchmark once, on a tiny size (a smoke test: not comparable)")
    bench_p.add_argument("--json", metavar="FILE",
                         help="also write the results as JSON to FILE ('-': stdout, table to stderr)")
    bench_p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    bench_p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    bench_p.add_argument("--check", action="store_true",
                         help="exit 1 when a benchmark misses its target (default: report only)")
    viewcmds.add_parsers(sub)
    crosscheck.add_parser(sub)   # `hypemu crosscheck`: the QEMU bridge (hypemu.qemu)
    sweep_command.add_parser(sub)   # `hypemu sweep`: hypemu.sweep
    return parser


def _kernel(args: argparse.Namespace) -> Optional[str]:
    """``--kernel PATH``, checked once (a tree hypemu cannot use is one line, exit 2)."""
    if args.kernel is None:
        return None
    from .kernel_tree import KernelTree
    return str(KernelTree.open(args.kernel).root)


def _run_one(scenario: Scenario, args: argparse.Namespace,
             engines: EngineFactory = Engine) -> Result:
    trace = tracecli.wanted(args)   # a bad trace option is found before the run
    try:
        result = run(scenario, trace=trace, engines=engines)
    except INPUT_ERRORS as err:   # incl. NotModelled: the guest did what hypemu does not model
        raise OneLine(input_error_message(err, scenario)) from None
    if args.json:
        out = result.to_dict()
        tracecli.add_events(out, result.events, args)
        print(json.dumps(out))
    else:
        print(summary(result, args.verbose, scenario))
    tracecli.emit(result, args)
    return result


def cmd_run(args: argparse.Namespace) -> int:
    """Run every file, even after a bad one: a file that is invalid (when read, or when run: a
    ``fn:`` the runtime code lacks) is an error, one line on stderr; the rest still run. Exit 2 if
    any was an error, else 1 if any missed its expectation."""
    kernel = _kernel(args)
    if not args.files:
        return 0 if _run_one(from_mapping(DEFAULT_SCENARIO, kernel=kernel), args).passed else 1
    passed = failed = errors = 0
    engines = EnginePool()   # boards of the same RAM layout share a Unicorn instance, reset
    for path in args.files:
        try:
            ok = _run_one(load_file(path, kernel=kernel), args, engines).passed
        except (OneLine, InputError) as err:
            print(f"hypemu: {err}", file=sys.stderr)
            errors += 1
            continue
        passed, failed = passed + ok, failed + (not ok)
    if not args.json and len(args.files) > 1:
        print(f"{passed} passed, {failed} failed, {errors} error{'s' if errors != 1 else ''}")
    return 2 if errors else (1 if failed else 0)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every file (not only up to the first bad one): one line each, exit 2 if any is bad."""
    bad, kernel = 0, _kernel(args)
    for path in args.files:
        try:
            refused = check_buildable(load_file(path, kernel=kernel))
        except InputError as err:
            print(f"hypemu: {err}", file=sys.stderr)
            bad += 1
        else:
            note = f" (the kernel side refuses its layout: config_error: {refused})" if refused else ""
            print(f"{path}: ok{note}")
    return 2 if bad else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench   # imported on use: `hypemu run` does not load the suite
    command = " ".join(["hypemu bench", *(["--quick"] if args.quick else []),
                        *(["--only", *args.only] if args.only else []),
                        *(["--json", args.json] if args.json else []),
                        *(["--check"] if args.check else [])])
    try:
        if args.list:
            return bench.list_suite()
        return bench.main(args.quick, args.json, args.only, command, check=args.check)
    except bench.BenchError as err:
        raise OneLine(str(err)) from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(tracecli.explicit(argv))
    if args.command is None:
        parser.print_help()
        return 2
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run, "validate": cmd_validate, "bench": cmd_bench}
    try:
        if hasattr(args, "handler"):   # the inspection commands (viewcmds) print their input errors
            return int(args.handler(args))
        return commands[args.command](args)
    except (OneLine, InputError) as err:
        print(f"hypemu: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # `hypemu run --trace | head`: the reader left, which is no error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception:         # not the user's input: a bug of hypemu, shown as one
        traceback.print_exc()
        print(BUG_REPORT, file=sys.stderr)
        return INTERNAL_EXIT


if __name__ == "__main__":
    sys.exit(main())
