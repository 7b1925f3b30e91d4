"""Fault injection: the kernel or HYP bugs that the hazard checks exist to catch, made on purpose.

- ``skip``: an instruction of the init or runtime code becomes a NOP, chosen by mnemonic (every
  ISB/DSB/DMB, or every MCR/MCRR to a cp15 operation or register such as TLBIALLH or HSCTLR) or by
  ``{symbol, offset}``. Applied to the code bytes before they are loaded.
- ``corrupt``: one field of the leaf descriptor mapping a VA in the boot or runtime table is changed
  after the kernel side built the table (a kernel bug or a stray write).
- ``remap``: the kernel side points a live mapping elsewhere between steps, with or without
  break-before-make and TLB invalidation. PL1 cannot invalidate the HYP TLB itself, so, like KVM, it
  asks HYP: an HVC to ``hyp_tlbi_va_is`` on the first online CPU.

Every injection is recorded in the event log (kind ``inject``) and returned as a dict for the
result. Descriptor writes go through the kernel's table memory, so the checks see them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from . import cp15, events
from .decode import barrier_kind, decode_insn
from .lpae import LEVEL_SIZE
from .walker import Regime, Translation, walk

if TYPE_CHECKING:  # pragma: no cover
    from .asm import Program
    from .kvm import Kernel

NOP = 0xE320F000          # NOP (ARMv6K hint), ARM encoding
BARRIERS = ("isb", "dsb", "dmb")


class InjectError(ValueError):
    """An injection that cannot apply to this machine (names the ``inject[i]`` key)."""

    def __init__(self, index: Optional[int], key: str, message: str):
        self.index, self.key = index, key
        super().__init__(message)


def _matches(word: int, name: str) -> bool:
    if name in BARRIERS:
        return barrier_kind(word) == name
    insn = decode_insn(word)
    if insn is None or insn.op not in ("mcr", "mcrr"):
        return False
    key = ("c", insn.opc1, insn.crn, insn.crm, insn.opc2) if insn.op == "mcr" else ("q", insn.opc1, insn.crm)
    row = cp15.lookup(key)
    return row is not None and row.name.lower() == name


def skip_sites(programs: dict[str, "Program"], size: dict[str, int], what: Any) -> list[tuple[str, int]]:
    """(program name, byte offset) of every instruction ``what`` names, in the given programs.
    ``size`` limits each program to the bytes that are loaded (the init code up to its end)."""
    if isinstance(what, str):
        name = what.lower()
        sites = []
        for prog_name, prog in programs.items():
            code = prog.code[:size[prog_name]]
            for off in range(0, len(code) - len(code) % 4, 4):
                if _matches(int.from_bytes(code[off:off + 4], "little"), name):
                    sites.append((prog_name, off))
        if not sites:
            raise InjectError(None, "skip", f"no {what!r} instruction in the init or runtime code")
        return sites
    symbol, offset = what["symbol"], what.get("offset", 0)
    owners = [name for name, prog in programs.items() if symbol in prog.symbols]
    if not owners:
        raise InjectError(None, "skip.symbol", f"no symbol {symbol!r} in the init or runtime code")
    if len(owners) > 1:
        raise InjectError(None, "skip.symbol", f"{symbol!r} is a label of both the init and the "
                                               f"runtime code: ambiguous")
    prog_name = owners[0]
    prog = programs[prog_name]
    off = prog.address(symbol) - prog.base + offset
    if not 0 <= off <= size[prog_name] - 4:
        raise InjectError(None, "skip.offset", f"{symbol}+{offset:#x} is outside the "
                                               f"{prog_name} code")
    return [(prog_name, off)]


def nop_out(code: bytes, offsets: list[int]) -> bytes:
    out = bytearray(code)
    for off in offsets:
        out[off:off + 4] = NOP.to_bytes(4, "little")
    return bytes(out)


def _leaf(kernel: "Kernel", table: str, va: int, key: str) -> tuple[int, int]:
    """(PA of the leaf descriptor that maps ``va`` in ``table``, the size it maps). A leaf that
    an earlier injection made invalid (or AF 0) still counts: its slot holds a descriptor."""
    t = walk(kernel.mem.read64, Regime(ttbr=kernel.pgd(table)), va, "read")
    if isinstance(t, Translation):
        return t.descriptors[-1], t.size
    slot = t.descriptors[-1] if t.descriptors else None
    if slot is not None and t.type in ("translation", "access_flag") and kernel.mem.read64(slot):
        return slot, LEVEL_SIZE[t.level]
    raise InjectError(None, key, f"VA {va:#x} is not mapped in the {table} table "
                                 f"({t.type} fault at level {t.level})")


def corrupt(kernel: "Kernel", table: str, va: int, field: str, value: int) -> dict:
    """Change one field of the leaf descriptor that maps ``va`` in ``table``."""
    pa, size = _leaf(kernel, table, va, "corrupt.va")
    old = kernel.mem.read64(pa)
    if field == "valid":
        new = (old & ~1) | (value & 1)
    elif field == "af":
        new = (old & ~(1 << 10)) | ((value & 1) << 10)
    elif field == "xn":
        new = (old & ~(1 << 54)) | ((value & 1) << 54)
    elif field == "ap":
        if not 0 <= value <= 3:
            raise InjectError(None, "corrupt.value", f"AP[2:1] is 2 bits (0..3), got {value}")
        new = (old & ~(0b11 << 6)) | (value << 6)
    elif field == "output":
        new = _with_output(old, value, size, "corrupt.value")
    else:
        raise InjectError(None, "corrupt.field", f"unknown field {field!r}")
    kernel.mem.write64(pa, new)
    record = {"kind": "corrupt", "table": table, "va": va, "field": field, "value": value,
              "descriptor_pa": pa, "old": old, "new": new}
    kernel.core.record(events.INJECT, "corrupt", new, pc=0,
                       detail=f"{table} table, VA {va:#x}: {field} = {value:#x} "
                              f"(descriptor at {pa:#x}: {old:#x} -> {new:#x})")
    return record


def _with_output(old: int, pa: int, size: int, key: str) -> int:
    if pa % size or not 0 <= pa < 1 << 40:
        raise InjectError(None, key, f"output address {pa:#x} must be a 40-bit PA aligned to the "
                                     f"mapping's size ({size:#x})")
    mask = ((1 << 40) - 1) & ~(size - 1)
    return (old & ~mask) | pa


def check_remap(kernel: "Kernel", table: str, va: int, to: int) -> None:
    """What ``remap`` would refuse, checked against the tables as they are (``hypemu validate``)."""
    pa, size = _leaf(kernel, table, va, "remap.va")
    _with_output(kernel.mem.read64(pa), to, size, "remap.to")


def remap(kernel: "Kernel", table: str, va: int, to: int, bbm: bool, tlbi: bool,
          at: Optional[int] = None) -> dict:
    """The kernel side points the live mapping of ``va`` at ``to``: break (write invalid), TLB
    invalidation through HYP, make (write the new descriptor), as ``bbm`` and ``tlbi`` say."""
    pa, size = _leaf(kernel, table, va, "remap.va")
    old = kernel.mem.read64(pa)
    new = _with_output(old, to, size, "remap.to")
    kernel.core.record(events.INJECT, "remap", to, pc=0,
                       detail=f"{table} table, VA {va:#x} -> PA {to:#x} (bbm {bbm}, tlbi {tlbi})")
    if bbm:
        kernel.mem.write64(pa, 0)
        if tlbi:
            kernel.hyp_tlbi(va)
    kernel.mem.write64(pa, new)
    if tlbi and not bbm:
        kernel.hyp_tlbi(va)
    return {"kind": "remap", "table": table, "va": va, "to": to, "bbm": bbm, "tlbi": tlbi,
            "at": at, "descriptor_pa": pa, "old": old, "new": new}


