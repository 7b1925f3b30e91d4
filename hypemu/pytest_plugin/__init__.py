"""The hypemu pytest plugin (entry point ``pytest11``: ``hypemu``): scenario files as test items,
and fixtures for step-by-step use of ``hypemu.Machine`` in another project's tests.

- The ini option ``hypemu_scenarios`` (globs relative to the rootdir, separated as in a shell) or
  the command-line option ``--hypemu-scenarios GLOB`` (repeatable; it replaces the ini option)
  name the scenario files. Each becomes one test item named after the scenario: it passes when
  ``hypemu.run`` meets the scenario's ``expect``, fails (with expected vs actual outcome, the fault
  or hazards and the last trace events) when it does not, and is an error when the input is broken.
- When pytest runs without path arguments (testpaths or the rootdir), the matched files are added to
  what it collects even if they lie outside testpaths; with explicit paths, only matched files
  under those paths run. A glob that matches no file is a usage error.
- ``--hypemu-crosscheck``: each scenario file also gives an item ``NAME[crosscheck]`` that runs
  it on QEMU and compares (``hypemu.qemu``; skipped without qemu-system-arm).
- Fixtures: ``hypemu_machine`` (a factory of ``Machine`` objects, released after the test) and
  ``hypemu_scenario_dir`` (where relative scenario paths are looked up).

Why this module is small: pytest imports it in every project where hypemu is installed. It imports
neither the simulator nor YAML until a scenario file is collected or a fixture is used.
"""

from __future__ import annotations

import glob
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pytest

from .fixtures import MachineFactory, hypemu_machine, hypemu_scenario_dir
from .kernel import KERNEL, checked_tree

if TYPE_CHECKING:
    from .collect import ScenarioFile

__all__ = ["MachineFactory", "hypemu_machine", "hypemu_scenario_dir", "scenario_globs"]

_FILES = pytest.StashKey[frozenset[Path]]()
OPTION = "hypemu_scenarios"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hypemu", "hypemu scenario files")
    group.addoption("--hypemu-scenarios", "--hypemu_scenarios", dest=OPTION, action="append",
                    metavar="GLOB", default=None,
                    help="scenario files to collect as tests: globs relative to the rootdir "
                         "(repeatable; replaces the ini option hypemu_scenarios)")
    group.addoption("--hypemu-crosscheck", dest="hypemu_crosscheck", action="store_true",
                    help="also run each collected scenario on QEMU and compare (hypemu.qemu; "
                         "skipped without qemu-system-arm)")
    group.addoption("--hypemu-qemu", dest="hypemu_qemu", metavar="PATH", default=None,
                    help="the qemu-system-arm for --hypemu-crosscheck (default: PATH's)")
    group.addoption("--hypemu-kernel", dest="hypemu_kernel", metavar="PATH", default=None,
                    help="a Linux kernel source tree whose own HYP init code and stub replace "
                         "hyp.code in every scenario file collected")
    parser.addini(OPTION, type="args", default=[],
                  help="scenario files to collect as tests: globs relative to the rootdir")
    parser.addini("hypemu_scenario_dir", type="string", default="",
                  help="directory (relative to the rootdir) where the hypemu_machine fixture looks "
                       "up relative scenario paths; default: the rootdir")


def scenario_globs(config: pytest.Config) -> list[str]:
    """The globs in force: the command-line option if given (each value split as in a shell), else
    the ini option."""
    given: Optional[list[str]] = config.getoption(OPTION)
    if given is not None:
        return [pattern for value in given for pattern in shlex.split(value)]
    return list(config.getini(OPTION))


def _expand(root: Path, patterns: list[str]) -> list[Path]:
    """Every file the globs match (``**`` spans directories), sorted; a glob that matches no file
    is a usage error, so that a typo cannot turn into a run of no scenarios."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(Path(p).resolve() for p in
                         glob.glob(os.path.join(glob.escape(str(root)), pattern), recursive=True)
                         if os.path.isfile(p))
        if not matches:
            raise pytest.UsageError(f"{OPTION}: {pattern!r} matches no file under {root}")
        found.update(dict.fromkeys(matches))
    return list(found)


def _covered(path: Path, args: list[str]) -> bool:
    """True if pytest reaches ``path`` anyway when it collects ``args``."""
    for arg in args:
        where = Path(arg.split("::")[0]).resolve()
        if path == where or where in path.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    """Expand the globs once; when pytest runs the whole suite, add the files it would not reach."""
    config.stash[KERNEL] = checked_tree(config)
    patterns = scenario_globs(config)
    if not patterns:
        return
    files = _expand(config.rootpath, patterns)
    config.stash[_FILES] = frozenset(files)
    whole_suite = (config.args_source is not pytest.Config.ArgsSource.ARGS
                   and config.invocation_params.dir.resolve() == config.rootpath.resolve())
    if whole_suite:
        config.args.extend(str(f) for f in files if not _covered(f, config.args))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional["ScenarioFile"]:
    """A matched file is a scenario file; anything else is not ours."""
    files = parent.config.stash.get(_FILES, None)
    if not files or file_path.resolve() not in files:
        return None
    from .collect import ScenarioFile
    return ScenarioFile.from_parent(parent, path=file_path)
