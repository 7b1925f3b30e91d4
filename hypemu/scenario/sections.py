"""The sections of a scenario (machine, kernel, hyp, limits, expect), checked key by key against
the models and then by the rules across keys: alignment, bank overlaps, the 40-bit PA space, what
the single-step design has no use for, an expected fault only with ``outcome: fault``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from ..errors import ScenarioError
from ..layout import Bank
from . import guest
from . import values as v
from .keys import DEFAULTS, allowed, kind_of
from .models import (HAZARD_KINDS, MAX_BANKS, PHYS_LIMIT, Expect, FaultMatch, HypSection,
                     KernelSection, KernelTreeCode, Limits, MachineSection)

PAGE_SIZE = 1 << 12
PAGE_OFFSET_ALIGN = 1 << 24   # 16 MiB
HVBAR_ALIGN = 32              # HVBAR bits [4:0] are RES0


def mapping(value: Any, key: str, prefix: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A mapping whose keys are those the models allow at ``prefix``; ``required`` keys must be there."""
    if not isinstance(value, Mapping):
        raise ScenarioError(key or "(scenario)", f"expected a mapping, got {v.describe(value)}")
    names = allowed(prefix)
    for name in value:
        if not isinstance(name, str):
            raise ScenarioError(v.join(key, name), f"keys must be strings, got {v.describe(name)}")
        if name not in names:
            raise ScenarioError(v.join(key, name), f"unknown key {v.describe(name)}"
                                                   f"{v.suggest(name, names)}")
    for name in required:
        if name not in value:
            raise ScenarioError(v.join(key, name), f"missing required key {name!r}")
    return dict(value)


