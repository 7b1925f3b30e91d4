"""One scenario on hypemu and on QEMU, compared: the bridge's entry point.

hypemu runs first (``hypemu.run(..., export=True)``: the Result and the board's ``Export``), then
QEMU replays the export and its vCPUs are read; ``compare`` lines the two up. Only the public API
(``run``, ``Result``, ``Export``) of hypemu is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .. import load_scenario, run
from .compare import Comparison, compare
from .gdbremote import GdbRemote
from .launch import Board, NotComparable, Qemu, choose_board
from .registers import hyp_state, sysregs
from .replay import Replay, Replayed
from .target import MODE_HYP, Target


@dataclass
class Crosscheck:
    """The cross-check of one scenario file: ``verdict`` is ``agree``, ``disagree`` or
    ``not comparable`` (then ``reason``)."""

    file: str
    name: str
    verdict: str
    reason: Optional[str] = None
    board: Optional[str] = None
    comparison: Comparison = field(default_factory=Comparison)
    actions: int = 0

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"file": self.file, "name": self.name, "verdict": self.verdict,
                "reason": self.reason, "board": self.board, "actions": self.actions,
                "rows": [r.to_dict() for r in c.rows], "allowed": c.allowed,
                "hazards": list(c.hazards)}


def hypemu_side(path: str) -> tuple[Any, Any]:
    """hypemu's Result and Export of a scenario file (InputError for a broken file)."""
    result = run(load_scenario(path), export=True)
    return result, result.export


def qemu_side(qemu: str, path: str, result: Any) -> Crosscheck:
    """Replay ``result.export`` on QEMU and compare."""
    ex = result.export
    check = Crosscheck(path, result.name, "not comparable")
    if ex is None:
        check.reason = f"the kernel side refused the layout ({result.reason}): no board to compare"
        return check
    check.actions = len(ex.actions)
    try:
        board = choose_board(ex)
        check.board = f"QEMU {board.name}, {ex.cpus} vCPU(s)"
        rep, cpus = _replay(qemu, board, ex, result)
    except NotComparable as err:
        check.reason = err.reason
        return check
    check.comparison = compare(result, ex, rep, cpus)
    check.verdict = "agree" if check.comparison.agrees else "disagree"
    return check


def _replay(qemu: str, board: Board, ex: Any,
            result: Any) -> tuple[Replayed, dict[int, dict[str, Optional[int]]]]:
    with Qemu(qemu, board, ex) as q:
        target = Target(GdbRemote(q.sock), board.driver_pa)
        bases = {c["hyp"]["HVBAR"] for c in result.cpus if c["mode"] != "off"}
        rep = Replay(target, ex, board.psci, bases).run(result.outcome == "timeout")
        cpus = {}
        for n in sorted(rep.online):
            regs = sysregs(target, n)
            if regs["mode"] == MODE_HYP:
                regs.update(hyp_state(target, n))
            else:
                regs.update(rep.hyp.get(n, {"SP_hyp": None, "ELR_hyp": None, "SPSR_hyp": None}))
            cpus[n] = regs
        return rep, cpus
