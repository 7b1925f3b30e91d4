"""The CPUs: Unicorn runs the guest in its User mode; this package owns mode, banked registers, the
HYP and PL1 cp15 registers, HVC/ERET, exception entry to HYP, and translation.

How the work is split (one module per concern):
- ``state``: one CPU's state, the CPSR composition and the mode switch (pure);
- ``context``: the running CPU as its instructions see it (implements ``cp15.WriteContext``);
- ``insns``: the semantics of each trapped instruction, keyed by ``decode.PATTERNS``' operations;
- ``exceptions``: HYP exception entry, ERET, undefined instructions and aborts;
- ``fill``: the soft-TLB fill decision, ``Map | Refuse | Pause``, and translation through the model;
- ``runner``: the run loop, the trap handler, the one-instruction replay and table-store stepping;
- ``complex``: ``CpuComplex``, all CPUs of a board on one Unicorn, and the observer's view.

Every ordinary instruction runs natively in Unicorn's JIT (no per-instruction hook). Privileged
instructions reach the engine's invalid-instruction hook; the soft-TLB fill hook is the only path
from a virtual address to a physical one. Unicorn's soft TLB is only a cache of the model: it is
flushed whenever the model drops an entry or the regime changes. CPUs run one at a time on one
Unicorn whose register context is swapped. The CPU imports only ``observer``'s interface, never
the hazard checks.
"""

from .complex import CpuComplex, CpuComplexView
from .context import ExecContext, FaultRecord, Stats
from .runner import PATCH_MARKER, SENTINEL_WORD, RunResult
from .state import (CPSR_A, CPSR_E, CPSR_F, CPSR_I, CPSR_T, MODE_HYP, MODE_NAMES, MODE_SVC,
                    MODE_USR, CpuState, DictRegisters, NotModelled, regime_of)

__all__ = ["CPSR_A", "CPSR_E", "CPSR_F", "CPSR_I", "CPSR_T", "MODE_HYP", "MODE_NAMES", "MODE_SVC",
           "MODE_USR", "PATCH_MARKER", "SENTINEL_WORD", "CpuComplex", "CpuComplexView",
           "CpuState", "DictRegisters", "ExecContext", "FaultRecord", "NotModelled", "RunResult",
           "Stats", "regime_of"]
