"""Fault injection: the kernel or HYP bugs that the hazard checks exist to catch, made on purpose.

- ``skip``: an instruction of the init or runtime code becomes a NOP, chosen by mnemonic (every
  ISB/DSB/DMB, or every MCR/MCRR to a cp15 operation or register such as TLBIALLH or HSCTLR) or by
  ``{symbol, offset}``. In Thumb-2 code the instructions are those of the Thumb instruction stream
  (read from the region's start): the offset must start one, and a 16-bit instruction becomes a
  16-bit NOP, a 32-bit one NOP.W.
- ``corrupt``: one field of the leaf descriptor mapping a VA in the boot or runtime table is changed
  after the kernel side built the table (a kernel bug or a stray write).
- ``remap``: the kernel side points a live mapping elsewhere between steps, with or without
  break-before-make and TLB invalidation. PL1 cannot invalidate the HYP TLB itself, so, like KVM, it
  asks HYP: an HVC to ``hyp_tlbi_va_is`` on the first online CPU.

The ``Injector`` applies them in three explicit phases: ``patch_code`` (skips, on the guest image
before it is loaded), ``after_tables`` (corruptions, once the kernel side built its tables) and
``before_step`` (remaps, just before their step). It edits tables only through a ``TableEditor``
(the kernel side implements it), so the descriptor writes reach the hazard checks, and this module
depends on no kernel-side module. Every injection is recorded in the event log (kind ``inject``)
and as a dict for the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Protocol, Union

from . import cp15, events, lpae
from .errors import did_you_mean
from .decode import Insn, barrier_kind, decode_insn, decode_thumb, thumb_stream
from .loader import GuestImage, Region
from .walker import Regime, Translation, walk

NOP = 0xE320F000          # NOP (ARMv6K hint), ARM encoding
THUMB_NOPS = {2: (0xBF00,), 4: (0xF3AF, 0x8000)}   # NOP (T1) and NOP.W (T2), by halfword
BARRIERS = ("isb", "dsb", "dmb")
SKIP_REGIONS = ("init", "runtime")
CORRUPT_FIELDS = ("valid", "af", "xn", "ap", "output")


class InjectError(ValueError):
    """An injection that cannot apply to this machine (names the ``inject[i]`` key)."""

    def __init__(self, index: Optional[int], key: str, message: str):
        self.index, self.key = index, key
        super().__init__(message)


# --- the injections, typed ------------------------------------------------------------------------
@dataclass(frozen=True)
class Skip:
    """NOP out every instruction named ``mnemonic``, or the one at ``symbol`` + ``offset``."""

    mnemonic: Optional[str] = None
    symbol: Optional[str] = None
    offset: int = 0

    @property
    def what(self) -> str:
        return self.mnemonic if self.mnemonic is not None else f"{self.symbol}+{self.offset:#x}"


@dataclass(frozen=True)
class Corrupt:
    table: str
    va: int
    field: str
    value: int


@dataclass(frozen=True)
class Remap:
    table: str
    va: int
    to: int
    bbm: bool = True
    tlbi: bool = True
    at: Optional[int] = None      # the step it runs before (None: now, from the API)


Injection = Union[Skip, Corrupt, Remap]


class TableEditor(Protocol):
    """What injection needs of the kernel side: its table memory, its pgds, HYP TLB maintenance
    (an HVC) and the event log."""

    def read64(self, pa: int) -> int:
        """The descriptor at ``pa``."""

    def write64(self, pa: int, value: int) -> None:
        """Write a descriptor as the kernel side does (the hazard checks see it)."""

    def pgd(self, table: str) -> int:
        """The PA of the ``boot`` or ``runtime`` HYP pgd."""

    def hyp_tlbi(self, va: int) -> None:
        """Invalidate ``va`` in every HYP TLB, through HYP."""

    def record(self, kind: str, name: str, value: Optional[int] = None, pc: Optional[int] = None,
               detail: str = "") -> None:
        """Add an event to the log."""


# --- skip -----------------------------------------------------------------------------------------
Site = tuple[str, int, int]
"""(region name, byte offset, instruction size) of an instruction to skip."""


def instructions(region: Region) -> Iterator[tuple[int, int, int]]:
    """(offset, value, size) of each instruction of ``region``: ARM words, or the Thumb
    instruction stream from the region's start (a 32-bit one as hw1 << 16 | hw2). Deviation: data
    inside the code is read as instructions too (and can put a Thumb walk out of step)."""
    code = region.code
    if not region.thumb:
        for off in range(0, len(code) - len(code) % 4, 4):
            yield off, int.from_bytes(code[off:off + 4], "little"), 4
        return
    yield from thumb_stream(code)


def _matches(word: int, name: str, size: int = 4, thumb: bool = False) -> bool:
    if name in BARRIERS:
        return size == 4 and barrier_kind(word, thumb) == name
    insn: Optional[Insn] = decode_thumb(word, size) if thumb else decode_insn(word)
    if insn is None or insn.op not in ("mcr", "mcrr"):
        return False
    key = ("c", insn.opc1, insn.crn, insn.crm, insn.opc2) if insn.op == "mcr" else ("q", insn.opc1, insn.crm)
    row = cp15.lookup(key)
    return row is not None and row.name.lower() == name


def skip_sites(regions: list[Region], skip: Skip) -> list[Site]:
    """(region name, byte offset, size) of every instruction ``skip`` names, in the regions."""
    if skip.mnemonic is not None:
        name = skip.mnemonic.lower()
        sites = []
        for region in regions:
            for off, value, size in instructions(region):
                if _matches(value, name, size, region.thumb):
                    sites.append((region.name, off, size))
        if not sites:
            raise InjectError(None, "skip", f"no {skip.mnemonic!r} instruction in the init or "
                                            f"runtime code")
        return sites
    symbol = skip.symbol or ""
    owners = [region for region in regions if symbol in region.symbols]
    if not owners:
        known = [name for region in regions for name in region.globals]
        raise InjectError(None, "skip.symbol", f"no symbol {symbol!r} in the init or runtime code"
                                               f"{did_you_mean(symbol, known)}")
    if len(owners) > 1:
        raise InjectError(None, "skip.symbol", f"{symbol!r} is a label of both the init and the "
                                               f"runtime code: ambiguous")
    region = owners[0]
    off = region.address(symbol) - region.base + skip.offset
    if not 0 <= off <= len(region.code) - (2 if region.thumb else 4):
        raise InjectError(None, "skip.offset", f"{symbol}+{skip.offset:#x} is outside the "
                                               f"{region.name} code")
    if not region.thumb:
        return [(region.name, off, 4)]
    for start, _, size in instructions(region):
        if start == off:
            return [(region.name, off, size)]
        if start > off:
            break
    raise InjectError(None, "skip.offset", f"{symbol}+{skip.offset:#x} is inside a 32-bit Thumb "
                                           f"instruction of the {region.name} code")


def nop_out(code: bytes, sites: list[tuple[int, int]], thumb: bool = False) -> bytes:
    """``code`` with the instruction at each (offset, size) made a NOP of its own size."""
    out = bytearray(code)
    for off, size in sites:
        if thumb:
            out[off:off + size] = b"".join(h.to_bytes(2, "little") for h in THUMB_NOPS[size])
        else:
            out[off:off + 4] = NOP.to_bytes(4, "little")
    return bytes(out)


# --- descriptors ----------------------------------------------------------------------------------
def find_leaf(editor: TableEditor, table: str, va: int, key: str) -> tuple[int, int]:
    """(PA of the leaf descriptor that maps ``va`` in ``table``, its lookup level). A leaf that
    an earlier injection made invalid (or AF 0) still counts: its slot holds a descriptor."""
    t = walk(editor.read64, Regime(ttbr=editor.pgd(table)), va, "read")
    if isinstance(t, Translation):
        return t.descriptors[-1], t.level
    slot = t.descriptors[-1] if t.descriptors else None
    if slot is not None and t.type in ("translation", "access_flag") and editor.read64(slot):
        return slot, t.level
    raise InjectError(None, key, f"VA {va:#x} is not mapped in the {table} table "
                                 f"({t.type} fault at level {t.level})")


def _output_checked(pa: int, level: int, key: str) -> int:
    size = lpae.LEVEL_SIZE[level]
    if pa % size or not 0 <= pa < 1 << lpae.PA_BITS:
        raise InjectError(None, key, f"output address {pa:#x} must be a 40-bit PA aligned to the "
                                     f"mapping's size ({size:#x})")
    return pa


def corrupted(old: int, level: int, field: str, value: int) -> int:
    """``old`` with one field set, through lpae's own field encoders."""
    if field == "valid":
        return lpae.edit_leaf(old, level, valid=bool(value & 1))
    if field in ("af", "xn"):
        return lpae.edit_leaf(old, level, **{field: bool(value & 1)})
    if field == "ap":
        if not 0 <= value <= 3:
            raise InjectError(None, "corrupt.value", f"AP[2:1] is 2 bits (0..3), got {value}")
        return lpae.edit_leaf(old, level, ap=value)
    if field == "output":
        return lpae.edit_leaf(old, level, output=_output_checked(value, level, "corrupt.value"))
    raise InjectError(None, "corrupt.field", f"unknown field {field!r}")


