"""``hypemu crosscheck FILE... [--json] [--qemu PATH] [--jobs N]``: the command-line face of the
bridge. Exit status 0 when every comparable scenario agrees (up to the allowed differences), 1 when
one disagrees, 2 for bad input or no qemu-system-arm (the message names the Debian package)."""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

HELP = ("run each scenario on hypemu and on QEMU (qemu-system-arm) and compare them side by side")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("crosscheck", help=HELP, description=HELP[0].upper() + HELP[1:] + ".")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (YAML, format 1)")
    p.add_argument("--json", action="store_true", help="one JSON object per scenario")
    p.add_argument("--qemu", metavar="PATH", help="the qemu-system-arm to run (default: PATH's)")
    p.add_argument("--jobs", "-j", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                   help="QEMU runs in parallel (default: min(4, CPUs))")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from ..errors import InputError, NotModelled
    from . import report
    from .crosscheck import hypemu_side, qemu_side
    from .launch import QemuMissing, find_qemu
    try:
        qemu = find_qemu(args.qemu)
    except QemuMissing as err:
        print(f"hypemu: crosscheck: {err}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("hypemu: crosscheck: --jobs must be at least 1", file=sys.stderr)
        return 2
    futures: list[Future[Any]] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for path in args.files:
            try:
                result, _ = hypemu_side(path)
            except (InputError, NotModelled) as err:
                print(f"hypemu: {err}", file=sys.stderr)
                for f in futures:
                    f.cancel()
                return 2
            futures.append(pool.submit(qemu_side, qemu, path, result))
        checks = []
        for future in futures:
            check = future.result()
            checks.append(check)
            print(report.json_line(check) if args.json else report.text(check))
    if not args.json:
        print(report.summary(checks))
    return 1 if any(c.verdict == "disagree" for c in checks) else 0
