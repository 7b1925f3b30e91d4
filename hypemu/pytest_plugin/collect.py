"""Scenario files as pytest items: one file, one item named after the scenario.

ERROR and FAILED mean different things here, as everywhere in hypemu: a file that is not a valid
scenario is a collection error, and input that only breaks when it runs (a call of a function the
runtime code lacks, a guest doing something hypemu does not model) is an error at setup; both
show one line ``FILE:LINE: key: message``. Any other exception is a bug of hypemu: an ERROR at
setup with its traceback and a request for a bug report. FAILED means the model ran and disagreed
with ``expect``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from ..errors import BUG_REPORT, ScenarioError
from ..result import INPUT_ERRORS, Result, input_error_message, run
from ..scenario import Scenario, load_file
from .failure import failure_text
from .kernel import kernel_tree


def shown_path(path: "os.PathLike[str]", config: pytest.Config) -> str:
    """A path as the user would type it: relative to the directory pytest was started in, while
    that is the working directory (``load_file`` finds ``hyp.code`` from the path it is given)."""
    start = config.invocation_params.dir
    return os.path.relpath(path, start) if Path.cwd() == start else os.fspath(path)


class ScenarioFile(pytest.File):
    """A scenario file; loading it validates every key (and assembles user init code)."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_file(shown_path(self.path, self.config), kernel=kernel_tree(self.config))
        except ScenarioError as err:
            raise self.CollectError(f"hypemu: {err}") from None
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
        if self.config.getoption("hypemu_crosscheck", False):
            from .crosscheck import CrosscheckItem
            yield CrosscheckItem.from_parent(self, name=f"{scenario.name}[crosscheck]",
                                             scenario=scenario)


class InternalError(Exception):
    """A bug of hypemu met while running a scenario item (the exception it chains is the bug)."""


class ScenarioItem(pytest.Item):
    """One scenario run: ``setup`` runs it with ``hypemu.run``, ``runtest`` judges the Result."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.result: Optional[Result] = None

    def setup(self) -> None:
        try:
            self.result = run(self.scenario)
            return
        except INPUT_ERRORS as err:
            message = input_error_message(err, self.scenario)
        except Exception as err:
            raise InternalError(f"{BUG_REPORT.removeprefix('hypemu: ')} ({self.scenario.file})") from err
        pytest.fail(f"hypemu: {message}", pytrace=False)   # outside ``except``: no chained traceback

    def runtest(self) -> None:
        assert self.result is not None, "setup did not run the scenario"
        if not self.result.passed:
            pytest.fail(failure_text(self.result, self.scenario), pytrace=False)

    def teardown(self) -> None:
        self.result = None   # its event log can be long

    def reportinfo(self) -> tuple["os.PathLike[str]", Optional[int], str]:
        line = self.scenario.lines.get("name")
        return self.path, line - 1 if line else None, f"scenario {self.scenario.name}"
