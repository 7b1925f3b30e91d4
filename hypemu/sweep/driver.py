"""One sweep from start to end: the points still to run (resume), the backend that runs them, and
the output file each row is appended to the moment it comes back."""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping, Optional, Union

from .output import RowFile, journal_path, open_rows, write_parquet
from .rows import columns
from .run import local_rows, todo
from .spec import SweepSpec, from_data, load_sweep
from .summary import Tally

SweepSource = Union[SweepSpec, Mapping[str, Any], str, "os.PathLike[str]"]


def as_spec(source: SweepSource) -> SweepSpec:
    if isinstance(source, SweepSpec):
        return source
    if isinstance(source, Mapping):
        return from_data(source)
    return load_sweep(os.fspath(source))


class Sweep:
    """A sweep bound to its output: ``rows()`` yields the rows already in the output (a resumed
    sweep), then each new row as it is written. ``jobs`` worker processes, or a Ray cluster at
    ``ray`` (an address or ``auto``). ``tally`` adds up the summary of every row seen (the
    output's included), so no row needs to stay in memory."""

    def __init__(self, spec: SweepSpec, out: Optional[str] = None, jobs: int = 1,
                 ray: Optional[str] = None) -> None:
        self.spec, self.out, self.jobs, self.ray = spec, out, jobs, ray
        self.file: Optional[RowFile] = open_rows(out, columns(spec))
        self.old = self.file.kept if self.file else 0      # rows in the output before this run
        self.todo = todo(spec, self.file.done if self.file else set())
        self.new = 0
        self.tally = Tally(spec)
        self._old_tallied = False

    @property
    def total(self) -> int:
        return self.old + len(self.todo)

    def _backend(self) -> Iterator[dict[str, Any]]:
        if self.ray is not None:
            from . import ray_backend   # imported on use: ray is an optional extra
            return ray_backend.ray_rows(self.spec, self.todo, self.ray)
        return local_rows(self.spec, self.todo, self.jobs)

    def old_rows(self) -> Iterator[dict[str, Any]]:
        """The rows the output held when the sweep was opened."""
        if self.file is None:
            return
        for row in self.file.read_rows(limit=self.old):
            if not self._old_tallied:
                self.tally.add(row)
            yield row
        self._old_tallied = True

    def new_rows(self) -> Iterator[dict[str, Any]]:
        """The rows of the points still to run, each written before it is yielded."""
        if not self._old_tallied:
            for _ in self.old_rows():
                pass
        try:
            for row in self._backend():
                if self.file is not None:
                    self.file.append(row)
                self.new += 1
                self.tally.add(row)
                yield row
        finally:
            self.close()

    def rows(self) -> Iterator[dict[str, Any]]:
        yield from self.old_rows()
        yield from self.new_rows()

    def all_rows(self) -> Iterator[dict[str, Any]]:
        """Every row in the output now (read again from the file)."""
        if self.out is None:
            raise ValueError("a sweep without an output keeps no rows")
        yield from RowFile(journal_path(self.out), columns(self.spec)).read_rows()

    def close(self) -> None:
        """Sync the output (and write the Parquet file from its journal)."""
        if self.file is None:
            return
        self.file.close()
        if self.out is not None and self.out.endswith(".parquet"):
            write_parquet(self.out, self.file.read_rows(), self.file.columns)
        self.file = None


def sweep(source: SweepSource, *, jobs: int = 1, out: Optional[str] = None,
          ray: Optional[str] = None) -> Iterator[dict[str, Any]]:
    """Run a sweep (a sweep file's path, its data as a mapping, or a ``SweepSpec``) and yield one
    row (a dict, the same columns as the output file) per point, as points finish (they run
    grouped by RAM layout; ``index`` gives the grid order); ``pandas.DataFrame(rows)`` makes
    a table of them. With ``out`` the rows are appended there too and a rerun resumes: the rows
    already there are yielded first, and only the missing points run."""
    return Sweep(as_spec(source), out, jobs, ray).rows()
