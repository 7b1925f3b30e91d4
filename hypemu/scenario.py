"""Scenarios (format 1, DESIGN.md section 4): the defaults, in one place; loading a scenario file
safely; validating every key; and the normalised ``Scenario`` the machine runs.

Why one place: the command line, the Python API and the pytest plugin all start from a plain mapping
(from YAML or from a test) and must agree on every default and every check. ``DEFAULTS`` is the single
source of defaults, ``KEYS`` documents every key (``key_table()`` renders both for the README), and
``from_mapping`` is the one validator: a bad mapping raises ``ScenarioError`` and nothing else.

An input error reads ``FILE:LINE: key.path: what is wrong`` (``key.path`` with dots and ``[i]`` for list
items, ``(file)`` for a problem with the file as a whole); without a file (the Python API) it is
``key.path: what is wrong``.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

FORMAT = 1

# Every default of DESIGN.md section 4, and only here. ``name`` is required: it has no default.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "machine": {"cpus": 1, "ram": {"base": 0x80000000, "size": 1 << 30}, "tlb_entries": 0},
    "kernel": {"page_offset": 0xC0000000, "text_offset": 0x8000, "hyp_idmap_offset": "auto"},
    "hyp": {"init": "dual-step", "trampoline_va": 0xFFFF0000, "bounce_page": "auto",
            "code": "builtin", "call_abi": "seed"},
    "steps": [{"boot": "all"}],
    "inject": [],
    "limits": {"instructions": 1_000_000},
    "expect": {"outcome": "ok"},
}
# The defaults inside a step (a list item, so they cannot sit in DEFAULTS' own shape).
STEP_DEFAULTS: dict[str, Any] = {"call": {"cpu": 0, "args": []}}
INJECT_DEFAULTS: dict[str, Any] = {"skip": {"offset": 0}, "remap": {"bbm": True, "tlbi": True}}

# The built-in default scenario: the default board, boot, then one runtime HYP call.
DEFAULT_SCENARIO: dict[str, Any] = {
    "name": "default",
    "description": "Dual-step HYP init on one Cortex-A15 with 1 GiB of RAM, then one runtime call",
    "steps": [{"boot": "all"}, {"call": {"cpu": 0, "fn": "hyp_probe"}}],
}

OUTCOMES = ("ok", "fault", "hazard", "config_error", "timeout")
HAZARD_KINDS = ("stale_tlb", "bbm", "missing_isb", "missing_dsb")   # DESIGN.md 1.4, hazards.KINDS
FAULT_KINDS = ("prefetch_abort", "data_abort", "undefined")                  # DESIGN.md 6
FAULT_FSCS = ("translation", "access_flag", "permission", "address_size", "alignment", "external")
INIT_KINDS = ("dual-step", "single-step")
BOUNCE_PAGE = ("auto", "never")
CALL_ABIS = ("seed", "linux-3.10")
HOTPLUG_STATES = ("on", "off")
STEP_KINDS = ("boot", "call", "hotplug")
INJECT_KINDS = ("skip", "corrupt", "remap")
INJECT_TABLES = ("boot", "runtime")
CORRUPT_FIELDS = ("valid", "af", "xn", "ap", "output")
SKIP_BARRIERS = ("isb", "dsb", "dmb")

MAX_CPUS = 8
MAX_BANKS = 8
PAGE_SIZE = 1 << 12
PHYS_LIMIT = 1 << 40          # LPAE: a 40-bit physical address space
PAGE_OFFSET_ALIGN = 1 << 24   # 16 MiB
HVBAR_ALIGN = 32              # HVBAR bits [4:0] are RES0
MAX_ARGS = 3                  # r1-r3
FILE_KEY = "(file)"
MAX_FILE_BYTES = 1 << 20

# Every key: (path, type, meaning). ``[]`` marks the items of a list. The allowed keys at each level
# are derived from these paths, the defaults come from DEFAULTS (see ``key_table``).
KEYS: tuple[tuple[str, str, str], ...] = (
    ("name", "string", "required: a short id (letters, digits, '-', '_', '.')"),
    ("description", "string", "what the scenario shows"),
    ("machine.cpus", "int 1..8", "number of CPUs"),
    ("machine.ram", "bank or list", "RAM: one bank {base, size} or a list of up to 8 banks"),
    ("machine.ram.base", "size", "bank base PA, page-aligned"),
    ("machine.ram.size", "size", "bank size, page-aligned, > 0; base + size <= 1 TiB (40 bits)"),
    ("machine.tlb_entries", "int >= 0", "TLB entries per CPU; 0 keeps everything until invalidated"),
    ("kernel.page_offset", "address", "kernel lowmem VA of the first RAM byte; 16 MiB aligned, "
                                      "0x10000000..0xf0000000"),
    ("kernel.text_offset", "size", "kernel image offset in the first bank, page-aligned"),
    ("kernel.hyp_idmap_offset", "auto or size", "offset of the HYP init code from the image start "
                                                "(auto, or an int >= 0x1000, 32-byte aligned)"),
    ("hyp.init", "|".join(INIT_KINDS), "the HYP init design"),
    ("hyp.trampoline_va", "address", "the trampoline VA (a 32-bit VA; the kernel refuses it "
                                     "unless page-aligned)"),
    ("hyp.bounce_page", "|".join(BOUNCE_PAGE), "copy the init code to a bounce page when it crosses "
                                               "a page"),
    ("hyp.code", "builtin or path", "the init code: builtin, or a .S file relative to the scenario"),
    ("hyp.call_abi", "|".join(CALL_ABIS), "how the init HVCs pass their arguments"),
    ("steps", "list", "what to do, in order; each item has exactly one of boot, call, hotplug"),
    ("steps[].boot", "all or list", "all, or a list of distinct CPU ids: stub install, HYP init"),
    ("steps[].call.cpu", "int", "CPU that issues the HVC"),
    ("steps[].call.fn", "identifier", "required: the runtime HYP function to call"),
    ("steps[].call.args", "list of int", "up to 3 arguments (r1-r3), each 0..0xffffffff"),
    ("steps[].hotplug.cpu", "int", "required: the CPU"),
    ("steps[].hotplug.state", "on|off", "required: power the CPU down, or up and re-run HYP init"),
    ("inject", "list", "fault injection; each item has exactly one of skip, corrupt, remap"),
    ("inject[].skip", "mnemonic or mapping", "make instructions of the init and runtime code NOPs: "
                                             "every isb, dsb, dmb, or MCR/MCRR to a cp15 operation "
                                             "or register (tlbiallh, tlbimvah, hsctlr, ...); or the "
                                             "one at {symbol, offset}"),
    ("inject[].skip.symbol", "identifier", "a global label of the init or runtime code"),
    ("inject[].skip.offset", "int", "byte offset from the symbol, a multiple of 4"),
    ("inject[].corrupt.table", "|".join(INJECT_TABLES), "required: the HYP table to corrupt"),
    ("inject[].corrupt.va", "address", "required: a VA that table maps"),
    ("inject[].corrupt.field", "|".join(CORRUPT_FIELDS), "required: the descriptor field"),
    ("inject[].corrupt.value", "int", "required: 0/1 for valid, af, xn; 0..3 for ap (AP[2:1]); a "
                                      "PA aligned to the mapping's size for output"),
    ("inject[].remap.table", "|".join(INJECT_TABLES), "required: the HYP table"),
    ("inject[].remap.va", "address", "required: a VA that table maps"),
    ("inject[].remap.to", "address", "required: the new output PA, aligned to the mapping's size"),
    ("inject[].remap.bbm", "bool", "break-before-make: write the descriptor invalid first"),
    ("inject[].remap.tlbi", "bool", "invalidate the HYP TLBs (an HVC to hyp_tlbi_va_is)"),
    ("inject[].remap.at", "int", "required: the kernel side remaps just before steps[at]"),
    ("limits.instructions", "int 1..10**10", "instruction budget per step; past it: timeout"),
    ("expect.outcome", "|".join(OUTCOMES), "the expected outcome"),
    ("expect.fault", "mapping", "partial match of the fault (needs outcome: fault)"),
    ("expect.fault.cpu", "int", "CPU that faulted"),
    ("expect.fault.kind", "|".join(FAULT_KINDS), "exception kind"),
    ("expect.fault.pc", "int", "PC of the faulting instruction"),
    ("expect.fault.va", "int or null", "faulting VA"),
    ("expect.fault.fsc", "|".join(FAULT_FSCS) + " or null", "fault status class"),
    ("expect.fault.level", "int 0..3 or null", "lookup level of the fault"),
    ("expect.fault.hsr", "int", "HSR value"),
    ("expect.hazards", "list", "hazard kinds that must be reported: " + ", ".join(HAZARD_KINDS)),
)

_SIZE = re.compile(r"([0-9]{1,20})\s*(KiB|MiB|GiB|TiB)?")
_HEX = re.compile(r"0[xX]_?[0-9a-fA-F]{1,20}(?:_[0-9a-fA-F]+)*")
_UNITS = {None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOO_LARGE = 1 << 64
_SIZE_WANTED = "expected an integer, hex or a size like 4KiB/2MiB/1GiB"


class ScenarioError(ValueError):
    """A scenario that is not valid input (not an outcome): names the key that is wrong, and the
    file and line when there is a file."""

    def __init__(self, key: str, message: str, file: Optional[str] = None, line: Optional[int] = None):
        self.key, self.message, self.file, self.line = key, message, file, line
        where = (f"{file}:{line}: " if line else f"{file}: ") if file else ""
        super().__init__(f"{where}{key}: {message}")

    def located(self, file: str, lines: Mapping[str, int]) -> "ScenarioError":
        """The same error in ``file``, at the line of its key (or of the nearest enclosing key)."""
        return ScenarioError(self.key, self.message, file, self.line or line_of(lines, self.key))


@dataclass(frozen=True)
class Bank:
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass
class Scenario:
    """A scenario with every default applied and every size parsed."""

    name: str
    description: str
    cpus: int
    banks: list[Bank]
    tlb_entries: int
    page_offset: int
    text_offset: int
    hyp_idmap_offset: Optional[int]      # None = auto
    init: str
    trampoline_va: int
    bounce_page: str
    code: str                            # "builtin" or an absolute path
    call_abi: str
    steps: list[dict]                    # {"boot": "all"|[ids]}, {"call": {cpu, fn, args}},
    #                                      {"hotplug": {cpu, state}}
    inject: list[dict]                   # [{"skip": ...} | {"corrupt": {...}} | {"remap": {...}}]
    instructions: int
    expect: dict                         # "outcome" always; "fault", "hazards" when given
    file: Optional[str] = None
    base_dir: Optional[str] = None
    raw: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)        # key path -> YAML line (empty without a file)
    step_lines: list = field(default_factory=list)   # YAML line of each step, None when unknown


# --- documentation ------------------------------------------------------------------------------

def default_of(path: str) -> Any:
    """The default of a KEYS path, from DEFAULTS or STEP_DEFAULTS (None: no default of its own)."""
    node: Any = DEFAULTS
    if path.startswith("steps[]."):
        node, path = STEP_DEFAULTS, path[len("steps[]."):]
    elif path.startswith("inject[]."):
        node, path = INJECT_DEFAULTS, path[len("inject[]."):]
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def key_table() -> str:
    """A Markdown table of every key with its type, default and meaning (for the README)."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for path, kind, meaning in KEYS:
        value = default_of(path)
        if isinstance(value, int) and ("size" in kind or "address" in kind):
            value = hex(value)
        shown = "" if value is None or isinstance(value, dict) else f"`{value!r}`" if value == "" \
            else f"`{value}`"
        rows.append(f"| `{path}` | {kind.replace('|', ' or ')} | {shown} | {meaning} |")
    return "\n".join(rows)


