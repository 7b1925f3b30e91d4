"""A point run and turned into its row: the same columns in every output format and in the
Python API. Nothing in a row depends on time, the worker or the order of the run, so the same
sweep gives the same rows whatever ``-j``, the backend or a restart.

Outcomes are those of ``hypemu.run`` plus ``invalid`` (the combination is not a valid scenario, or
input that only breaks when run) and ``not_modelled`` (the guest did what hypemu does not model).
"""

from __future__ import annotations

import re
from typing import Any, Optional

from ..engine import EngineFactory
from ..errors import InputError, NotModelled, ScenarioError
from ..result import run
from .points import _located, point_key, scenario_at
from .spec import SweepSpec

# hazards: the kinds reported, comma-separated, or null for none
FIXED_COLUMNS = ("outcome", "reason_class", "reason", "fault_kind", "fault_fsc", "hsr", "hazards",
                 "bounce_page", "instructions")
OUTCOMES = ("ok", "hazard", "fault", "timeout", "config_error", "invalid", "not_modelled")

# The kernel side's refusals by what they are about (the text after the class is the detail).
_REFUSALS = (
    (r"^trampoline VA .* lies inside the kernel's lowmem", "trampoline_in_lowmem"),
    (r"^trampoline VA .* is not a page-aligned", "trampoline_unaligned"),
    (r"^the HYP idmap .* overlaps the trampoline page", "idmap_over_trampoline"),
    (r"^HYP init code at PA .* is above 4 GiB", "idmap_above_4g"),
    (r"^HYP init code is .* more than a page", "init_code_too_big"),
    (r"^RAM too small", "ram_too_small"),
    (r"^kernel\.hyp_idmap_offset .* overlaps the kernel's first page", "idmap_over_pl1_page"),
    (r"^single-step: .* shares the level-1 entry", "single_step_shares_idmap_l1"),
    (r"would be mapped at the trampoline VA", "mapping_at_trampoline"),
    (r"has no 32-bit kernel VA", "no_kernel_va"),
    (r"is not 32-byte aligned", "vectors_unaligned"),
    (r"^cannot map ", "cannot_map"),
)


def columns(spec: SweepSpec) -> list[str]:
    return ["point", "index", *(a.path for a in spec.axes), *FIXED_COLUMNS]


def reason_class(outcome: str, reason: Optional[str], fault: Optional[dict[str, Any]],
                 hazards: Optional[str] = None) -> Optional[str]:
    """A short name for why the point did not come up, to group rows by: the refusal
    (``trampoline_in_lowmem`` ...), the fault (``prefetch_abort/translation``), the hazards
    (``bbm+stale_tlb``), the end of a budget (``budget`` or ``wfi``), the key of an invalid
    combination."""
    if outcome == "hazard" and hazards:
        return hazards.replace(",", "+")
    if outcome == "config_error" and reason:
        for pattern, name in _REFUSALS:
            if re.search(pattern, reason):
                return name
        return "other_refusal"
    if outcome == "fault" and fault:
        return f"{fault['kind']}/{fault.get('fsc') or 'none'}"
    if outcome == "timeout":
        return "wfi" if reason and "WFI" in reason else "budget"
    if outcome == "invalid" and reason:
        match = re.match(r"(?:[^:]*:\d+: )?([^:]+):", reason)
        return match.group(1) if match else "invalid"
    if outcome == "not_modelled":
        return "not_modelled"
    return None


def run_point(spec: SweepSpec, index: int, engines: EngineFactory) -> dict[str, Any]:
    """The row of grid point ``index``."""
    values = spec.values(index)
    row: dict[str, Any] = {"point": point_key(spec, values), "index": index}
    row.update({a.path: a.row_values[at] for a, at in zip(spec.axes, spec.positions(index))})
    row.update(dict.fromkeys(FIXED_COLUMNS))
    scenario = scenario_at(spec, values)
    if isinstance(scenario, str):
        row.update(outcome="invalid", reason=scenario)
    else:
        try:
            result = run(scenario, engines=engines)
        except ScenarioError as err:
            row.update(outcome="invalid", reason=_located(spec, err))
        except InputError as err:
            row.update(outcome="invalid", reason=str(err))
        except NotModelled as err:
            row.update(outcome="not_modelled", reason=f"not modelled: {err}")
        else:
            fault, layout = result.fault, result.layout
            row.update(outcome=result.outcome, reason=result.reason,
                       fault_kind=fault["kind"] if fault else None,
                       fault_fsc=fault["fsc"] if fault else None,
                       hsr=fault["hsr"] if fault else None,
                       hazards=",".join(sorted({h["kind"] for h in result.hazards})) or None,
                       bounce_page=None if layout is None else layout["bounce_page"] is not None,
                       instructions=result.stats.get("instructions"))
    row["reason_class"] = reason_class(row["outcome"], row["reason"],
                                       {"kind": row["fault_kind"], "fsc": row["fault_fsc"]},
                                       row["hazards"])
    return row
