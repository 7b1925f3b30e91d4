"""The fixtures of the hypemu pytest plugin: ``hypemu_machine`` and ``hypemu_scenario_dir``."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Protocol, Union

import pytest

if TYPE_CHECKING:
    from ..machine import Machine
    from ..scenario import Scenario

ScenarioSource = Union["Scenario", Mapping[str, Any], str, "os.PathLike[str]"]


class MachineFactory(Protocol):
    """The type of the ``hypemu_machine`` fixture (for annotating a test's argument)."""

    def __call__(self, scenario: Optional[ScenarioSource] = None, *, boot: bool = True) -> "Machine":
        ...


@pytest.fixture
def hypemu_scenario_dir(pytestconfig: pytest.Config) -> Path:
    """The directory where ``hypemu_machine`` looks up a relative scenario path: the ini option
    ``hypemu_scenario_dir`` (relative to the rootdir), else the rootdir. Override this fixture in a
    conftest.py to look elsewhere."""
    value = pytestconfig.getini("hypemu_scenario_dir")
    return pytestconfig.rootpath / value if value else pytestconfig.rootpath


@pytest.fixture
def hypemu_machine(hypemu_scenario_dir: Path) -> Iterator[MachineFactory]:
    """A factory of simulated boards: ``hypemu_machine(scenario=None, *, boot=True)``.

    ``scenario`` is a mapping (a scenario as in a YAML file), a ``Scenario``, or a path to a scenario
    file (relative paths are looked up in ``hypemu_scenario_dir``); None is the built-in default
    board (one CPU, 1 GiB). The factory builds the board as ``hypemu.Machine`` does: RAM, CPUs and
    the kernel side's layout and HYP page tables, with the guest code loaded and every CPU powered
    off (a refused layout raises ``hypemu.ConfigError``). With ``boot=True`` (the default) it then
    boots every CPU (stub install and HYP init); the scenario's ``steps`` are not run. After the
    test every board the factory made is released, with its Unicorn instance.
    """
    made: list[Machine] = []

    def make(scenario: Optional[ScenarioSource] = None, *, boot: bool = True) -> Machine:
        from ..machine import Machine
        from ..scenario import DEFAULT_SCENARIO, load_scenario
        if scenario is None:
            scenario = DEFAULT_SCENARIO
        elif isinstance(scenario, (str, os.PathLike)):
            scenario = hypemu_scenario_dir / scenario
        machine = Machine(load_scenario(scenario))
        made.append(machine)
        if boot:
            machine.boot()
        return machine

    yield make
    made.clear()
    # A board's CPUs and its Unicorn instance refer to each other through Unicorn's hooks, so only
    # the cycle collector frees them; collect now rather than when memory runs short.
    gc.collect()
