"""Shared fixtures: scenarios as plain mappings (DESIGN.md section 4) and booted machines."""

from __future__ import annotations

import pytest

from hypemu.machine import Machine
from hypemu.scenario import DEFAULT_SCENARIO, from_mapping


def scenario(**sections) -> dict:
    """The default scenario with some sections replaced (one level deep merge is done by
    from_mapping's defaults)."""
    return {**DEFAULT_SCENARIO, **sections}


def machine(**sections) -> Machine:
    return Machine(from_mapping(scenario(**sections)))


@pytest.fixture
def booted() -> Machine:
    m = machine()
    m.boot()
    return m


@pytest.fixture
def booted2() -> Machine:
    m = machine(machine={"cpus": 2})
    m.boot()
    return m
