"""``--hypemu-crosscheck``: each collected scenario file also runs on QEMU, as its own item
(``scenario-name[crosscheck]``), through ``hypemu.qemu``.

PASSED: every row agrees up to the allowed differences; FAILED: a disagreement, with the table;
SKIPPED: no qemu-system-arm (the reason names the Debian package), or a board QEMU cannot host
(the reason says why). Broken input is an ERROR, as for the scenario items.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from ..result import INPUT_ERRORS, input_error_message, run
from ..scenario import Scenario

OPTION = "hypemu_crosscheck"


class CrosscheckItem(pytest.Item):
    """One scenario on hypemu and on QEMU, compared."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.check: Optional[Any] = None

    def setup(self) -> None:
        from ..qemu import crosscheck, launch
        try:
            qemu = launch.find_qemu(self.config.getoption("hypemu_qemu"))
        except launch.QemuMissing as err:
            pytest.skip(str(err))
        try:
            result = run(self.scenario, export=True)
        except INPUT_ERRORS as err:
            message = input_error_message(err, self.scenario)
        else:
            self.check = crosscheck.qemu_side(qemu, str(self.scenario.file), result)
            return
        pytest.fail(f"hypemu: {message}", pytrace=False)

    def runtest(self) -> None:
        from ..qemu import report
        assert self.check is not None, "setup did not run the cross-check"
        if self.check.verdict == "not comparable":
            pytest.skip(f"not comparable: {self.check.reason}")
        if self.check.verdict != "agree":
            pytest.fail(report.text(self.check), pytrace=False)

    def reportinfo(self) -> tuple[Any, Optional[int], str]:
        return self.path, None, f"crosscheck {self.scenario.name}"
