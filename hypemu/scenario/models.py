"""The typed scenario (format 1): frozen models whose fields declare every key once, with its kind,
default and meaning. The README key table, the defaults the validator applies and the shipped
``scenario.schema.json`` are all derived from these declarations (``keys``), so a key cannot be
documented, defaulted and checked in four places that drift apart.

A field declared with ``key(...)`` is a YAML key; ``section(Model)`` is a mapping of keys;
``variants=`` lists the typed forms of a list item, each tagged by its one key (``BootStep.TAG ==
"boot"``). Defaults are written as in YAML (``"auto"``); the typed value is what the validator
makes of them (``None`` for an automatic idmap offset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Literal, Mapping, Optional, Union

from ..layout import Bank
from . import values as v
from .values import key, section

FORMAT = 1

OUTCOMES = ("ok", "fault", "hazard", "config_error", "timeout")
HAZARD_KINDS = ("stale_tlb", "bbm", "missing_isb", "missing_dsb")   # hazards.KINDS (a test checks)
FAULT_KINDS = ("prefetch_abort", "data_abort", "undefined")
FAULT_FSCS = ("translation", "access_flag", "permission", "address_size", "alignment", "external")
INIT_KINDS = ("dual-step", "single-step")
BOUNCE_PAGE = ("auto", "never")
CALL_ABIS = ("seed", "linux-3.10")
ASSEMBLERS = ("builtin", "gnu", "llvm", "auto")     # toolchain.ASSEMBLERS (a test checks)
ISAS = ("arm", "thumb2")
HOTPLUG_STATES = ("on", "off")
INJECT_TABLES = ("boot", "runtime")
CORRUPT_FIELDS = ("valid", "af", "xn", "ap", "output")
SKIP_BARRIERS = ("isb", "dsb", "dmb")
PREPROCESSORS = ("auto", "external", "python")    # cpp.PREPROCESSORS (a test checks)
STUB_KINDS = ("auto", "builtin", "kernel")

MAX_CPUS = 8
MAX_BANKS = 8
MAX_ARGS = 3                  # r1-r3
PHYS_LIMIT = 1 << 40          # LPAE: a 40-bit physical address space
U32 = 0xFFFFFFFF


ADDRESS = v.int_kind("address", 0, U32, size=True, hexa=True)
SIZE = v.int_kind("size", 0, PHYS_LIMIT, size=True, hexa=True)
PA = v.int_kind("size", 0, PHYS_LIMIT - 1, size=True, hexa=True)        # a PA, written as a size
ARG = v.int_kind("int", 0, U32, hexa=True)
IDENT_KIND = v.Kind("identifier", {"type": "string", "pattern": v.IDENT_PATTERN})
CPU_ID = v.int_kind("int", 0, MAX_CPUS - 1)
# YAML 1.1 reads a bare on/off as a boolean: the loader keeps the word (values.BoolWord), and the
# schema allows true/false for the YAML 1.1 readers of editors (a file's true/false is refused).
HOTPLUG_STATE = v.Choice("on|off", {"enum": [*HOTPLUG_STATES, True, False]}, HOTPLUG_STATES)
LIST = v.other("list", {"type": "array"})
MAPPING = v.other("mapping", {"type": "object"})


# --- machine, kernel, hyp, limits -------------------------------------------------------------------
@dataclass(frozen=True)
class RamKeys:
    """The keys of one RAM bank (its typed value is a ``layout.Bank``)."""

    base: int = key(PA, "bank base PA, page-aligned", 0x80000000)
    size: int = key(SIZE, "bank size, page-aligned, > 0; base + size <= 1 TiB (40 bits)", 1 << 30)


@dataclass(frozen=True)
class MachineSection:
    cpus: int = key(v.int_kind("int 1..8", 1, MAX_CPUS), "number of CPUs", 1)
    banks: tuple[Bank, ...] = key(
        v.other("bank or list", {}), "RAM: one bank {base, size} or a list of up to 8 banks",
        model=RamKeys, name="ram")
    tlb_entries: int = key(v.int_kind("int >= 0", 0, 1_000_000), "TLB entries per CPU; 0 keeps "
                           "everything until invalidated", 0)


@dataclass(frozen=True)
class KernelSection:
    page_offset: int = key(v.int_kind("address", 0x10000000, 0xF0000000, size=True, hexa=True),
                           "kernel lowmem VA of the first RAM byte; 16 MiB aligned, "
                           "0x10000000..0xf0000000", 0xC0000000)
    text_offset: int = key(PA, "kernel image offset in the first bank, page-aligned", 0x8000)
    hyp_idmap_offset: Optional[int] = key(
        v.other("auto or size", {"anyOf": [{"const": "auto"}, v.SIZE_SCHEMA]}),
        "offset of the HYP init code from the image start (auto, or an int >= 0x1000, 32-byte "
        "aligned)", "auto")
    isa: str = key(v.one_of(ISAS), "the instruction set the kernel was built for: arm, or thumb2 "
                   "(CONFIG_THUMB2_KERNEL: the guest code assembled as Thumb-2, HYP exceptions "
                   "taken in Thumb state); a kernel tree's CONFIG_THUMB2_KERNEL and an ELF's "
                   "Thumb symbols imply thumb2", "arm")
    config: tuple[tuple[str, Optional[str]], ...] = key(
        v.other("mapping", {"type": "object", "propertyNames": {"pattern": "^CONFIG_[A-Za-z0-9_]+$"},
                            "additionalProperties": {"type": ["integer", "string", "boolean"]}}),
        "with a kernel tree: CONFIG_ values that add to or override the board's (an int, a "
        "string, true/y, m, or false/n to unset one)", {}, value=())


@dataclass(frozen=True)
class CodeKeys:
    """The keys of ``hyp.code`` as a mapping, exactly one of ``kernel`` and ``elf``: the kernel's
    own code (a ``KernelTreeCode``, or an ``ElfCode``)."""

    kernel: str = key(v.other("path", {"type": "string", "minLength": 1}),
                      "a Linux kernel source tree (relative to the scenario); its "
                      "arch/arm/kvm/init.S and arch/arm/kernel/hyp-stub.S are preprocessed and run")
    preprocessor: str = key(v.one_of(PREPROCESSORS), "the C preprocessor: auto (the user's "
                            "$(CROSS_COMPILE)gcc -E or cpp when found, else python), external, or "
                            "python (pcpp)", value="auto")
    elf: tuple[str, ...] = key(
        v.other("path or list", {"anyOf": [{"type": "string", "minLength": 1},
                                           {"type": "array", "minItems": 1,
                                            "items": {"type": "string", "minLength": 1}}]}),
        "a vmlinux or relocatable objects (init.o, hyp-stub.o...), relative to the scenario",
        value=())


@dataclass(frozen=True)
class KernelTreeCode:
    """``hyp.code: {kernel: PATH}``: a kernel source tree (an absolute path) and the preprocessor
    to run over it."""

    path: str
    preprocessor: str = "auto"


@dataclass(frozen=True)
class HypSection:
    init: str = key(v.one_of(INIT_KINDS), "the HYP init design", "dual-step")
    trampoline_va: int = key(ADDRESS, "the trampoline VA (a 32-bit VA; the kernel refuses it unless "
                                      "page-aligned)", 0xFFFF0000)
    bounce_page: str = key(v.one_of(BOUNCE_PAGE), "copy the init code to a bounce page when it "
                                                  "crosses a page", "auto")
    code: Union[str, KernelTreeCode, "ElfCode"] = key(
        v.other("builtin, path or mapping", {"type": "string", "minLength": 1}),
        "the init code: builtin, a .S file relative to the scenario, {kernel: PATH}: a kernel "
        "tree's own code (its version picks the defaults of hyp.init and hyp.call_abi), or "
        "{elf: PATH or [PATH...]}: a vmlinux or relocatable objects", "builtin",
        model=CodeKeys, alternative=True)
    stub: str = key(v.other("auto, builtin, kernel or path", {"type": "string", "minLength": 1}),
                    "the HYP stub: the kernel's (arch/arm/kernel/hyp-stub.S or the ELF's, with its "
                    "contract: the stub returns in HYP, hypemu's head.S helper drops to SVC), "
                    "hypemu's builtin one, or a .S file written to the kernel's contract; auto: the "
                    "kernel's with a kernel tree or an ELF that has it, else builtin", "auto")
    assembler: str = key(v.one_of(ASSEMBLERS), "who assembles the .S sources: builtin (hypemu's "
                         "own), gnu ($(CROSS_COMPILE)as), llvm (llvm-mc), auto (gnu, else llvm, "
                         "else builtin)", "builtin")
    call_abi: str = key(v.one_of(CALL_ABIS), "how the init HVCs pass their arguments", "seed")


@dataclass(frozen=True)
class ElfCode:
    """``hyp.code: {elf: ...}``: the absolute paths of a vmlinux or of relocatable objects."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class Limits:
    instructions: int = key(v.int_kind("int 1..10**10", 1, 10**10), "instruction budget per step; "
                            "past it: timeout", 1_000_000)


