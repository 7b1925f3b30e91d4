"""Write the files generated from the scenario models: ``hypemu/scenario.schema.json`` and the key
table of the README. Run ``python -m hypemu.scenario.generate README.md`` after changing a model;
tests/test_scenario_schema.py checks that both files are what this module produces."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from .keys import json_schema, key_table

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "scenario.schema.json"


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


def readme_with_table(readme: str) -> str:
    """``readme`` with its key table (the block starting ``| key | type | default | meaning |``)
    replaced by ``key_table()``."""
    lines = readme.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("| key | type | default |"))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + key_table() + "\n" + "".join(lines[end:])


def main(argv: Optional[list[str]] = None) -> int:
    """Write scenario.schema.json and the README key table (given the README's path)."""
    args = sys.argv[1:] if argv is None else argv
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    for readme in args:
        path = Path(readme)
        path.write_text(readme_with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
