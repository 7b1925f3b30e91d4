"""The init HVC's call conventions (``hyp.call_abi``): how the kernel side packs an init call's
pgd, stack and vectors into r0-r3, one packer per convention.

- ``seed``: r0/r1 = pgd low/high, r2 = stack, r3 = vectors (the convention hypemu started with);
- ``linux-3.10``: r0 = stack, r1 = vectors, r2/r3 = pgd low/high (v3.10's __do_hyp_init).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Registers = tuple[int, int, int, int]


@dataclass(frozen=True)
class InitCall:
    """One init HVC: what it is called in the log, and its arguments (0: not passed)."""

    during: str
    pgd: int
    stack: int
    vectors: int


@dataclass(frozen=True)
class CallConvention:
    name: str
    number: int                               # CALL_ABI, as the guest code tests it
    pack: Callable[[InitCall], Registers]     # r0-r3 of the HVC


def _seed(c: InitCall) -> Registers:
    return c.pgd & 0xFFFFFFFF, c.pgd >> 32, c.stack, c.vectors


def _linux_3_10(c: InitCall) -> Registers:
    return c.stack, c.vectors, c.pgd & 0xFFFFFFFF, c.pgd >> 32


CALL_CONVENTIONS = {c.name: c for c in (CallConvention("seed", 0, _seed),
                                        CallConvention("linux-3.10", 1, _linux_3_10))}