# --- steps ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BootStep:
    """Bring CPUs up: ``"all"`` (ascending ids) or the listed ids, in order."""

    TAG: ClassVar[str] = "boot"
    BODY: ClassVar[Optional[tuple[v.Kind, str]]] = (
        v.other("all or list", {"anyOf": [{"const": "all"}, {"type": "array", "minItems": 1,
                                                             "items": CPU_ID.schema}]}),
        "all, or a list of distinct CPU ids: stub install, HYP init")
    cpus: Union[Literal["all"], tuple[int, ...]]

    def label(self) -> str:
        """The step in words, as the trace heads it: ``boot all``, ``boot cpu2, cpu0``."""
        return "boot " + ("all" if self.cpus == "all" else ", ".join(f"cpu{c}" for c in self.cpus))


@dataclass(frozen=True)
class CallStep:
    """An HVC into the runtime HYP code."""

    TAG: ClassVar[str] = "call"
    BODY: ClassVar[Optional[tuple[v.Kind, str]]] = None
    cpu: int = key(CPU_ID, "CPU that issues the HVC", 0)
    fn: Union[str, int] = key(
        v.other("identifier or address", {"anyOf": [IDENT_KIND.schema, ADDRESS.schema]}),
        "required: the runtime HYP function to call, by name or by HYP VA (as `Machine.call`)")
    args: tuple[int, ...] = key(
        v.other("list of int", {"type": "array", "maxItems": MAX_ARGS, "items": ARG.schema}),
        "up to 3 arguments (r1-r3), each 0..0xffffffff", [])

    def label(self) -> str:
        """``cpu0 call hyp_read(0xc000b000)``."""
        args = "(" + ", ".join(f"{a:#x}" for a in self.args) + ")" if self.args else ""
        return f"cpu{self.cpu} call {self.fn}{args}"


