"""What assembling yields: a `Program` (bytes at `base`, label addresses, globals), or an
`AsmError` located at `file:line`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

from ..errors import InputError


class AsmError(InputError):
    """A problem in the user's source, located at `file:line`."""

    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


class _FrozenMap(Mapping[str, int]):
    """A read-only, picklable name -> address mapping."""

    def __init__(self, items: Mapping[str, int]):
        self._items = dict(items)

    def __getitem__(self, key: str) -> int:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k!r}: {v:#x}' for k, v in self._items.items())}}}"


def label_address(symbols: Mapping[str, int], name: str, filename: str) -> int:
    """The address of label ``name`` in ``symbols`` (KeyError naming ``filename`` and its labels):
    one lookup for assembled programs and the guest image's regions alike."""
    try:
        return symbols[name]
    except KeyError:
        raise KeyError(f"{filename}: no label {name!r} (labels: "
                       f"{', '.join(sorted(symbols)) or 'none'})") from None


@dataclass(frozen=True)
class Section:
    """Where one section of the source was placed: ``kind`` is text, data or bss."""

    name: str
    kind: str
    address: int
    size: int


@dataclass(frozen=True)
class Program:
    """Assembled code: `code` starts at `base`; `symbols` maps every user label to its address.
    `code` holds the sections one after another (`sections`: text, then data, then bss)."""

    code: bytes
    base: int
    symbols: Mapping[str, int]
    globals: frozenset[str]
    filename: str
    thumb: bool = False       # Thumb-2 code: enter it with an odd (interworking) address
    sections: tuple[Section, ...] = ()

    @property
    def text_size(self) -> int:
        """Bytes from `base` to the end of the last text section: what is code (the rest is data)."""
        texts = [s.address + s.size for s in self.sections if s.kind == "text"]
        return (max(texts) - self.base) if texts and len(texts) < len(self.sections) else len(
            self.code)

    def address(self, name: str) -> int:
        return label_address(self.symbols, name, self.filename)

    @property
    def end(self) -> int:
        return self.base + len(self.code)