def section(user: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A top-level section with its defaults under the user's keys."""
    merged: dict[str, Any] = v.plain_copy(DEFAULTS[name])
    if name in user:
        merged.update(mapping(user[name], name, name))
    return merged


def name_of(user: Mapping[str, Any]) -> str:
    if "name" not in user:
        raise ScenarioError("name", "missing required key 'name' (a short id: letters, digits, "
                                    "'-', '_', '.')")
    name = v.string(user["name"], "name")
    if not v.NAME.fullmatch(name):
        raise ScenarioError("name", f"expected a short id (up to 64 letters, digits, '-', '_', '.'), "
                                    f"got {v.describe(name)}")
    return name


def _parse(path: str, value: Any) -> Any:
    return kind_of(path).parse(value, path)


def machine(user: Mapping[str, Any]) -> MachineSection:
    m = section(user, "machine")
    return MachineSection(cpus=_parse("machine.cpus", m["cpus"]), banks=banks(m["ram"], "machine.ram"),
                          tlb_entries=_parse("machine.tlb_entries", m["tlb_entries"]))


def banks(value: Any, key: str) -> tuple[Bank, ...]:
    if isinstance(value, Mapping):
        merged = dict(DEFAULTS["machine"]["ram"])
        merged.update(mapping(value, key, "machine.ram"))
        items = [(key, merged)]
    else:
        raw = v.as_list(value, key)
        if not raw:
            raise ScenarioError(key, "expected at least one bank {base, size}")
        if len(raw) > MAX_BANKS:
            raise ScenarioError(key, f"at most {MAX_BANKS} banks, got {len(raw)}")
        items = [(f"{key}[{i}]", mapping(bank, f"{key}[{i}]", "machine.ram", ("base", "size")))
                 for i, bank in enumerate(raw)]
    out: list[Bank] = []
    for where, bank in items:
        base = v.aligned(kind_of("machine.ram.base").parse(bank["base"], f"{where}.base"),
                         f"{where}.base", PAGE_SIZE, "page-aligned (4 KiB)")
        size = v.aligned(kind_of("machine.ram.size").parse(bank["size"], f"{where}.size"),
                         f"{where}.size", PAGE_SIZE, "a multiple of the page size (4 KiB)")
        if size == 0:
            raise ScenarioError(f"{where}.size", "must be greater than 0 (an empty bank)")
        if base + size > PHYS_LIMIT:
            raise ScenarioError(f"{where}.size", f"the bank ends at {base + size:#x}, beyond the 40-bit "
                                                 f"physical address space (1 TiB, {PHYS_LIMIT:#x})")
        new = Bank(base, size)
        for index, old in enumerate(out):
            if new.base < old.end and old.base < new.end:
                raise ScenarioError(where, f"bank [{new.base:#x}, {new.end:#x}) overlaps {key}[{index}] "
                                           f"[{old.base:#x}, {old.end:#x})")
        out.append(new)
    return tuple(out)


def kernel(user: Mapping[str, Any]) -> KernelSection:
    k = section(user, "kernel")
    key = "kernel.page_offset"
    page_offset = _parse(key, k["page_offset"])
    v.aligned(page_offset, key, PAGE_OFFSET_ALIGN, "16 MiB aligned",
              "ARM Linux patches PAGE_OFFSET - PHYS_OFFSET into the top 8 bits of add/sub immediates "
              "(ARM_PATCH_PHYS_VIRT)")
    key = "kernel.text_offset"
    text_offset = v.aligned(_parse(key, k["text_offset"]), key, PAGE_SIZE, "page-aligned (4 KiB)",
                            "hypemu loads the kernel image at a page boundary")
    return KernelSection(page_offset, text_offset, _idmap_offset(k["hyp_idmap_offset"]),
                         _parse("kernel.isa", k["isa"]), _config(k["config"]))


def _config(value: Any) -> tuple[tuple[str, Optional[str]], ...]:
    """``kernel.config``: each CONFIG_ value as autoconf.h writes it (None: not set)."""
    key = "kernel.config"
    if not isinstance(value, Mapping):
        raise ScenarioError(key, f"expected a mapping of CONFIG_ names to values, got "
                                 f"{v.describe(value)}")
    out: list[tuple[str, Optional[str]]] = []
    for name, item in value.items():
        where = v.join(key, name)
        if not isinstance(name, str) or not re.fullmatch(r"CONFIG_[A-Za-z0-9_]+", name):
            raise ScenarioError(where, f"expected a CONFIG_ name (CONFIG_ARM_LPAE ...), got "
                                       f"{v.describe(name)}")
        if item is True or item == "y":
            out.append((name, "1"))
        elif item is False or item == "n":
            out.append((name, None))
        elif item == "m":
            out += [(name, None), (f"{name}_MODULE", "1")]
        elif isinstance(item, int):
            out.append((name, str(v.integer(item, where, -(1 << 63), (1 << 64) - 1))))
        elif isinstance(item, str) and "\n" not in item and "\0" not in item:
            out.append((name, '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'))
        else:
            raise ScenarioError(where, f"expected an int, a string, true/y, m or false/n, got "
                                       f"{v.describe(item)}")
    return tuple(out)


def _idmap_offset(idmap: Any) -> Optional[int]:
    key = "kernel.hyp_idmap_offset"
    if idmap == "auto":
        return None
    if isinstance(idmap, str) and not re.match(r"\s*[0-9]", idmap):
        raise ScenarioError(key, f"expected 'auto' or an offset, got {v.describe(idmap)}")
    offset = v.integer(idmap, key, 0, PHYS_LIMIT - 1, size=True, hexa=True)
    if offset < PAGE_SIZE:
        raise ScenarioError(key, f"must be at least {PAGE_SIZE:#x}, got {offset:#x}: the image's first "
                                 f"page holds the kernel's PL1 code")
    v.aligned(offset, key, HVBAR_ALIGN, "32-byte aligned", "the init code starts with its vector table "
                                                           "and HVBAR bits [4:0] are RES0")
    return offset


def hyp(user: Mapping[str, Any], base_dir: Optional[str]) -> HypSection:
    """The hyp section: ``hyp.code`` as ``builtin``, an absolute path or a ``KernelTreeCode``
    (whose version gives ``hyp.init`` and ``hyp.call_abi`` their defaults), ``hyp.stub``
    resolved."""
    h = section(user, "hyp")
    given = user.get("hyp") or {}
    code = _code(h["code"], base_dir)
    implied = guest.tree_defaults(code)
    init = _parse("hyp.init", h["init"]) if implied is None or "init" in given else implied[0]
    call_abi = (_parse("hyp.call_abi", h["call_abi"]) if implied is None or "call_abi" in given
                else implied[1])
    out = HypSection(init=init, trampoline_va=_parse("hyp.trampoline_va", h["trampoline_va"]),
                     bounce_page=_parse("hyp.bounce_page", h["bounce_page"]), code=code,
                     stub=guest.stub_choice(h["stub"], code, base_dir), call_abi=call_abi,
                     assembler=_parse("hyp.assembler", h["assembler"]))
    if isinstance(code, KernelTreeCode) and out.assembler != "builtin":
        raise ScenarioError("hyp.assembler", f"{out.assembler!r} with a kernel tree: hypemu "
                                             f"assembles a tree's preprocessed sources with its "
                                             f"own assembler only (builtin)")
    if out.init == "single-step":
        for key in ("trampoline_va", "bounce_page"):
            if key in given:
                raise ScenarioError(f"hyp.{key}", "applies to the dual-step design only: the "
                                                  "single-step init has no trampoline")
    return out


def _code(value: Any, base_dir: Optional[str]) -> guest.Code:
    if not isinstance(value, Mapping):
        return guest.code_path(value, base_dir)
    given = mapping(value, "hyp.code", "hyp.code")
    if ("kernel" in given) == ("elf" in given):
        raise ScenarioError("hyp.code", "expected exactly one of kernel (a source tree) and elf "
                                        "(a vmlinux or objects)")
    if "elf" in given:
        if "preprocessor" in given:
            raise ScenarioError("hyp.code.preprocessor", "applies to a kernel tree only")
        return guest.elf_code(given["elf"], base_dir)
    preprocessor = _parse("hyp.code.preprocessor", given.get("preprocessor", "auto"))
    return guest.kernel_code(given["kernel"], preprocessor, base_dir)


def limits(user: Mapping[str, Any]) -> Limits:
    return Limits(_parse("limits.instructions", section(user, "limits")["instructions"]))


def cpu_id(value: Any, key: str, cpus: int) -> int:
    """A CPU of this board (``machine.cpus`` of them)."""
    cpu = v.integer(value, key, 0, v.TOO_LARGE)
    if cpu >= cpus:
        raise ScenarioError(key, f"cpu {cpu} does not exist: the board has {cpus} CPU"
                                 f"{'s' if cpus > 1 else ''} (machine.cpus), ids 0..{cpus - 1}")
    return cpu


def expect(user: Mapping[str, Any], cpus: int) -> Expect:
    e = section(user, "expect")
    outcome = _parse("expect.outcome", e["outcome"])
    fault = hazards = None
    if "fault" in e:
        fault = _fault(mapping(e["fault"], "expect.fault", "expect.fault"), cpus)
        if outcome != "fault":
            raise ScenarioError("expect.fault", f"a fault is described but expect.outcome is "
                                                f"{outcome!r} (add outcome: fault)")
    if "hazards" in e:
        kinds = v.as_list(e["hazards"], "expect.hazards")
        hazards = tuple(v.choice(k, f"expect.hazards[{i}]", HAZARD_KINDS) for i, k in enumerate(kinds))
        if hazards and outcome == "ok":
            raise ScenarioError("expect.hazards", "hazards are expected but expect.outcome is 'ok', "
                                                  "which means no hazard (use outcome: hazard)")
    return Expect(outcome, fault, hazards)


def _fault(given: dict[str, Any], cpus: int) -> FaultMatch:
    checked: dict[str, Any] = {name: (cpu_id(value, "expect.fault.cpu", cpus) if name == "cpu"
                      else _parse(f"expect.fault.{name}", value))
               for name, value in given.items()}
    return FaultMatch(**checked, given=tuple(checked))     # compared in the order written