@dataclass(frozen=True)
class HotplugStep:
    """Power a CPU down, or up again (and re-run its HYP init)."""

    TAG: ClassVar[str] = "hotplug"
    BODY: ClassVar[Optional[tuple[v.Kind, str]]] = None
    cpu: int = key(CPU_ID, "required: the CPU")
    state: str = key(HOTPLUG_STATE, "required: power the CPU down, or up and re-run "
                                                "HYP init")

    def label(self) -> str:
        """``hotplug cpu1 off``."""
        return f"hotplug cpu{self.cpu} {self.state}"


Step = Union[BootStep, CallStep, HotplugStep]
STEP_TYPES: tuple[type, ...] = (BootStep, CallStep, HotplugStep)


# --- injections -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Skip:
    """Instructions of the init and runtime code made NOPs: every one named ``mnemonic``, or the
    one at ``symbol + offset``."""

    TAG: ClassVar[str] = "skip"
    BODY: ClassVar[Optional[tuple[v.Kind, str]]] = (
        v.other("mnemonic or mapping", {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.]*$"}),
        "make instructions of the init and runtime code NOPs: every isb, dsb, dmb, or MCR/MCRR to a "
        "cp15 operation or register (tlbiallh, tlbimvah, hsctlr, ...); or the one at {symbol, offset}")
    mnemonic: Optional[str]
    symbol: Optional[str] = key(IDENT_KIND, "required: a global label of the init or runtime code",
                                value=None)
    offset: int = key(v.int_kind("int", 0, 1 << 20, hexa=True), "byte offset from the symbol, a "
                      "multiple of 4 (kernel.isa thumb2: of 2, the start of an instruction)", 0,
                      value=0)

    @property
    def what(self) -> str:
        """How the result names it: the mnemonic, or ``symbol+offset``."""
        return self.mnemonic if self.mnemonic is not None else f"{self.symbol}+{self.offset:#x}"


@dataclass(frozen=True)
class Corrupt:
    """One field of the leaf descriptor that maps ``va``, changed after the table was built."""

    TAG: ClassVar[str] = "corrupt"
    BODY: ClassVar[Optional[tuple[v.Kind, str]]] = None
    table: str = key(v.one_of(INJECT_TABLES), "required: the HYP table to corrupt")
    va: int = key(ADDRESS, "required: a VA that table maps")
    field: str = key(v.one_of(CORRUPT_FIELDS), "required: the descriptor field")
    value: int = key(v.int_kind("int", 0, PHYS_LIMIT - 1, size=True, hexa=True),
                     "required: 0/1 for valid, af, xn; 0..3 for ap (AP[2:1]); a PA aligned to the "
                     "mapping's size for output")


@dataclass(frozen=True)
class Remap:
    """The kernel side points a live mapping elsewhere just before ``steps[at]``."""

    TAG: ClassVar[str] = "remap"
    BODY: ClassVar[Optional[tuple[v.Kind, str]]] = None
    table: str = key(v.one_of(INJECT_TABLES), "required: the HYP table")
    va: int = key(ADDRESS, "required: a VA that table maps")
    to: int = key(v.int_kind("address", 0, PHYS_LIMIT - 1, size=True, hexa=True),
                  "required: the new output PA, aligned to the mapping's size")
    bbm: bool = key(v.Flag("bool", {"type": "boolean"}), "break-before-make: write the descriptor "
                                                         "invalid first", True)
    tlbi: bool = key(v.Flag("bool", {"type": "boolean"}), "invalidate the HYP TLBs (an HVC to "
                                                          "hyp_tlbi_va_is)", True)
    at: int = key(v.int_kind("int", 0), "required: the kernel side remaps just before steps[at]")


Injection = Union[Skip, Corrupt, Remap]
INJECTION_TYPES: tuple[type, ...] = (Skip, Corrupt, Remap)


# --- expect -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaultMatch:
    """A partial match of the fault: only the keys in ``given`` are compared."""

    cpu: Optional[int] = key(v.int_kind("int", 0, MAX_CPUS - 1), "CPU that faulted", value=None)
    kind: Optional[str] = key(v.one_of(FAULT_KINDS), "exception kind", value=None)
    pc: Optional[int] = key(v.int_kind("int", 0, U32, hexa=True), "PC of the faulting instruction",
                            value=None)
    va: Optional[int] = key(v.int_kind("int or null", 0, U32, hexa=True, nullable=True),
                            "faulting VA", value=None)
    fsc: Optional[str] = key(v.one_of(FAULT_FSCS, nullable=True), "fault status class", value=None)
    level: Optional[int] = key(v.int_kind("int 0..3 or null", 0, 3, nullable=True),
                               "lookup level of the fault", value=None)
    hsr: Optional[int] = key(v.int_kind("int", 0, U32, hexa=True), "HSR value", value=None)
    given: tuple[str, ...] = ()

    def items(self) -> Iterator[tuple[str, Any]]:
        """The (key, expected value) pairs to compare, in the order they were given."""
        for name in self.given:
            yield name, getattr(self, name)


@dataclass(frozen=True)
class Expect:
    outcome: str = key(v.one_of(OUTCOMES), "the expected outcome", "ok")
    fault: Optional[FaultMatch] = key(MAPPING, "partial match of the fault (needs outcome: fault)",
                                      model=FaultMatch, value=None)
    hazards: Optional[tuple[str, ...]] = key(
        v.other("list", {"type": "array", "items": {"enum": list(HAZARD_KINDS)}}),
        "hazard kinds that must be reported: " + ", ".join(HAZARD_KINDS), value=None)


# --- the scenario -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """A scenario with every default applied and every value typed (what ``Machine`` runs)."""

    name: str = key(v.Kind("string", {"type": "string", "pattern": "^" + v.NAME.pattern + "$"}),
                    "required: a short id (letters, digits, '-', '_', '.')")
    description: str = key(v.text(), "what the scenario shows", "")
    machine: MachineSection = section(MachineSection)
    kernel: KernelSection = section(KernelSection)
    hyp: HypSection = section(HypSection)
    steps: tuple[Step, ...] = key(LIST, "what to do, in order; each item has exactly one of boot, "
                                        "call, hotplug", [{"boot": "all"}], variants=STEP_TYPES)
    inject: tuple[Injection, ...] = key(LIST, "fault injection; each item has exactly one of skip, "
                                              "corrupt, remap", [], variants=INJECTION_TYPES)
    limits: Limits = section(Limits)
    expect: Expect = section(Expect)
    file: Optional[str] = None
    base_dir: Optional[str] = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    step_lines: tuple[Optional[int], ...] = ()     # the YAML line of each step, None when unknown

    # Shorthands for the values the board and the kernel side read (one line each).
    @property
    def cpus(self) -> int:
        """``machine.cpus``."""
        return self.machine.cpus

    @property
    def banks(self) -> tuple[Bank, ...]:
        """``machine.ram`` (its banks)."""
        return self.machine.banks

    @property
    def tlb_entries(self) -> int:
        """``machine.tlb_entries``."""
        return self.machine.tlb_entries

    @property
    def page_offset(self) -> int:
        """``kernel.page_offset``."""
        return self.kernel.page_offset

    @property
    def text_offset(self) -> int:
        """``kernel.text_offset``."""
        return self.kernel.text_offset

    @property
    def hyp_idmap_offset(self) -> Optional[int]:
        """``kernel.hyp_idmap_offset``."""
        return self.kernel.hyp_idmap_offset

    @property
    def isa(self) -> str:
        """``kernel.isa``."""
        return self.kernel.isa

    @property
    def init(self) -> str:
        """``hyp.init``."""
        return self.hyp.init

    @property
    def trampoline_va(self) -> int:
        """``hyp.trampoline_va``."""
        return self.hyp.trampoline_va

    @property
    def bounce_page(self) -> str:
        """``hyp.bounce_page``."""
        return self.hyp.bounce_page

    @property
    def code(self) -> Union[str, KernelTreeCode, ElfCode]:
        """``hyp.code``."""
        return self.hyp.code

    @property
    def stub(self) -> str:
        """``hyp.stub``: ``builtin``, ``kernel`` or an absolute path (``auto`` resolved)."""
        return self.hyp.stub

    @property
    def kernel_config(self) -> tuple[tuple[str, Optional[str]], ...]:
        """``kernel.config``: (CONFIG_ name, C text or None to unset), in the order written."""
        return self.kernel.config

    @property
    def assembler(self) -> str:
        """``hyp.assembler``."""
        return self.hyp.assembler

    @property
    def call_abi(self) -> str:
        """``hyp.call_abi``."""
        return self.hyp.call_abi

    @property
    def instructions(self) -> int:
        """``limits.instructions``."""
        return self.limits.instructions
