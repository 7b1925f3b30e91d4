"""examples/ is another project's test set-up that embeds hypemu: it must run, and pass, as that
project would run it (its own rootdir and ini file; the pytest plugin found through its entry point)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_embedding_example_passes(pytester, monkeypatch):
    project = pytester.path / "project"
    shutil.copytree(EXAMPLES, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    monkeypatch.chdir(project)          # as its pytest.ini says: cd examples && pytest -v
    result = pytester.runpytest("-p", "no:hypothesispytest", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([
        "*rootdir: */project", "*configfile: pytest.ini",
        "scenarios/two-cpus.yaml::two-cpus PASSED*",
        "test_hyp_descriptor.py::test_a_corrupted_leaf_descriptor_faults_the_next_hyp_access PASSED*",
    ])


def test_the_readme_pytest_snippet_passes(pytester):
    """The Python block of the README section "Using hypemu from Python and pytest" is a test file."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("## Using hypemu from Python and pytest", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    pytester.makepyfile(test_readme_snippet=blocks[0])
    pytester.runpytest("-p", "no:hypothesispytest").assert_outcomes(passed=2)
