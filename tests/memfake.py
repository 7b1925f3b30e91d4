"""A sparse dict-backed physical memory and a page allocator for table-building tests."""

from __future__ import annotations


class DictMem:
    """PhysMem over a dict of aligned 64-bit words; unwritten memory reads as zero."""

    def __init__(self) -> None:
        self.words: dict[int, int] = {}

    def read64(self, pa: int) -> int:
        assert pa % 8 == 0 and 0 <= pa < 1 << 40, f"bad descriptor read at {pa:#x}"
        return self.words.get(pa, 0)

    def write64(self, pa: int, value: int) -> None:
        assert pa % 8 == 0 and 0 <= pa < 1 << 40, f"bad write at {pa:#x}"
        assert 0 <= value < 1 << 64, f"value {value:#x} is not 64-bit"
        self.words[pa] = value

    def nonzero(self) -> dict[int, int]:
        """Every word that holds a non-zero value, by PA."""
        return {pa: v for pa, v in sorted(self.words.items()) if v}


class PageAllocator:
    """alloc_table() for map_range: hands out consecutive zeroed 4 KiB pages from ``base``."""

    def __init__(self, mem: DictMem, base: int) -> None:
        self.mem, self.next, self.allocated = mem, base, []

    def __call__(self) -> int:
        page = self.next
        self.next += 0x1000
        for pa in range(page, page + 0x1000, 8):
            self.mem.words.pop(pa, None)
        self.allocated.append(page)
        return page
