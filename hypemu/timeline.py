"""The timeline of a run, one line per step: ``steps[0] cpu0 on: stub, phase 1, phase 2``,
``steps[3] cpu3 off``, ``steps[1] cpu0 call hyp_probe -> r0=0x4b564d21 (the HYP data word "KVM!")``.

Why from the event log: a bring-up is several HVCs, and which of its phases ran (the stub install,
phase 1, phase 2, the single-step init) is what the kernel side recorded while doing it, so a
hotplug or a fault in the middle of a bring-up shows as what was reached. The steps come from the
scenario, their results from the Result (calls) and where the run ended from its reason.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Sequence

from . import events
from .events import Event
from .guest_abi import PROBE_VALUE
from .scenario import BootStep, CallStep, HotplugStep, Injection, Remap, Step

PHASES = {"enter kernel in HYP": "stub", "HYP init phase 1": "phase 1",
          "HYP init phase 2": "phase 2", "HYP init (single-step)": "init (single-step)"}


def _probe(r0: int, args: Sequence[int]) -> str:
    return ('the HYP data word "KVM!"' if r0 == PROBE_VALUE
            else f'not the HYP data word "KVM!" ({PROBE_VALUE:#x})')


MEANINGS: dict[str, Callable[[int, Sequence[int]], str]] = {
    "hyp_probe": _probe,
    "hyp_read": lambda r0, a: f"the word at HYP VA {a[0]:#x}" if a else "the word read",
    "hyp_write": lambda r0, a: "the value written",
    "hyp_get_sp": lambda r0, a: "SP_hyp",
    "hyp_sum": lambda r0, a: "the sum",
    "hyp_touch": lambda r0, a: "the sum",
}
"""What r0 means for the runtime functions that return something (hyp-runtime.S)."""


def _ended_at(reason: Optional[str]) -> Optional[int]:
    """The step a fault or a timeout ended the run in (its reason says ``at steps[N]``)."""
    found = re.search(r"at steps\[(\d+)\]", reason or "")
    return int(found.group(1)) if found else None


class _Cursor:
    """The kernel-side events (KERNEL, INJECT) of the log, consumed in order by the steps."""

    def __init__(self, log: Sequence[Event], remap_at: Sequence[int]):
        kernel_side = [e for e in log if e.kind in (events.KERNEL, events.INJECT)]
        remaps = [e for e in kernel_side if e.kind == events.INJECT and e.name == "remap"]
        self.log = [e for e in kernel_side if not (e.kind == events.INJECT and e.name == "remap")]
        self.remaps: dict[int, list[Event]] = {}
        for event, at in zip(remaps, remap_at):
            self.remaps.setdefault(at, []).append(event)
        self.at = 0

    def peek(self) -> Optional[Event]:
        return self.log[self.at] if self.at < len(self.log) else None

    def take_if(self, test: Callable[[Event], bool]) -> Optional[Event]:
        e = self.peek()
        if e is not None and test(e):
            self.at += 1
            return e
        return None

    def others(self) -> list[str]:
        """Kernel-side actions that are not a bring-up or a power-off (an injection, the idmap
        teardown, a TLB invalidation request), each a line of its own."""
        lines = []
        while (e := self.take_if(lambda e: e.name not in PHASES and e.name != "cpu off")):
            lines.append(f"{'inject' if e.kind == events.INJECT else 'kernel'}: {e.name}"
                         + (f" ({e.detail})" if e.detail else ""))
        return lines

    def remaps_before(self, index: int) -> list[str]:
        """The remap injections applied before ``steps[index]``: the event log records them when
        done, so they are placed by the scenario's ``at`` (the k-th remap event is the k-th remap
        in the order ``run`` applies them)."""
        return [f"inject: remap ({e.detail})" for e in self.remaps.get(index, [])]


def remap_order(inject: Sequence[Injection]) -> list[int]:
    """The ``at`` of each remap injection, in the order ``run`` applies them (by step, then by
    their place in ``inject``)."""
    return sorted(item.at for item in inject if isinstance(item, Remap))


def _reached(cur: _Cursor, cpu: int) -> str:
    """How far a CPU's bring-up got: ``stub, phase 1, phase 2``."""
    reached = []
    if cur.take_if(lambda e: e.cpu == cpu and e.name == "enter kernel in HYP"):
        reached.append("stub")
        while (e := cur.take_if(lambda e: e.cpu == cpu and e.name in PHASES
                                and e.name != "enter kernel in HYP")):
            reached.append(PHASES[e.name])
    return ", ".join(reached) if reached else "not started"


def _bring_up(cur: _Cursor, cpus: Sequence[int]) -> str:
    """``cpu0 on: ...``; consecutive CPUs that got as far are one group: ``cpu0-7 on: ...``."""
    groups: list[tuple[list[int], str]] = []
    for cpu in cpus:
        got = _reached(cur, cpu)
        if groups and groups[-1][1] == got and groups[-1][0][-1] + 1 == cpu:
            groups[-1][0].append(cpu)
        else:
            groups.append(([cpu], got))
    return "; ".join(f"cpu{ids[0]}" + (f"-{ids[-1]}" if len(ids) > 1 else "") + f" on: {got}"
                     for ids, got in groups)


def _call_line(step: CallStep, calls: list[dict[str, Any]], done: int) -> tuple[str, int]:
    cpu, fn, args = step.cpu, step.fn, list(step.args)
    name = fn if isinstance(fn, str) else f"{fn:#x}"
    shown = f"cpu{cpu} call {name}" + ("(" + ", ".join(f"{a:#x}" for a in args) + ")" if args else "")
    if done >= len(calls):
        return f"{shown}: did not return", done
    r0 = calls[done]["r0"]
    meaning = MEANINGS.get(fn) if isinstance(fn, str) else None
    return f"{shown} -> r0={r0:#x}" + (f" ({meaning(r0, args)})" if meaning else ""), done + 1


def lines(steps: Sequence[Step], log: Sequence[Event], calls: list[dict[str, Any]],
          cpus: int, outcome: str, reason: Optional[str], remap_at: Sequence[int] = ()) -> list[str]:
    """The timeline: each step of ``steps`` with what it reached; the step a fault or timeout
    ended in is marked, later steps are listed as not run. ``remap_at``: ``remap_order`` of the
    scenario's injections."""
    cur, out, done = _Cursor(log, remap_at), [], 0
    ended = _ended_at(reason) if outcome in ("fault", "timeout") else None
    out += cur.others()
    for index, step in enumerate(steps):
        if ended is not None and index > ended:
            out.append(f"steps[{index}]..: not run")
            break
        out += cur.remaps_before(index)
        match step:
            case BootStep(cpus=ids):
                text = _bring_up(cur, list(range(cpus) if ids == "all" else ids))
            case CallStep():
                text, done = _call_line(step, calls, done)
            case HotplugStep(cpu=cpu, state="off"):
                off = cur.take_if(_is_event(cpu, "cpu off"))
                text = f"cpu{cpu} off" if off else f"cpu{cpu} off: not reached"
            case HotplugStep(cpu=cpu):
                text = _bring_up(cur, [cpu])
        mark = f"  <- {outcome}" if index == ended else ""
        out.append(f"steps[{index}] {text}{mark}")
        out += ["  " + line for line in cur.others()]
    return out


def _is_event(cpu: int, name: str) -> Callable[[Event], bool]:
    """A test for `take_if`: the event `name` of `cpu`."""
    return lambda e: e.cpu == cpu and e.name == name