def _allowed(prefix: str) -> list[str]:
    """The keys allowed in the mapping at ``prefix`` (a KEYS path such as ``machine`` or ``steps[]``)."""
    keys: list[str] = []
    for path, _, _ in KEYS:
        if prefix and not path.startswith(prefix + "."):
            continue
        rest = path[len(prefix) + 1:] if prefix else path
        key = rest.split(".")[0].removesuffix("[]")
        if key not in keys:
            keys.append(key)
    return keys


# --- values -------------------------------------------------------------------------------------

def _describe(value: Any) -> str:
    """A value as the user wrote it in YAML, for messages."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (YAML reads yes/no/on/off/true/false as booleans)"
    if isinstance(value, int):
        return "a number too large" if abs(value) > _TOO_LARGE else repr(value)
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def _join(prefix: str, key: Any) -> str:
    """``prefix.key``; a key that would not read well in a path (spaces, dots, control characters)
    is quoted: ``prefix['odd key']``."""
    text = str(key)
    if not text or not text.isprintable() or re.search(r"[\s.\[\]'\"]", text):
        return f"{prefix}[{text!r}]"
    return f"{prefix}.{text}" if prefix else text


def _shown(text: Any) -> str:
    """A file name or tool message on one line."""
    text = str(text)
    return text if text.isprintable() else repr(text)


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f", did you mean {close[0]!r}?"
    return f" (expected one of: {', '.join(choices)})"


def _check_number(value: int, key: str) -> int:
    if abs(value) > _TOO_LARGE:
        raise ScenarioError(key, f"number too large (more than 64 bits: {len(str(abs(value)))} digits)")
    return value


def parse_size(value: Any, key: str) -> int:
    """An integer, a hex string, or a size with a binary unit (``4KiB``, ``2MiB``, ``1GiB``, ``1TiB``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_number(value, key)
    if isinstance(value, str):
        text = value.strip()
        if _HEX.fullmatch(text):
            return _check_number(int(text, 16), key)
        match = _SIZE.fullmatch(text)
        if match:
            return _check_number(int(match.group(1)) * _UNITS[match.group(2)], key)
        if re.fullmatch(r"(0[xX])?[0-9a-fA-F_]{21,}(\s*[KMGT]iB)?", text):
            raise ScenarioError(key, "number too large")
    raise ScenarioError(key, f"{_SIZE_WANTED}, got {_describe(value)}")


def _int(value: Any, key: str, lo: int, hi: int, *, size: bool = False, hexa: bool = False) -> int:
    """An integer in lo..hi (sizes and hex strings too when ``size``); never a bool or a float."""
    if size:
        number = parse_size(value, key)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = _check_number(value, key)
    else:
        raise ScenarioError(key, f"expected an integer, got {_describe(value)}")
    if lo <= number <= hi:
        return number
    show = hex if hexa else str
    if number < 0 == lo:
        raise ScenarioError(key, f"must not be negative, got {show(number)}")
    if hi >= _TOO_LARGE:
        raise ScenarioError(key, f"must be at least {show(lo)}, got {show(number)}")
    raise ScenarioError(key, f"must be {show(lo)}..{show(hi)}, got {show(number)}")


def _aligned(value: int, key: str, align: int, what: str, why: str = "") -> int:
    if value % align:
        raise ScenarioError(key, f"must be {what}, got {value:#x}" + (f": {why}" if why else ""))
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    hint = _suggest(value, list(choices)) if isinstance(value, str) else ""
    if hint.startswith(","):
        raise ScenarioError(key, f"unknown value {_describe(value)}{hint}")
    raise ScenarioError(key, f"expected one of {', '.join(choices)}, got {_describe(value)}")


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(key, f"expected a string, got {_describe(value)}")
    return value


def _list(value: Any, key: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(key, f"expected a list, got {_describe(value)}")
    return list(value)


def _mapping(value: Any, key: str, prefix: str, required: tuple[str, ...] = ()) -> dict:
    """A mapping whose keys are those KEYS allows at ``prefix``; ``required`` keys must be there."""
    if not isinstance(value, Mapping):
        raise ScenarioError(key or "(scenario)", f"expected a mapping, got {_describe(value)}")
    allowed = _allowed(prefix)
    for name in value:
        if not isinstance(name, str):
            raise ScenarioError(_join(key, name), f"keys must be strings, got {_describe(name)}")
        if name not in allowed:
            raise ScenarioError(_join(key, name), f"unknown key {_describe(name)}{_suggest(name, allowed)}")
    for name in required:
        if name not in value:
            raise ScenarioError(_join(key, name), f"missing required key {name!r}")
    return dict(value)


def _section(user: Mapping[str, Any], name: str) -> dict:
    """A top-level section with its defaults under the user's keys."""
    merged = copy.deepcopy(DEFAULTS[name])
    if name in user:
        merged.update(_mapping(user[name], name, name))
    return merged


# --- the sections ---------------------------------------------------------------------------------

def _banks(value: Any, key: str) -> list[Bank]:
    if isinstance(value, Mapping):
        merged = dict(DEFAULTS["machine"]["ram"])
        merged.update(_mapping(value, key, "machine.ram"))
        items = [(key, merged)]
    else:
        raw = _list(value, key)
        if not raw:
            raise ScenarioError(key, "expected at least one bank {base, size}")
        if len(raw) > MAX_BANKS:
            raise ScenarioError(key, f"at most {MAX_BANKS} banks, got {len(raw)}")
        items = [(f"{key}[{i}]", _mapping(bank, f"{key}[{i}]", "machine.ram", ("base", "size")))
                 for i, bank in enumerate(raw)]
    banks: list[Bank] = []
    for where, bank in items:
        base = _aligned(_int(bank["base"], f"{where}.base", 0, PHYS_LIMIT - 1, size=True, hexa=True),
                        f"{where}.base", PAGE_SIZE, "page-aligned (4 KiB)")
        size = _aligned(_int(bank["size"], f"{where}.size", 0, PHYS_LIMIT, size=True, hexa=True),
                        f"{where}.size", PAGE_SIZE, "a multiple of the page size (4 KiB)")
        if size == 0:
            raise ScenarioError(f"{where}.size", "must be greater than 0 (an empty bank)")
        if base + size > PHYS_LIMIT:
            raise ScenarioError(f"{where}.size", f"the bank ends at {base + size:#x}, beyond the 40-bit "
                                                 f"physical address space (1 TiB, {PHYS_LIMIT:#x})")
        new = Bank(base, size)
        for index, old in enumerate(banks):
            if new.base < old.end and old.base < new.end:
                raise ScenarioError(where, f"bank [{new.base:#x}, {new.end:#x}) overlaps {key}[{index}] "
                                           f"[{old.base:#x}, {old.end:#x})")
        banks.append(new)
    return banks


def _kernel(kernel: dict) -> tuple[int, int, Optional[int]]:
    key = "kernel.page_offset"
    page_offset = _int(kernel["page_offset"], key, 0x10000000, 0xF0000000, size=True, hexa=True)
    _aligned(page_offset, key, PAGE_OFFSET_ALIGN, "16 MiB aligned",
             "ARM Linux patches PAGE_OFFSET - PHYS_OFFSET into the top 8 bits of add/sub immediates "
             "(ARM_PATCH_PHYS_VIRT)")
    key = "kernel.text_offset"
    text_offset = _aligned(_int(kernel["text_offset"], key, 0, PHYS_LIMIT - 1, size=True, hexa=True),
                           key, PAGE_SIZE, "page-aligned (4 KiB)",
                           "hypemu loads the kernel image at a page boundary")
    key, idmap = "kernel.hyp_idmap_offset", kernel["hyp_idmap_offset"]
    if idmap == "auto":
        return page_offset, text_offset, None
    if isinstance(idmap, str) and not re.match(r"\s*[0-9]", idmap):
        raise ScenarioError(key, f"expected 'auto' or an offset, got {_describe(idmap)}")
    offset = _int(idmap, key, 0, PHYS_LIMIT - 1, size=True, hexa=True)
    if offset < PAGE_SIZE:
        raise ScenarioError(key, f"must be at least {PAGE_SIZE:#x}, got {offset:#x}: the image's first "
                                 f"page holds the kernel's PL1 code")
    _aligned(offset, key, HVBAR_ALIGN, "32-byte aligned", "the init code starts with its vector table "
                                                          "and HVBAR bits [4:0] are RES0")
    return page_offset, text_offset, offset


def _code_path(value: Any, base_dir: Optional[str]) -> str:
    key = "hyp.code"
    if value == "builtin":
        return value
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ScenarioError(key, f"expected 'builtin' or the path of a .S file, got {_describe(value)}")
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = Path(base_dir or os.getcwd()) / path
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError):
        exists = regular = False
    if not exists:
        raise ScenarioError(key, f"no such file: {value!r} (looked for {_shown(path)})")
    if not regular:
        raise ScenarioError(key, f"not a regular file: {_shown(path)}")
    return str(path)


def _assemble_check(code: str, trampoline_va: int, call_abi: str) -> None:
    """User init code must assemble, with the constants the kernel side predefines."""
    if code == "builtin":
        return
    from .asm import AsmError, assemble_file
    from .kvm import guest_constants
    try:
        program = assemble_file(code, 0x80000000, constants=guest_constants(trampoline_va, call_abi))
    except AsmError as err:
        raise ScenarioError("hyp.code", "; ".join(str(err).strip().splitlines())) from None
    except UnicodeError:
        raise ScenarioError("hyp.code", f"{_shown(code)}: not a UTF-8 text file") from None
    except OSError as err:
        raise ScenarioError("hyp.code", f"{_shown(code)}: cannot read: {err.strerror or err}") from None
    # The guest-code contract (DESIGN.md 3b): the kernel side sizes and places the init code by
    # these two labels, so their absence (or an empty/negative range) is bad input, not a layout.
    missing = [name for name in ("__kvm_hyp_init", "__kvm_hyp_init_end") if name not in program.symbols]
    if missing:
        raise ScenarioError("hyp.code", f"{_shown(code)}: no label {' or '.join(missing)} "
                                        f"(the init code must define __kvm_hyp_init and "
                                        f"__kvm_hyp_init_end)")
    start, end = program.symbols["__kvm_hyp_init"], program.symbols["__kvm_hyp_init_end"]
    if start != program.base:
        raise ScenarioError("hyp.code", f"{_shown(code)}: __kvm_hyp_init must start the init code "
                                        f"(the vector table, 32-byte aligned; found at "
                                        f"+{start - program.base:#x})")
    if end <= start:
        raise ScenarioError("hyp.code", f"{_shown(code)}: __kvm_hyp_init_end ({end - program.base:#x}) "
                                        f"must come after __kvm_hyp_init ({start - program.base:#x})")


def _cpu(value: Any, key: str, cpus: int) -> int:
    cpu = _int(value, key, 0, _TOO_LARGE)
    if cpu >= cpus:
        raise ScenarioError(key, f"cpu {cpu} does not exist: the board has {cpus} CPU"
                                 f"{'s' if cpus > 1 else ''} (machine.cpus), ids 0..{cpus - 1}")
    return cpu


def _boot(value: Any, key: str, cpus: int) -> Union[str, list[int]]:
    if value == "all":
        return "all"
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(key, f"expected 'all' or a list of CPU ids, got {_describe(value)}")
    if not value:
        raise ScenarioError(key, "expected 'all' or a non-empty list of CPU ids, got an empty list")
    ids: list[int] = []
    for index, item in enumerate(value):
        cpu = _cpu(item, f"{key}[{index}]", cpus)
        if cpu in ids:
            raise ScenarioError(f"{key}[{index}]", f"cpu {cpu} is listed twice")
        ids.append(cpu)
    return ids


def _call(value: Any, key: str, cpus: int) -> dict:
    call = _mapping(value, key, "steps[].call", ("fn",))
    fn = call["fn"]
    if not isinstance(fn, str) or not _IDENT.fullmatch(fn):
        raise ScenarioError(f"{key}.fn", f"expected the name of a runtime HYP function (an identifier "
                                         f"such as hyp_probe), got {_describe(fn)}")
    call = {**STEP_DEFAULTS["call"], **call}
    args = _list(call["args"], f"{key}.args")
    if len(args) > MAX_ARGS:
        raise ScenarioError(f"{key}.args", f"a HYP call takes at most {MAX_ARGS} arguments (r1-r3), "
                                           f"got {len(args)}")
    return {"cpu": _cpu(call["cpu"], f"{key}.cpu", cpus), "fn": fn,
            "args": [_int(arg, f"{key}.args[{i}]", 0, 0xFFFFFFFF, hexa=True) for i, arg in enumerate(args)]}


def _hotplug(value: Any, key: str, cpus: int) -> dict:
    plug = _mapping(value, key, "steps[].hotplug", ("cpu", "state"))
    state = plug["state"]
    if isinstance(state, bool):          # YAML 1.1 reads a bare on/off as a boolean
        state = "on" if state else "off"
    return {"cpu": _cpu(plug["cpu"], f"{key}.cpu", cpus),
            "state": _choice(state, f"{key}.state", HOTPLUG_STATES)}


def _step(value: Any, key: str, cpus: int) -> dict:
    step = _mapping(value, key, "steps[]")
    if len(step) != 1:
        got = " and ".join(step) if step else "none"
        raise ScenarioError(key, f"a step has exactly one of {', '.join(STEP_KINDS)}; got {got}")
    (kind, body), = step.items()
    where = f"{key}.{kind}"
    if kind == "boot":
        return {"boot": _boot(body, where, cpus)}
    if kind == "call":
        return {"call": _call(body, where, cpus)}
    return {"hotplug": _hotplug(body, where, cpus)}


def _steps(value: Any, cpus: int) -> list[dict]:
    """The steps, each checked against the board and the CPUs that are up at that point: the
    timeline is fixed, so a step on a CPU in the wrong state is an input error found before running
    (a call or an ``off`` on an offline CPU, a boot or an ``on`` of an online one)."""
    steps, online, since = [], set(), {}
    for index, item in enumerate(_list(value, "steps")):
        key = f"steps[{index}]"
        step = _step(item, key, cpus)
        if "boot" in step:
            ids = range(cpus) if step["boot"] == "all" else step["boot"]
            for n, cpu in enumerate(ids):
                if cpu in online:
                    where = key + ".boot" + ("" if step["boot"] == "all" else f"[{n}]")
                    raise ScenarioError(where, f"cpu {cpu} is already online (since {since[cpu]})")
                online.add(cpu)
                since[cpu] = key
        elif "hotplug" in step:
            cpu, state = step["hotplug"]["cpu"], step["hotplug"]["state"]
            if (state == "on") == (cpu in online):
                now = "online" if cpu in online else "offline"
                raise ScenarioError(f"{key}.hotplug.state", f"cpu {cpu} is already {now} "
                                                            f"(since {since.get(cpu, 'the start')})")
            (online.add if state == "on" else online.discard)(cpu)
            since[cpu] = key
        elif step["call"]["cpu"] not in online:
            cpu = step["call"]["cpu"]
            raise ScenarioError(f"{key}.call.cpu", f"cpu {cpu} is offline at this step (since "
                                                   f"{since.get(cpu, 'the start')}): boot it (or "
                                                   f"hotplug it on) in an earlier step")
        steps.append(step)
    return steps


def _inject(value: Any, nsteps: int) -> list[dict]:
    items = []
    for index, item in enumerate(_list(value, "inject")):
        key = f"inject[{index}]"
        entry = _mapping(item, key, "inject[]")
        if len(entry) != 1:
            got = " and ".join(entry) if entry else "none"
            raise ScenarioError(key, f"an injection has exactly one of {', '.join(INJECT_KINDS)}; "
                                     f"got {got}")
        (kind, body), = entry.items()
        where = f"{key}.{kind}"
        if kind == "skip":
            items.append({"skip": _skip(body, where)})
        elif kind == "corrupt":
            c = _mapping(body, where, "inject[].corrupt", ("table", "va", "field", "value"))
            field_ = _choice(c["field"], f"{where}.field", CORRUPT_FIELDS)
            limit = (1 << 40) - 1 if field_ == "output" else (3 if field_ == "ap" else 1)
            items.append({"corrupt": {
                "table": _choice(c["table"], f"{where}.table", INJECT_TABLES),
                "va": _int(c["va"], f"{where}.va", 0, 0xFFFFFFFF, size=True, hexa=True),
                "field": field_, "value": _int(c["value"], f"{where}.value", 0, limit, size=True, hexa=True)}})
        else:
            r = {**INJECT_DEFAULTS["remap"],
                 **_mapping(body, where, "inject[].remap", ("table", "va", "to", "at"))}
            for flag in ("bbm", "tlbi"):
                if not isinstance(r[flag], bool):
                    raise ScenarioError(f"{where}.{flag}", f"expected true or false, got {_describe(r[flag])}")
            if nsteps == 0:
                raise ScenarioError(f"{where}.at", "there are no steps to remap before")
            items.append({"remap": {
                "table": _choice(r["table"], f"{where}.table", INJECT_TABLES),
                "va": _int(r["va"], f"{where}.va", 0, 0xFFFFFFFF, size=True, hexa=True),
                "to": _int(r["to"], f"{where}.to", 0, (1 << 40) - 1, size=True, hexa=True),
                "bbm": r["bbm"], "tlbi": r["tlbi"],
                "at": _step_index(r["at"], f"{where}.at", nsteps)}})
    return items


def _step_index(value: Any, key: str, nsteps: int) -> int:
    index = _int(value, key, 0, _TOO_LARGE)
    if index >= nsteps:
        raise ScenarioError(key, f"there is no steps[{index}]: the scenario has {nsteps} step"
                                 f"{'s' if nsteps > 1 else ''} (0..{nsteps - 1})")
    return index


def _skip_names() -> list[str]:
    from .cp15 import REGISTERS     # the same table the trap handler decodes with
    return list(SKIP_BARRIERS) + sorted(r.name.lower() for r in REGISTERS if r.writable)


def _skip(value: Any, key: str) -> Union[str, dict]:
    if isinstance(value, Mapping):
        body = {**INJECT_DEFAULTS["skip"], **_mapping(value, key, "inject[].skip", ("symbol",))}
        symbol = body["symbol"]
        if not isinstance(symbol, str) or not _IDENT.fullmatch(symbol):
            raise ScenarioError(f"{key}.symbol", f"expected a label of the init or runtime code, "
                                                 f"got {_describe(symbol)}")
        offset = _int(body["offset"], f"{key}.offset", 0, 1 << 20, hexa=True)
        if offset % 4:
            raise ScenarioError(f"{key}.offset", f"must be a multiple of 4 (an ARM instruction), got {offset}")
        return {"symbol": symbol, "offset": offset}
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", value):
        raise ScenarioError(key, f"expected an instruction name such as tlbiallh or "
                                 f"{{symbol: NAME, offset: N}}, got {_describe(value)}")
    names = _skip_names()
    if value.lower() not in names:
        raise ScenarioError(key, f"unknown instruction {_describe(value)}{_suggest(value.lower(), names)}")
    return value.lower()


_FAULT_CHECKS = {
    "kind": lambda v, k, cpus: _choice(v, k, FAULT_KINDS),
    "fsc": lambda v, k, cpus: None if v is None else _choice(v, k, FAULT_FSCS),
    "level": lambda v, k, cpus: None if v is None else _int(v, k, 0, 3),
    "va": lambda v, k, cpus: None if v is None else _int(v, k, 0, 0xFFFFFFFF, hexa=True),
    "pc": lambda v, k, cpus: _int(v, k, 0, 0xFFFFFFFF, hexa=True),
    "hsr": lambda v, k, cpus: _int(v, k, 0, 0xFFFFFFFF, hexa=True),
    "cpu": lambda v, k, cpus: _cpu(v, k, cpus),
}


def _expect(user: Mapping[str, Any], cpus: int) -> dict:
    expect = _section(user, "expect")
    out = {"outcome": _choice(expect["outcome"], "expect.outcome", OUTCOMES)}
    if "fault" in expect:
        fault = _mapping(expect["fault"], "expect.fault", "expect.fault")
        out["fault"] = {name: _FAULT_CHECKS[name](value, f"expect.fault.{name}", cpus)
                        for name, value in fault.items()}
        if out["outcome"] != "fault":
            raise ScenarioError("expect.fault", f"a fault is described but expect.outcome is "
                                                f"{out['outcome']!r} (add outcome: fault)")
    if "hazards" in expect:
        kinds = _list(expect["hazards"], "expect.hazards")
        out["hazards"] = [_choice(k, f"expect.hazards[{i}]", HAZARD_KINDS) for i, k in enumerate(kinds)]
        if out["hazards"] and out["outcome"] == "ok":
            raise ScenarioError("expect.hazards", "hazards are expected but expect.outcome is 'ok', "
                                                  "which means no hazard (use outcome: hazard)")
    return out


def _name(user: Mapping[str, Any]) -> str:
    if "name" not in user:
        raise ScenarioError("name", "missing required key 'name' (a short id: letters, digits, "
                                    "'-', '_', '.')")
    name = _string(user["name"], "name")
    if not _NAME.fullmatch(name):
        raise ScenarioError("name", f"expected a short id (up to 64 letters, digits, '-', '_', '.'), "
                                    f"got {_describe(name)}")
    return name


# --- the validator --------------------------------------------------------------------------------

def from_mapping(user: Mapping[str, Any], file: Optional[str] = None, base_dir: Optional[str] = None,
                 lines: Optional[Mapping[str, int]] = None) -> Scenario:
    """The normalised scenario for a plain mapping (keys and defaults of DESIGN.md section 4).

    Raises ``ScenarioError`` (and nothing else) for a mapping that is not a valid scenario; with
    ``file`` and ``lines`` (key path -> YAML line, from ``load_file``) the error cites the line."""
    lines = dict(lines or {})
    try:
        return _build(user, file, base_dir, lines)
    except ScenarioError as err:
        if file is None or err.file:
            raise
        raise err.located(file, lines) from None


def _build(user: Mapping[str, Any], file: Optional[str], base_dir: Optional[str],
           lines: dict) -> Scenario:
    top = _mapping(user, "", "")
    name = _name(top)
    description = _string(top.get("description", DEFAULTS["description"]), "description")
    machine = _section(top, "machine")
    cpus = _int(machine["cpus"], "machine.cpus", 1, MAX_CPUS)
    banks = _banks(machine["ram"], "machine.ram")
    tlb_entries = _int(machine["tlb_entries"], "machine.tlb_entries", 0, 1_000_000)
    page_offset, text_offset, idmap = _kernel(_section(top, "kernel"))
    hyp = _section(top, "hyp")
    init = _choice(hyp["init"], "hyp.init", INIT_KINDS)
    trampoline_va = _int(hyp["trampoline_va"], "hyp.trampoline_va", 0, 0xFFFFFFFF, size=True, hexa=True)
    bounce_page = _choice(hyp["bounce_page"], "hyp.bounce_page", BOUNCE_PAGE)
    call_abi = _choice(hyp["call_abi"], "hyp.call_abi", CALL_ABIS)
    code = _code_path(hyp["code"], base_dir)
    if init == "single-step":
        for key in ("trampoline_va", "bounce_page"):
            if key in (top.get("hyp") or {}):
                raise ScenarioError(f"hyp.{key}", "applies to the dual-step design only: the "
                                                  "single-step init has no trampoline")
    steps = _steps(top.get("steps", DEFAULTS["steps"]), cpus)
    inject = _inject(top.get("inject", DEFAULTS["inject"]), len(steps))
    instructions = _int(_section(top, "limits")["instructions"], "limits.instructions", 1, 10**10)
    expect = _expect(top, cpus)
    _assemble_check(code, trampoline_va, call_abi)     # last: the slowest check
    return Scenario(
        name=name, description=description, cpus=cpus, banks=banks, tlb_entries=tlb_entries,
        page_offset=page_offset, text_offset=text_offset, hyp_idmap_offset=idmap, init=init,
        trampoline_va=trampoline_va, bounce_page=bounce_page, code=code, call_abi=call_abi,
        steps=steps, inject=inject, instructions=instructions, expect=expect, file=file,
        base_dir=base_dir, raw=dict(top), lines=lines,
        step_lines=[lines.get(f"steps[{i}]") for i in range(len(steps))] if "steps" in top
        else [None] * len(steps))


# --- YAML: safe loading with a line for every key ------------------------------------------------

MAX_DEPTH = 32
MAX_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STD_TAG = "tag:yaml.org,2002:"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose value errors (a bad date, an integer with 5000 digits) carry the YAML mark."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as err:
            problem = ("number too large" if node.tag == _STD_TAG + "int" and len(str(node.value)) > 1000
                       else f"cannot read this value: {err}")
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD_TAG):] if tag.startswith(_STD_TAG) else tag


