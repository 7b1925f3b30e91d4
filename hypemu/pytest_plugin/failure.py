"""The failure report of a scenario item: expected vs actual (the ``hypemu run`` summary: outcome,
mismatches, reason, fault, hazards, registers), where the expectation is written, and the last
events of the trace."""

from __future__ import annotations

from ..result import Result
from ..report import summary
from ..scenario import Scenario
from ..tracer import table_names, text as trace_text

LAST_EVENTS = 12


def expectation_at(scenario: Scenario) -> str:
    """``FILE:LINE (key)`` of the expectation, or a note that the default one applies."""
    for key in ("expect.outcome", "expect"):
        if key in scenario.lines:
            return f"{scenario.file}:{scenario.lines[key]} ({key})"
    return f"{scenario.file}: no expect.outcome, so the default: ok"


def failure_text(result: Result, scenario: Scenario, last: int = LAST_EVENTS) -> str:
    """What a failed scenario item shows: first the mismatches (the line pytest's short summary
    repeats), then the ``hypemu run`` summary, the expectation's line and the last ``last`` events."""
    text = ["; ".join(result.mismatch), summary(result, scenario=scenario),
            f"  expectation: {expectation_at(scenario)}"]
    events = result.events
    if events:
        shown = events[-last:]
        text.append(f"  last {len(shown)} of {len(events)} events:")
        text += [f"    {line}" for line in trace_text(shown, table_names(result.layout))]
    return "\n".join(text)