def corrupt(editor: TableEditor, c: Corrupt) -> dict[str, Any]:
    """Change one field of the leaf descriptor that maps ``c.va`` in ``c.table``."""
    pa, level = find_leaf(editor, c.table, c.va, "corrupt.va")
    old = editor.read64(pa)
    new = corrupted(old, level, c.field, c.value)
    editor.write64(pa, new)
    editor.record(events.INJECT, "corrupt", new,
                  detail=f"{c.table} table, VA {c.va:#x}: {c.field} = {c.value:#x} "
                         f"(descriptor at {pa:#x}: {old:#x} -> {new:#x})")
    return {"kind": "corrupt", "table": c.table, "va": c.va, "field": c.field, "value": c.value,
            "descriptor_pa": pa, "old": old, "new": new}


def check_remap(editor: TableEditor, r: Remap) -> None:
    """What ``remap`` would refuse, checked against the tables as they are (``hypemu validate``)."""
    pa, level = find_leaf(editor, r.table, r.va, "remap.va")
    _output_checked(r.to, level, "remap.to")


def remap(editor: TableEditor, r: Remap) -> dict[str, Any]:
    """The kernel side points the live mapping of ``r.va`` at ``r.to``: break (write invalid), TLB
    invalidation through HYP, make (write the new descriptor), as ``bbm`` and ``tlbi`` say."""
    pa, level = find_leaf(editor, r.table, r.va, "remap.va")
    old = editor.read64(pa)
    new = lpae.edit_leaf(old, level, output=_output_checked(r.to, level, "remap.to"))
    editor.record(events.INJECT, "remap", r.to,
                  detail=f"{r.table} table, VA {r.va:#x} -> PA {r.to:#x} (bbm {r.bbm}, tlbi {r.tlbi})")
    if r.bbm:
        editor.write64(pa, 0)
        if r.tlbi:
            editor.hyp_tlbi(r.va)
    editor.write64(pa, new)
    if r.tlbi and not r.bbm:
        editor.hyp_tlbi(r.va)
    return {"kind": "remap", "table": r.table, "va": r.va, "to": r.to, "bbm": r.bbm,
            "tlbi": r.tlbi, "at": r.at, "descriptor_pa": pa, "old": old, "new": new}


