"""The steps and injections of a scenario, typed, and the rules across them: the timeline of which
CPUs are up is fixed by the file, so a step on a CPU in the wrong state is an input error found
before running; a remap names a step that exists.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from ..errors import ScenarioError
from . import values as v
from .keys import INJECT_DEFAULTS, STEP_DEFAULTS, kind_of, required
from .models import (ADDRESS, ARG, CORRUPT_FIELDS, HOTPLUG_STATES, INJECTION_TYPES, MAX_ARGS, PHYS_LIMIT,
                     SKIP_BARRIERS, STEP_TYPES, BootStep, CallStep, Corrupt, HotplugStep, Injection,
                     Remap, Skip, Step)
from .sections import cpu_id, mapping

STEP_KINDS: tuple[str, ...] = tuple(getattr(t, "TAG") for t in STEP_TYPES)
INJECT_KINDS: tuple[str, ...] = tuple(getattr(t, "TAG") for t in INJECTION_TYPES)


def _one_of(value: Any, key: str, prefix: str, kinds: tuple[str, ...], what: str) -> tuple[str, Any]:
    """The one (kind, body) of a list item that has exactly one of ``kinds``."""
    item = mapping(value, key, prefix)
    if len(item) != 1:
        got = " and ".join(item) if item else "none"
        raise ScenarioError(key, f"{what} has exactly one of {', '.join(kinds)}; got {got}")
    ((kind, body),) = item.items()
    return kind, body


# --- steps ------------------------------------------------------------------------------------------

def _boot(value: Any, key: str, cpus: int) -> BootStep:
    if value == "all":
        return BootStep("all")
    if not isinstance(value, (list, tuple)):
        raise ScenarioError(key, f"expected 'all' or a list of CPU ids, got {v.describe(value)}")
    if not value:
        raise ScenarioError(key, "expected 'all' or a non-empty list of CPU ids, got an empty list")
    ids: list[int] = []
    for index, item in enumerate(value):
        cpu = cpu_id(item, f"{key}[{index}]", cpus)
        if cpu in ids:
            raise ScenarioError(f"{key}[{index}]", f"cpu {cpu} is listed twice")
        ids.append(cpu)
    return BootStep(tuple(ids))


def _call(value: Any, key: str, cpus: int) -> CallStep:
    call = mapping(value, key, "steps[].call", required("steps[].call"))
    fn = call["fn"]
    if isinstance(fn, int) and not isinstance(fn, bool):   # a HYP VA, as Machine.call takes
        fn = ADDRESS.parse(fn, f"{key}.fn")
    elif not isinstance(fn, str) or not v.IDENT.fullmatch(fn):
        raise ScenarioError(f"{key}.fn", f"expected the name of a runtime HYP function (an identifier "
                                         f"such as hyp_probe) or its HYP VA, got {v.describe(fn)}")
    call = {**STEP_DEFAULTS["call"], **call}
    args = v.as_list(call["args"], f"{key}.args")
    if len(args) > MAX_ARGS:
        raise ScenarioError(f"{key}.args", f"a HYP call takes at most {MAX_ARGS} arguments (r1-r3), "
                                           f"got {len(args)}")
    return CallStep(cpu_id(call["cpu"], f"{key}.cpu", cpus), fn,
                    tuple(ARG.parse(arg, f"{key}.args[{i}]") for i, arg in enumerate(args)))


def _hotplug(value: Any, key: str, cpus: int) -> HotplugStep:
    plug = mapping(value, key, "steps[].hotplug", required("steps[].hotplug"))
    state = plug["state"]
    if isinstance(state, v.BoolWord) and state.lower() in ("on", "off"):
        state = state.lower()            # the words this key documents, whatever YAML 1.1 makes of them
    elif isinstance(state, bool):        # a Python mapping that a YAML 1.1 reader made: on/off
        state = "on" if state else "off"
    return HotplugStep(cpu_id(plug["cpu"], f"{key}.cpu", cpus),
                       v.choice(state, f"{key}.state", HOTPLUG_STATES))


_STEP_PARSERS: dict[str, Callable[[Any, str, int], Step]] = {
    "boot": _boot, "call": _call, "hotplug": _hotplug}


def steps(value: Any, cpus: int) -> tuple[Step, ...]:
    """The steps, each checked against the board and the CPUs that are up at that point (a call or
    an ``off`` on an offline CPU, a boot or an ``on`` of an online one is refused)."""
    out: list[Step] = []
    online: set[int] = set()
    since: dict[int, str] = {}
    for index, item in enumerate(v.as_list(value, "steps")):
        key = f"steps[{index}]"
        kind, body = _one_of(item, key, "steps[]", STEP_KINDS, "a step")
        step: Step = _STEP_PARSERS[kind](body, f"{key}.{kind}", cpus)
        match step:
            case BootStep(cpus=listed):
                ids = range(cpus) if listed == "all" else listed
                for n, cpu in enumerate(ids):
                    if cpu in online:
                        where = key + ".boot" + ("" if listed == "all" else f"[{n}]")
                        raise ScenarioError(where, f"cpu {cpu} is already online (since {since[cpu]})")
                    online.add(cpu)
                    since[cpu] = key
            case HotplugStep(cpu=cpu, state=state):
                if (state == "on") == (cpu in online):
                    now = "online" if cpu in online else "offline"
                    raise ScenarioError(f"{key}.hotplug.state", f"cpu {cpu} is already {now} "
                                                                f"(since {since.get(cpu, 'the start')})")
                (online.add if state == "on" else online.discard)(cpu)
                since[cpu] = key
            case CallStep(cpu=cpu) if cpu not in online:
                raise ScenarioError(f"{key}.call.cpu", f"cpu {cpu} is offline at this step (since "
                                                       f"{since.get(cpu, 'the start')}): boot it (or "
                                                       f"hotplug it on) in an earlier step")
        out.append(step)
    return tuple(out)


# --- injections -------------------------------------------------------------------------------------

def injections(value: Any, nsteps: int, isa: str = "arm") -> tuple[Injection, ...]:
    """``isa``: kernel.isa, which says how a skip offset counts (ARM or Thumb-2 instructions)."""
    out: list[Injection] = []
    for index, item in enumerate(v.as_list(value, "inject")):
        key = f"inject[{index}]"
        kind, body = _one_of(item, key, "inject[]", INJECT_KINDS, "an injection")
        where = f"{key}.{kind}"
        if kind == "skip":
            out.append(_skip(body, where, isa == "thumb2"))
        elif kind == "corrupt":
            out.append(_corrupt(body, where))
        else:
            out.append(_remap(body, where, nsteps))
    return tuple(out)


def _corrupt(body: Any, where: str) -> Corrupt:
    c = mapping(body, where, "inject[].corrupt", required("inject[].corrupt"))
    field = v.choice(c["field"], f"{where}.field", CORRUPT_FIELDS)
    limit = PHYS_LIMIT - 1 if field == "output" else (3 if field == "ap" else 1)
    return Corrupt(table=kind_of("inject[].corrupt.table").parse(c["table"], f"{where}.table"),
                   va=kind_of("inject[].corrupt.va").parse(c["va"], f"{where}.va"), field=field,
                   value=v.integer(c["value"], f"{where}.value", 0, limit, size=True, hexa=True))


def _remap(body: Any, where: str, nsteps: int) -> Remap:
    r = {**INJECT_DEFAULTS["remap"], **mapping(body, where, "inject[].remap",
                                                   required("inject[].remap"))}
    bbm, tlbi = v.flag(r["bbm"], f"{where}.bbm"), v.flag(r["tlbi"], f"{where}.tlbi")
    if nsteps == 0:
        raise ScenarioError(f"{where}.at", "there are no steps to remap before")
    return Remap(table=kind_of("inject[].remap.table").parse(r["table"], f"{where}.table"),
                 va=kind_of("inject[].remap.va").parse(r["va"], f"{where}.va"),
                 to=kind_of("inject[].remap.to").parse(r["to"], f"{where}.to"),
                 bbm=bbm, tlbi=tlbi, at=_step_index(r["at"], f"{where}.at", nsteps))


def _step_index(value: Any, key: str, nsteps: int) -> int:
    index = v.integer(value, key, 0, v.TOO_LARGE)
    if index >= nsteps:
        raise ScenarioError(key, f"there is no steps[{index}]: the scenario has {nsteps} step"
                                 f"{'s' if nsteps > 1 else ''} (0..{nsteps - 1})")
    return index


def skip_names() -> list[str]:
    from ..cp15 import REGISTERS     # the same table the trap handler decodes with
    return list(SKIP_BARRIERS) + sorted(r.name.lower() for r in REGISTERS if r.writable)


def _skip(value: Any, key: str, thumb: bool = False) -> Skip:
    if isinstance(value, Mapping):
        given = mapping(value, key, "inject[].skip", required("inject[].skip"))
        body = {**INJECT_DEFAULTS["skip"], **given}
        symbol = body["symbol"]
        if not isinstance(symbol, str) or not v.IDENT.fullmatch(symbol):
            raise ScenarioError(f"{key}.symbol", f"expected a label of the init or runtime code, "
                                                 f"got {v.describe(symbol)}")
        offset: int = kind_of("inject[].skip.offset").parse(body["offset"], f"{key}.offset")
        if offset % (2 if thumb else 4):
            what = "2 (a Thumb-2 instruction)" if thumb else "4 (an ARM instruction)"
            raise ScenarioError(f"{key}.offset", f"must be a multiple of {what}, got {offset}")
        return Skip(None, symbol, offset)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", value):
        raise ScenarioError(key, f"expected an instruction name such as tlbiallh or "
                                 f"{{symbol: NAME, offset: N}}, got {v.describe(value)}")
    names = skip_names()
    if value.lower() not in names:
        raise ScenarioError(key, f"unknown instruction {v.describe(value)}"
                                 f"{v.suggest(value.lower(), names)}")
    return Skip(value.lower())

