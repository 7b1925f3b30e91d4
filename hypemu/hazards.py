"""The hazard checks: what a forgiving emulator hides (ARCHITECTURE.md, "The hazard checks").

Hardware keeps translations in its TLBs until they are invalidated, lets a system-register write
take effect only after a context synchronization event, and completes TLB maintenance only at a
DSB. hypemu keeps the same books and reports, once per site, where the guest (or the kernel side)
relied on something the architecture does not promise:

- ``stale_tlb``: an access or fetch served by a TLB entry that a fresh walk of the current tables
  and registers answers differently (another PA, other permissions or attributes, or a fault).
  The stale entry is still served, as hardware may.
- ``bbm``: a descriptor that a TLB entry was built from (so it may be cached) changed from one valid
  mapping to another (output address, table/block/page, memory attributes or shareability) without
  being made invalid *and* invalidated first. Permission-only changes (AP, XN, AF) need no
  break-before-make in the architecture; a later access served stale shows up as ``stale_tlb``.
- ``missing_isb``: a fetch or access whose translation differs depending on whether a write to
  HSCTLR, HTTBR, HTCR or HMAIR0/1 is visible yet, or an exception whose vector depends on an HVBAR
  write, with no ISB, exception entry or ERET since that write.
- ``missing_dsb``: an access, or a descriptor write, that relied on a TLB maintenance operation no
  DSB had completed. (The model itself completes TLB maintenance at once, checks on or off, so the
  access is served by a fresh walk: the report says hardware might still have used the old entry.)

No Python on the hot path: the checks run where Python runs anyway (Unicorn soft-TLB fills and
trapped instructions; the barriers are patched to trap when code is loaded, ``decode.barrier_kind``),
plus write-protection of the HYP table pages in Unicorn's soft TLB, so that a guest store to a table
page pauses the run: the CPU executes that one store and hands the page before and after here.

``Checks`` is an ``observer.CpuObserver``: it sees the CPUs only through ``observer.CpuView`` and
writes its reports into the board's ``events.EventLog``; it never imports the CPU model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Union

from . import events, lpae
from .observer import CpuView, LocateVA, Outcome
from .walker import Fault, Translation, same_mapping, walk

KINDS = ("stale_tlb", "bbm", "missing_isb", "missing_dsb")
REGIME_REGISTERS = ("HSCTLR", "HTTBR", "HTCR", "HMAIR0", "HMAIR1")
SYNCED_REGISTERS = REGIME_REGISTERS + ("HVBAR",)
PAGE = 4096


@dataclass
class Hazard:
    """One report: the kind, where (CPU and PC of the guest instruction; None for the kernel side),
    the VA concerned, and what differed."""

    kind: str
    cpu: Optional[int]
    pc: Optional[int]
    va: Optional[int]
    detail: str
    insn: Optional[int] = None     # the instruction word at pc, for the disassembly
    event: int = -1                # index of its event in the log
    thumb: bool = False            # insn is a Thumb instruction (CpuView.code_word)

    @property
    def disasm(self) -> Optional[str]:
        """The disassembly of ``insn`` (the JSON report's ``disasm``); None for the kernel side."""
        if self.insn is None:
            return None
        from .trace import disassemble   # capstone only when a report is rendered
        return disassemble(self.insn, self.pc or 0, self.thumb)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: the fields of this repr (``disasm``, not the word ``insn``)."""
        return {"kind": self.kind, "cpu": self.cpu, "pc": self.pc, "va": self.va,
                "disasm": self.disasm, "detail": self.detail}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_shown(k, v)}" for k, v in self.to_dict().items())
        return f"Hazard({shown})"


def _shown(key: str, value: Any) -> str:
    return f"{value:#x}" if key in ("pc", "va") and isinstance(value, int) else repr(value)


@dataclass
class Unfinished:
    """A TLB entry removed by a TLBI that no DSB of the issuing CPU has completed yet."""

    issuer: int
    entry: Translation
    values: tuple[int, ...]
    op: str
    pc: int


@dataclass
class CpuChecks:
    """What the checks remember for one CPU."""

    regime_version: int = 0
    # (va, size) -> (tables_version, regime_version) when last found current
    verified: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    # (va, size) -> descriptor values when walked
    values: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    # register -> (value still visible, pc of the write)
    unsynced: dict[str, tuple[int, int]] = field(default_factory=dict)
    unfinished: list[Unfinished] = field(default_factory=list)


_same = same_mapping


def _describe_walk(t: Union[Translation, Fault]) -> str:
    """A walk result or a TLB entry, by its whole range (the fill hook only knows the page)."""
    if isinstance(t, Fault):
        return f"a {t.type} fault at level {t.level}"
    perms = "".join(c if ok else "-" for c, ok in zip("rwx", (t.readable, t.writable, t.executable)))
    return f"VA {t.va:#x}+{t.size:#x} -> PA {t.pa:#x} ({perms}, {t.memtype})"


def material_change(old: int, new: int, level: int) -> bool:
    """True when going from descriptor ``old`` to ``new`` (both valid) needs break-before-make:
    another output address or next table, another kind, or other memory attributes/shareability."""
    a, b = lpae.decode_descriptor(old, level), lpae.decode_descriptor(new, level)
    if b.kind in ("invalid", "reserved") or a.kind in ("invalid", "reserved"):
        return False
    if a.kind != b.kind or a.address != b.address:
        return True
    if a.leaf is not None and b.leaf is not None:
        fields = ("attr_indx", "sh", "ns", "contiguous")
        return any(getattr(a.leaf, f) != getattr(b.leaf, f) for f in fields)
    return False


class Checks:
    """The checks of one board, a ``CpuObserver``: the CPUs call in at fills, register writes,
    barriers, exception entries, TLB maintenance, table stores and resets; the kernel side's
    descriptor writes arrive through the CPU (``descriptor_stored``)."""

    enabled = True

    def __init__(self, view: CpuView, log: events.EventLog,
                 tables: Optional[Mapping[int, str]] = None) -> None:
        self.view = view
        self.log = log
        self.tables = dict(tables or {})   # pgd PA -> its name (boot, runtime), for the reports
        self.hazards: list[Hazard] = []
        self.tables_version = 0
        self.cpu = [CpuChecks() for _ in range(view.ncpus)]
        self._sites: set[tuple[Any, ...]] = set()

    # --- reporting ------------------------------------------------------------------------------
    def report(self, kind: str, cpu: Optional[int], pc: Optional[int], va: Optional[int],
               detail: str, site: Optional[tuple[Any, ...]] = None,
               insn: Optional[int] = None, guest: bool = False,
               fetch: bool = False) -> Optional[Hazard]:
        """Record a hazard unless this site already reported one; the new Hazard, or None.
        ``guest``: a guest access during a run, whose PC (when ``pc`` is None) is read now, and
        whose VA is that PC for a fetch (the fill hook only gives the page)."""
        if guest and pc is None:
            pc = self.view.pc()
        if fetch and va is not None and pc is not None and pc >> 12 == va >> 12:
            va = pc
        site = site or (kind, cpu, pc)
        if site in self._sites:
            return None
        self._sites.add(site)
        if insn is None and pc is not None:
            insn = self.view.code_word(pc)
        hazard = Hazard(kind, cpu, pc, va, detail, insn, len(self.log),
                        insn is not None and self.view.thumb())
        self.hazards.append(hazard)
        self.log.record(events.HAZARD, kind, va, pc, detail)
        return hazard

    def _locator(self, hazard: Hazard) -> LocateVA:
        """What a data access's report needs: its exact VA, found by the CPU after the report."""
        def located(va: int) -> None:
            hazard.va = va
            self.log.set_value(hazard.event, va)
        return located

    # --- fills ----------------------------------------------------------------------------------
    def fill(self, cpu: int, va: int, access: str, hit: Optional[Translation],
             walked: Union[Translation, Fault, None], outcome: Outcome,
             hyp: bool) -> Optional[LocateVA]:
        """stale_tlb on a hit, missing_dsb on a miss an unfinished TLBI caused, missing_isb with
        unsynchronized regime writes; then a fresh walk's descriptors are remembered. A new report
        on a data access asks for its exact VA (also when the access faults: the report's VA is
        the fault's HDFAR then)."""
        hazard = None
        c = self.cpu[cpu]
        if hit is not None:
            if c.verified.get((hit.va, hit.size)) != (self.tables_version, c.regime_version):
                hazard = self._verify_hit(cpu, hit, va, access)
        elif walked is not None and c.unfinished:
            hazard = self._unfinished_hit(cpu, va, access)
        if hyp and c.unsynced and self._regime_pending(cpu):
            hazard = self._check_unsynced(cpu, va, access, outcome) or hazard
        if walked is not None and isinstance(walked, Translation):
            self._filled(cpu, walked)
        if hazard is not None and access != "fetch":
            return self._locator(hazard)
        return None

    def _filled(self, cpu: int, t: Translation) -> None:
        """A fresh walk went into the CPU's TLB: remember the descriptors it was built from."""
        c = self.cpu[cpu]
        key = (t.va, t.size)
        c.verified[key] = (self.tables_version, c.regime_version)
        if len(t.values) == len(t.descriptors):   # read by that walk, during this fill
            c.values[key] = t.values
        else:
            read = self.view.read64
            c.values[key] = tuple(read(pa) for pa in t.descriptors)

    def _verify_hit(self, cpu: int, t: Translation, va: int, access: str) -> Optional[Hazard]:
        """stale_tlb: a TLB hit, re-walked when the tables or the CPU's regime changed since the
        entry was last found current."""
        c = self.cpu[cpu]
        key, stamp = (t.va, t.size), (self.tables_version, c.regime_version)
        if c.verified.get(key) == stamp:
            return None
        c.verified[key] = stamp
        fresh = walk(self.view.read64, self.view.hyp_regime(cpu), va, access)
        if _same(t, fresh, va):
            return None
        return self.report("stale_tlb", cpu, None, va,
                           f"{access} served by the TLB entry {_describe_walk(t)}"
                           f"{self._filled_where(cpu, t)}; a fresh walk of "
                           f"{self._table(self.view.sysregs(cpu)['HTTBR'])} gives "
                           f"{_describe_walk(fresh)}", guest=True, fetch=access == "fetch")

    def _table(self, ttbr: int) -> str:
        """``the boot table (HTTBR 0x8000d000)``, or ``HTTBR 0x...`` for a table not named."""
        name = self.tables.get(ttbr & 0xFF_FFFF_FFFF)
        return f"the {name} table (HTTBR {ttbr:#x})" if name else f"HTTBR {ttbr:#x}"

    def _filled_where(self, cpu: int, t: Translation) -> str:
        """`` filled from the boot table (HTTBR ...) by the access at pc 0x... (instruction N)``."""
        origin = self.view.tlb_origin(cpu, t)
        if origin is None:
            return ""
        count = f" (instruction {origin.icount})" if origin.icount is not None else ""
        return (f", filled from {self._table(origin.ttbr)} by the access at pc "
                f"{origin.pc:#x}{count}")

    def _unfinished_hit(self, cpu: int, va: int, access: str) -> Optional[Hazard]:
        """missing_dsb: a TLB miss for a VA whose entry an uncompleted TLBI removed. When the fresh
        walk differs, the access relied on that TLBI: reported (the CPU goes on with the walk)."""
        for u in self.cpu[cpu].unfinished:
            if u.entry.covers(va):
                fresh = walk(self.view.read64, self.view.hyp_regime(cpu), va, access)
                if _same(u.entry, fresh, va):
                    return None
                return self.report(
                    "missing_dsb", cpu, None, va,
                    f"{access} relies on {u.op} at {u.pc:#x} (cpu{u.issuer}) having removed the "
                    f"TLB entry {_describe_walk(u.entry)}, but no DSB completed it; a fresh walk "
                    f"gives {_describe_walk(fresh)}", guest=True, fetch=access == "fetch")
        return None

    # --- context synchronization ----------------------------------------------------------------
    def sysreg_written(self, cpu: int, name: str, old: int, pc: int) -> None:
        if name not in SYNCED_REGISTERS:
            return
        c = self.cpu[cpu]
        if name != "HVBAR":
            c.regime_version += 1
        c.unsynced.setdefault(name, (old, pc))

    def barrier(self, cpu: int, kind: str) -> None:
        """ISB and ERET synchronize the context (every earlier register write is visible now);
        DSB completes every TLB maintenance operation this CPU issued; DMB orders nothing here."""
        if kind in ("isb", "eret"):
            self.cpu[cpu].unsynced.clear()
        elif kind == "dsb":
            for c in self.cpu:
                if c.unfinished:
                    c.unfinished = [u for u in c.unfinished if u.issuer != cpu]

    def _regime_pending(self, cpu: int) -> bool:
        unsynced = self.cpu[cpu].unsynced
        return bool(unsynced) and any(name != "HVBAR" for name in unsynced)

    def _check_unsynced(self, cpu: int, va: int, access: str, new: Outcome) -> Optional[Hazard]:
        """missing_isb: would this access translate differently with the unsynchronized writes
        not yet visible? (Only then did it depend on them.) ``new``: what it gives with them
        visible: the VA itself (MMU off), a Translation, or a Fault."""
        c = self.cpu[cpu]
        old_regs = dict(self.view.sysregs(cpu))
        for name, (value, _) in c.unsynced.items():
            old_regs[name] = value
        old = self.view.translate_with(cpu, old_regs, va, access)
        if _agree(old, new, va):
            return None
        old_pa, new_pa = _pa(old, va), _pa(new, va)
        writes = ", ".join(f"{n} at {p:#x}" for n, (_, p) in c.unsynced.items() if n != "HVBAR")
        insn, pc = None, self.view.pc()
        if access == "fetch":   # the word is readable through whichever regime maps it
            page = new_pa if new_pa is not None else old_pa
            if page is not None:
                insn = self.view.code_word_at((page & ~0xFFF) + (pc & 0xFFF))
        return self.report("missing_isb", cpu, pc, va,
                           f"{access} depends on {writes} with no ISB since: "
                           f"{_result(new)} with the writes visible, {_result(old)} without",
                           insn=insn, guest=True, fetch=access == "fetch")

    def exception_entry(self, cpu: int, pc: int, vector_base: int) -> None:
        """An exception uses HVBAR as it is visible; an unsynchronized write makes that unknown."""
        pending = self.cpu[cpu].unsynced.get("HVBAR")
        if pending is not None and (pending[0] & ~0x1F) != vector_base:
            self.report("missing_isb", cpu, pc, None,
                        f"taking this exception reads HVBAR, whose write at {pending[1]:#x} "
                        f"({pending[0]:#x} -> {vector_base:#x}) no ISB has synchronized yet: the "
                        f"exception may be taken to the old vectors")
        self.cpu[cpu].unsynced.clear()

    # --- TLB maintenance ------------------------------------------------------------------------
    def tlbi(self, cpu: int, removed: Mapping[int, list[Translation]], op: str, pc: int) -> None:
        """Entries a TLBI removed stay 'unfinished' until the issuing CPU executes a DSB."""
        for cpu_id, entries in removed.items():
            c = self.cpu[cpu_id]
            for t in entries:
                key = (t.va, t.size)
                c.verified.pop(key, None)
                values = c.values.pop(key, ())
                c.unfinished.append(Unfinished(cpu, t, values, op, pc))

    def reset(self, cpu: int) -> None:
        """Power on or off: the CPU's registers and TLB are at reset, nothing is pending."""
        self.cpu[cpu] = CpuChecks(regime_version=self.cpu[cpu].regime_version + 1)

    # --- page-table writes ----------------------------------------------------------------------
    def table_stored(self, before: Mapping[int, bytes], cpu: Optional[int] = None,
                     pc: Optional[int] = None) -> None:
        """Table pages written (by a stepped guest store, or from outside the guest): each changed
        descriptor, against the page's bytes ``before``, goes to ``descriptor_changed``."""
        for page, old in before.items():
            new = self.view.read(page, PAGE)
            for off in range(0, PAGE, 8):
                if old[off:off + 8] != new[off:off + 8]:
                    self.descriptor_changed(page + off, int.from_bytes(old[off:off + 8], "little"),
                                            int.from_bytes(new[off:off + 8], "little"), cpu, pc)

    def descriptor_stored(self, pa: int, old: int, new: int) -> None:
        """The kernel side wrote a descriptor."""
        self.descriptor_changed(pa, old, new)

    def descriptor_changed(self, pa: int, old: int, new: int, cpu: Optional[int] = None,
                           pc: Optional[int] = None) -> None:
        """A descriptor changed (guest store, or the kernel side when cpu is None): bbm, or
        missing_dsb when the entries built from it were removed by a TLBI no DSB completed."""
        self.tables_version += 1
        if old == new or not new & 1:
            return
        who = f"cpu{cpu} at {pc:#x}" if cpu is not None and pc is not None else "the kernel side"
        for kind, holder, t, values, op in self._holders(pa):
            index = t.descriptors.index(pa)
            level = t.level - (len(t.descriptors) - 1 - index)
            cached = values[index] if index < len(values) else old
            if not material_change(cached, new, level):
                continue
            if kind == "bbm":
                why = "without break-before-make (made invalid, invalidated, then written)"
            else:
                why = f"while the {op} that removed it had no DSB to complete it"
            site = (kind, cpu, pc) if cpu is not None else (kind, pa)
            self.report(kind, cpu, pc, t.va,
                        f"{who} changed the level-{level} descriptor at PA {pa:#x} from "
                        f"{cached:#x} to {new:#x} while cpu{holder} may cache it (VA {t.va:#x}) {why}",
                        site=site)
            return

    def _holders(self, pa: int) -> Iterator[tuple[str, int, Translation, tuple[int, ...],
                                                  Optional[str]]]:
        for cpu in range(self.view.ncpus):
            c = self.cpu[cpu]
            for t in self.view.tlb_entries(cpu):
                if pa in t.descriptors:
                    yield "bbm", cpu, t, c.values.get((t.va, t.size), ()), None
        for cpu_id, c in enumerate(self.cpu):
            for u in c.unfinished:
                if pa in u.entry.descriptors:
                    yield "missing_dsb", cpu_id, u.entry, u.values, f"{u.op} at {u.pc:#x}"


def _pa(r: Outcome, va: int) -> Optional[int]:
    if isinstance(r, Fault):
        return None
    return r if isinstance(r, int) else r.pa_of(va)


def _agree(a: Outcome, b: Outcome, va: int) -> bool:
    """Would the access be the same either way? Two walks must agree in PA, permissions and
    attributes (an HMAIR write changes only the latter); MMU off against on only in the PA, which
    is what an identity map promises (the dual-step init relies on it); two faults agree."""
    if isinstance(a, Fault) or isinstance(b, Fault):
        return isinstance(a, Fault) and isinstance(b, Fault)
    if isinstance(a, Translation) and isinstance(b, Translation):
        return _same(a, b, va)
    return _pa(a, va) == _pa(b, va)


def _result(r: Outcome) -> str:
    if isinstance(r, Fault):
        return f"a {r.type} fault (level {r.level})"
    if isinstance(r, Translation):
        return _describe_walk(r)
    return f"PA {r:#x} (MMU off)"