# --- the phases -----------------------------------------------------------------------------------
class Injector:
    """A scenario's injections (each with its index in ``inject``, for error keys), applied phase
    by phase; ``records`` is what the result lists, in the order they were applied."""

    def __init__(self, entries: list[Injection]):
        self.entries = list(enumerate(entries))
        self.records: list[dict[str, Any]] = []
        self._unlogged: list[tuple[str, list[int]]] = []   # skips made before the log existed

    @staticmethod
    def _located(index: Optional[int], action: Callable[[], Any]) -> Any:
        """Run one injection; an InjectError learns which ``inject[i]`` it came from."""
        try:
            return action()
        except InjectError as err:
            err.index = index
            raise

    def patch_code(self, image: GuestImage) -> GuestImage:
        """Phase 1, before loading: every ``skip`` makes its instructions NOPs. Each finds its
        instructions in the code as linked (not as an earlier skip left it)."""
        linked = [getattr(image, name) for name in SKIP_REGIONS]
        for index, entry in self.entries:
            if not isinstance(entry, Skip):
                continue
            sites = self._located(index, lambda: skip_sites(linked, entry))
            for name in SKIP_REGIONS:
                region = getattr(image, name)
                offsets = [(off, size) for where, off, size in sites if where == name]
                image = image.replace(region.with_code(nop_out(region.code, offsets,
                                                               region.thumb)))
            addresses = [getattr(image, name).base + off for name, off, _ in sites]
            self.records.append({"kind": "skip", "what": entry.what, "addresses": addresses})
            self._unlogged.append((entry.what, addresses))
        return image

    def after_tables(self, editor: TableEditor) -> None:
        """Phase 2, once the image is loaded and the tables are built: log the skips, then make
        every ``corrupt``."""
        for what, addresses in self._unlogged:
            editor.record(events.INJECT, "skip", len(addresses), pc=addresses[0],
                          detail=f"{what}: {len(addresses)} instruction(s) made NOPs at "
                                 + ", ".join(f"{a:#x}" for a in addresses))
        self._unlogged = []
        for index, entry in self.entries:
            if isinstance(entry, Corrupt):
                c = entry
                self.records.append(self._located(index, lambda: corrupt(editor, c)))

    def before_step(self, step: int, editor: TableEditor, new_step: Callable[[], None]) -> None:
        """Phase 3, before step ``step``: each ``remap`` due there, each with a fresh budget
        (``new_step``) for its TLB maintenance HVC."""
        for index, entry in self.entries:
            if isinstance(entry, Remap) and entry.at == step:
                r = entry
                new_step()
                self.records.append(self._located(index, lambda: remap(editor, r)))

    def check_remaps(self, editor: TableEditor) -> None:
        """Whether every ``remap`` fits the tables as built (``hypemu validate``); applies nothing."""
        for index, entry in self.entries:
            if isinstance(entry, Remap):
                r = entry
                self._located(index, lambda: check_remap(editor, r))

    def now(self, editor: TableEditor, entry: Union[Corrupt, Remap]) -> dict[str, Any]:
        """An injection from the Machine API, applied at once."""
        record = corrupt(editor, entry) if isinstance(entry, Corrupt) else remap(editor, entry)
        self.records.append(record)
        return record
