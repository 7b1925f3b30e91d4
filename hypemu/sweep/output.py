"""The output file of a sweep: JSON lines (default), CSV or Parquet by extension, appended one row
at a time, so that a killed sweep loses no finished row and a rerun skips the points it has.

Why it survives ``kill -9`` at any moment: only the main process writes, each row is one
``os.write`` of a whole line to a file opened with ``O_APPEND`` (the data is in the kernel once
the call returns, whatever happens to the process after), and ``fsync`` runs at least once a
second and at the end (for a power cut). A process killed inside that one call can leave at most a
torn last line; reopening cuts it off before appending, so the file is never corrupted.

Parquet cannot be appended safely, so its rows go to a JSON-lines journal beside it
(``OUT.parquet.jsonl``, resumed like any JSON-lines output) and the Parquet file is written from
the journal at the end (to a temporary name, then renamed). It needs pyarrow.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import time
from typing import Any, Iterable, Iterator, Optional

from ..errors import InputError

FSYNC_EVERY = 1.0   # seconds


class OutputError(InputError):
    """The output file cannot take this sweep's rows (another sweep's, unreadable, a format
    without its library): exit status 2."""


def journal_path(path: str) -> str:
    return path + ".jsonl" if path.endswith(".parquet") else path


def check_format(path: str) -> None:
    """Refuse, before anything runs, an output this installation cannot write."""
    if path.endswith(".parquet"):
        try:
            importlib.import_module("pyarrow")
        except ImportError:
            raise OutputError(f"{path}: Parquet output needs pyarrow, which is not installed "
                              f"(pip install pyarrow), or use .jsonl or .csv") from None


class RowFile:
    """Rows appended to ``path`` (``.csv`` as CSV, anything else as JSON lines). Opening it reads
    what is there (a torn last line cut off) for the keys of the points done; the rows themselves
    are not kept in memory (a sweep may have millions): ``read_rows`` reads them again."""

    def __init__(self, path: str, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        self.csv = path.endswith(".csv")
        self._cut_torn_line()
        self.done: set[str] = set()
        self.kept = 0                                # rows there before this run
        for row in self.read_rows():
            self.done.add(row["point"])
            self.kept += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced = time.monotonic()
        if self.csv and os.fstat(self._fd).st_size == 0:
            self._write(_csv_line(columns))

    def _cut_torn_line(self) -> None:
        try:
            with open(self.path, "r+b") as handle:
                size = handle.seek(0, os.SEEK_END)
                tail = b""
                while size and b"\n" not in tail:   # back to the last newline
                    step = min(size, 1 << 16)
                    size -= step
                    handle.seek(size)
                    tail = handle.read(step) + tail
                end = size + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
                if end < handle.seek(0, os.SEEK_END):
                    handle.truncate(end)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise OutputError(f"{self.path}: cannot read it: {err.strerror or err}") from None

    def read_rows(self, limit: Optional[int] = None) -> Iterator[dict[str, Any]]:
        """The rows in the file (the first ``limit``), checked to be this sweep's."""
        try:
            handle = open(self.path, encoding="utf-8", errors="replace", newline="")
        except FileNotFoundError:
            return
        with handle:
            if self.csv:
                yield from self._csv_rows(handle, limit)
                return
            for number, line in enumerate(handle, 1):
                if limit is not None and number > limit:
                    return
                try:
                    row = json.loads(line)
                except ValueError:
                    raise OutputError(f"{self.path}:{number}: not a JSON row (choose another "
                                      f"--out)") from None
                self._check(row, number)
                yield row

    def _csv_rows(self, handle: Any, limit: Optional[int]) -> Iterator[dict[str, Any]]:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        if header != self.columns:
            raise OutputError(f"{self.path}:1: the columns are not this sweep's (choose another --out)")
        for number, cells in enumerate(reader, 1):
            if limit is not None and number > limit:
                return
            yield {c: _cell_in(v) for c, v in zip(self.columns, cells)}

    def _check(self, row: Any, number: int) -> None:
        if not isinstance(row, dict) or list(row) != self.columns:
            raise OutputError(f"{self.path}:{number}: a row of another sweep (its columns differ; "
                              f"choose another --out)")

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def append(self, row: dict[str, Any]) -> None:
        """One row, as one whole line in one write."""
        line = (_csv_line([row[c] for c in self.columns]) if self.csv
                else (json.dumps(row) + "\n").encode())
        self._write(line)
        self.done.add(row["point"])
        if time.monotonic() - self._synced >= FSYNC_EVERY:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def _cell_out(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _cell_in(text: str) -> Any:
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _csv_line(cells: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([_cell_out(c) for c in cells])
    return buffer.getvalue().encode()


def write_parquet(path: str, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """The Parquet file of ``rows`` (values that are not scalars as JSON text), atomically."""
    pyarrow = importlib.import_module("pyarrow")
    parquet = importlib.import_module("pyarrow.parquet")

    def cell(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, (list, dict)) else value

    data: dict[str, list[Any]] = {c: [] for c in columns}
    for row in rows:
        for c in columns:
            data[c].append(cell(row[c]))
    table = pyarrow.table({c: _column(v) for c, v in data.items()})
    temporary = f"{path}.tmp{os.getpid()}"
    parquet.write_table(table, temporary)
    os.replace(temporary, path)


def _column(values: list[Any]) -> Any:
    """A column pyarrow can type: mixed ints and words (``auto``) become text."""
    pyarrow = importlib.import_module("pyarrow")
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) > 1:
        values = [None if v is None else str(v) for v in values]
    if kinds == {int} and any(v is not None and v >= 1 << 63 for v in values):
        values = [None if v is None else str(v) for v in values]
    return pyarrow.array(values)


def open_rows(path: Optional[str], columns: list[str]) -> Optional[RowFile]:
    if path is None:
        return None
    check_format(path)
    return RowFile(journal_path(path), columns)