def _check_tag(node: yaml.Node, path: str) -> None:
    if node.tag in _Loader.yaml_constructors and node.tag is not None:
        return
    tag = _tag_name(node.tag)
    why = ("Python tags are not allowed: scenario files are read with YAML safe loading"
           if tag.startswith("!!python/") else "scenario files use plain YAML data only")
    raise ScenarioError(path or FILE_KEY, f"unsupported YAML tag '{tag}': {why}",
                        line=node.start_mark.line + 1)


class _LineWalk:
    """Records the line of every key (and list item) by key path, and refuses duplicate keys, unknown
    tags, runaway nesting and alias bombs, before any Python object is built."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.nodes = 0

    def walk(self, node: yaml.Node, path: str, depth: int = 0) -> None:
        self.nodes += 1
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise ScenarioError(path or FILE_KEY, "nested too deeply or too many (aliased) values",
                                line=line)
        _check_tag(node, path)
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                item_path = f"{path}[{index}]"
                self.lines.setdefault(item_path, item.start_mark.line + 1)
                self.walk(item, item_path, depth + 1)
        elif isinstance(node, yaml.MappingNode):
            self._mapping(node, path, depth)

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> None:
        first: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                merged.append(value)
                continue
            line = key.start_mark.line + 1
            if not isinstance(key, yaml.ScalarNode):
                raise ScenarioError(path or FILE_KEY, "a key must be a plain string, not a mapping or "
                                                      "a list", line=line)
            _check_tag(key, path)
            key_path = _join(path, key.value)
            if key.value in first:
                raise ScenarioError(key_path, f"duplicate key {key.value!r} (first on line "
                                              f"{first[key.value]})", line=line)
            first[key.value] = line
            self.lines[key_path] = line
            self.walk(value, key_path, depth + 1)
        for value in merged:     # ``<<: *anchor``: the explicit keys win, as in the constructor
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                sub = _LineWalk()
                sub.nodes = self.nodes
                sub.walk(source, path, depth + 1)
                self.nodes = sub.nodes
                for key_path, line in sub.lines.items():
                    self.lines.setdefault(key_path, line)


_LAST_PART = re.compile(r"""(\.[^.\[\]]+|\[(\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\])$""")


def line_of(lines: Mapping[str, int], key: str) -> int:
    """The line of ``key``, else of the nearest enclosing key that has one, else 1."""
    while key:
        if key in lines:
            return lines[key]
        shorter = _LAST_PART.sub("", key)
        key = shorter if len(shorter) < len(key) else ""
    return 1


def _path_at(lines: Mapping[str, int], line: int) -> str:
    """The deepest key path on ``line`` (for errors that only carry a YAML mark)."""
    on_line = [path for path, at in lines.items() if at == line]
    return max(on_line, key=len) if on_line else FILE_KEY


def _yaml_error(err: yaml.YAMLError, text: str, lines: Mapping[str, int]) -> ScenarioError:
    """A ScenarioError (without file) for a YAML reader, scanner, parser or constructor error."""
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "\0")
        return ScenarioError(FILE_KEY, f"character U+{code:04X} is not allowed in YAML (a control "
                                       f"character)", line=line)
    if not isinstance(err, yaml.MarkedYAMLError):
        return ScenarioError(FILE_KEY, f"YAML error: {err}", line=1)
    problem, context = err.problem or "", err.context or ""
    mark, where = err.problem_mark, err.context_mark
    if isinstance(err, yaml.composer.ComposerError) and "another document" in problem:
        return ScenarioError(FILE_KEY, "a second YAML document starts here: a scenario file holds one "
                                       f"document (the first starts on line {where.line + 1})",
                             line=mark.line + 1)
    if isinstance(err, yaml.constructor.ConstructorError):
        line = (mark or where).line + 1
        return ScenarioError(_path_at(lines, line), problem, line=line)
    at_end = "end of stream" in problem or "<stream end>" in problem
    if where is not None and (mark is None or at_end):
        mark = where      # an unclosed bracket or quote: point at where it opened
    message = f"YAML syntax error: {problem}"
    if context and where is not None:
        message += f" ({context} that starts on line {where.line + 1})"
    if "'\\t'" in problem:
        message += "; YAML does not allow tabs for indentation"
    return ScenarioError(FILE_KEY, message, line=mark.line + 1 if mark else 1)


def _parse(text: str) -> tuple[Any, dict[str, int]]:
    """The plain data of a one-document YAML text, and the line of every key path."""
    loader, walk = None, _LineWalk()
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(FILE_KEY, "empty scenario (no YAML document; at least 'name' is "
                                          "required)", line=1)
        walk.walk(node, "")
        return loader.construct_document(node), walk.lines
    except yaml.YAMLError as err:
        raise _yaml_error(err, text, walk.lines) from None
    except RecursionError:
        raise ScenarioError(FILE_KEY, "nested too deeply", line=1) from None
    finally:
        if loader is not None:
            loader.dispose()


def _read_text(name: str) -> str:
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ScenarioError(FILE_KEY, f"cannot read the file: {err.strerror or err}", name) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(FILE_KEY, f"file too large for a scenario (more than {MAX_FILE_BYTES} "
                                      f"bytes)", name, 1)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ScenarioError(FILE_KEY, f"not UTF-8 text: byte {data[err.start]:#04x} at column {column}",
                            name, line) from None


def load_file(path: Union[str, "os.PathLike[str]"]) -> Scenario:
    """Read, parse (YAML safe loading, one document) and validate a scenario file.

    Raises ``ScenarioError`` whose text is ``FILE:LINE: key.path: what is wrong``."""
    name = os.fspath(path)
    text = _read_text(name)
    try:
        data, lines = _parse(text)
    except ScenarioError as err:
        raise ScenarioError(err.key, err.message, name, err.line or 1) from None
    if data is None:
        raise ScenarioError(FILE_KEY, "empty scenario (the document is empty; at least 'name' is "
                                      "required)", name, 1)
    if not isinstance(data, Mapping):
        raise ScenarioError(FILE_KEY, f"expected a mapping of keys (name, machine, steps, ...) at the "
                                      f"top level, got {_describe(data)}", name, _first_line(text))
    base_dir = os.path.dirname(os.path.abspath(name))
    return from_mapping(data, file=name, base_dir=base_dir, lines=lines)


def _first_line(text: str) -> int:
    """The line of the first line that is neither blank nor a comment."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number
    return 1


def load_scenario(source: "Scenario | Mapping[str, Any] | str | os.PathLike[str]") -> Scenario:
    """A Scenario from a file path (``load_file``), a mapping (``from_mapping``) or a Scenario."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return from_mapping(source)
    if isinstance(source, (str, os.PathLike)):
        return load_file(source)
    raise TypeError(f"load_scenario expects a Scenario, a mapping or a path, got {type(source).__name__}")
