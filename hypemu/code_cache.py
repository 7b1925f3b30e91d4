"""Which of Unicorn's translated code may survive a host write: translations made from bytes
that changed are removed, the rest are kept (across loads, and across a pooled engine's boards).

Why: a host write (``uc_mem_write``, a pooled engine's zeroing, a template mapping) does not
invalidate the code Unicorn translated from the bytes it overwrites, and flushing the whole code
cache at every load made each sweep point retranslate every block it ran (a third of its cost).

The facts this rests on (Unicorn 2.1, QEMU 5's code cache): Unicorn translates code only from a
page whose soft-TLB entry grants execute, and every entry comes from the model through the fill
hook (``granted``); a guest store through an entry that grants execute removes the translations
it overlaps in Unicorn itself (through one that does not, only the first store does: ``blind``);
a soft-TLB flush (``epoch_end``) also empties the cache of recent jumps, so the first execution
from a page after it looks the page up through the soft TLB, that is through a fill; a block of
ARM code never crosses a page, one of Thumb code only by its first instruction, into the next
page's first two bytes.

Two ways to keep the invariant "a translation that can run matches the bytes it came from":
- eager (every engine): before the first host write since the last run to a page that may hold
  translations, its bytes are kept (``before_write``: every host write of the engine comes
  here); before the next run (``settle``) the translations covering a byte that now differs are
  removed (``changed_spans``, in chunks, by RAM address: ``engine_ram``), or all of them where
  the engine cannot remove a range.
- lazy (a pooled engine, ``engine_pool``): at the end of a soft-TLB epoch the bytes of each page
  granted execute in it are kept as its translations' basis; a host write to such a page then
  needs nothing until a fill grants execute on it again, which compares the page with its basis
  first (from inside the fill: safe because Unicorn asks for a page before it searches its cache
  for a block in it). The exception is a page's first two bytes, where a Thumb block of the page
  before may end: Unicorn asks for that page while it compares the block, so a host write to a
  dormant page has those bytes checked before the next run instead (``EDGE``), and the check in
  the fill leaves them out. So code that comes back
  to a place it ran from before (the next sweep point of the same layout) runs without being
  translated again.
A change of hooks compiled into the code still flushes everything (``flush_all``).
"""

from __future__ import annotations

from typing import Callable, Iterable

PAGE_SHIFT = 12
CHUNK = 128       # bytes compared at a time: a changed byte costs the code translated from its chunk
EDGE = 2          # bytes of a page a Thumb block of the page before may end in (its first
                  # instruction, 32-bit, crossing: QEMU ends a Thumb block at a page's end else)
MAX_BASIS = 4096  # pages whose bytes the lazy way keeps (16 MiB); beyond: flush and start again

Spans = list[tuple[int, int]]
"""Byte ranges ``[begin, end)`` inside a page."""
Drop = Callable[[list[tuple[int, Spans]]], bool]


def changed_spans(old: bytes, new: bytes) -> Spans:
    """The ``CHUNK``-aligned byte ranges where two pages differ (adjacent chunks merged). Slices
    compared in C: a finer search in Python cost more than the code it saved."""
    spans: Spans = []
    for begin in range(0, len(old), CHUNK):
        end = begin + CHUNK
        if old[begin:end] != new[begin:end]:
            if spans and spans[-1][1] == begin:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((begin, end))
    return spans


class CodeCache:
    """The bookkeeping for one engine. ``read_page(page)``: the bytes of physical page number
    ``page`` now; ``drop(changes)``: remove the translations that overlap the byte ranges of each
    ``(page, spans)``, or return False when it cannot (``Engine``); ``lazy`` only where it always
    can; ``flush()``: remove every translation."""

    def __init__(self, read_page: Callable[[int], bytes], drop: Drop, flush: Callable[[], None],
                 lazy: bool = False) -> None:
        self._read_page, self._drop, self._flush, self.lazy = read_page, drop, flush, lazy
        self.live: set[int] = set()          # pages granted execute in this soft-TLB epoch
        self._dormant: set[int] = set()      # eager: pages granted in earlier epochs
        self._basis: dict[int, bytes] = {}   # lazy: page -> the bytes its translations match
        self._kept: dict[int, bytes] = {}    # live page -> its bytes before the first host
        self._edges: set[int] = set()        # write since the last run; lazy: written pages
        self._blind: set[int] = set()        # pages a guest may store to unseen (see blind)
        self._write_only: set[int] = set()   # pages granted a store without execute, this epoch
        self._flush_due = False              # a full flush is due
        self.dropped = self.flushes = 0      # ranges removed, full flushes done (for tests)
        self.tainted = False                 # see blind

    def flush_all(self) -> None:
        """Every translation goes before the next run (hooks compiled into the code changed)."""
        self._flush_due = True

    def granted(self, page: int) -> None:
        """A fill granted execute on ``page``, not live until now (the engine checks that). Its
        first ``EDGE`` bytes were checked before the run (``settle``) and are left out here: a
        Thumb block of the page before may end in them, and Unicorn may be asking for this page
        while it compares that block (removing it then would not stop it from running)."""
        self.live.add(page)
        if page in self._write_only:    # code from a page stored to through another entry
            self._blind.add(page)
            self.tainted = True
        basis = self._basis.pop(page, None) if self.lazy else None
        if basis is not None:
            now = self._read_page(page)
            if now != basis:
                spans = changed_spans(basis, now)
                if spans[0][0] == 0 and now[:EDGE] == basis[:EDGE]:
                    spans[0] = (EDGE, spans[0][1])   # (no host writes during a run: always so)
                self._remove([(page, spans)])

    def blind(self, page: int) -> None:
        """A fill granted a store to ``page`` without execute. Unicorn then removes the code a
        store overlaps only at the first store through that entry (later ones leave it stale:
        an emulator artifact, which the architecture allows without I-cache maintenance), so the
        code translated from such a page is all removed before the next run. What runs until
        then depends on which code Unicorn holds, so the board is ``tainted``: on a reused
        engine, its result may differ from a fresh engine's (``result.run`` runs it again on a
        fresh one; ``engine_pool`` flushes all code before the next board); so is one whose page
        gets execute after such an entry (``granted``). No layout of the shipped scenarios maps a
        page writable without execute."""
        self._write_only.add(page)
        if page in self.live or page in self._dormant or page in self._basis:
            self._blind.add(page)
            self.tainted = True

    def epoch_end(self) -> None:
        """Unicorn's soft TLB was flushed: the live pages become dormant."""
        if self.lazy:
            basis, read, kept = self._basis, self._read_page, self._kept
            for page in self.live:   # a write not settled yet: the translations match the old bytes
                old = kept.pop(page, None)
                basis[page] = read(page) if old is None else old
                if old is not None:
                    self._edges.add(page)
            if len(basis) > MAX_BASIS:
                self.flush_all()
        else:
            self._dormant |= self.live
        self.live.clear()
        self._write_only.clear()   # their entries are gone: a store through one fills again

    def before_write(self, pa: int, size: int) -> None:
        """A host is about to write ``size`` bytes at ``pa``."""
        if not size or not (self.live or self._dormant or self._basis):
            return
        first, last = pa >> PAGE_SHIFT, pa + size - 1 >> PAGE_SHIFT
        if last - first < 16:
            self.before_write_pages(range(first, last + 1))
        else:   # a long span (the image poison, up to 16 MiB): only the pages that held code
            self.before_write_pages([p for p in self.live | self._dormant | self._basis.keys()
                                     if first <= p <= last])

    def before_zeroing(self) -> None:
        """A host is about to rewrite every page (a pooled engine's reset)."""
        self.before_write_pages(self.live | self._dormant | self._basis.keys())

    def before_write_pages(self, pages: Iterable[int]) -> None:
        """As ``before_write``, for whole pages."""
        for page in pages:
            if page in self.live or page in self._dormant:
                if page not in self._kept:
                    self._kept[page] = self._read_page(page)
            elif page in self._basis:
                self._edges.add(page)

    def settle(self) -> None:
        """Before a run: remove the translations of every byte a host changed where they can
        run without a fill first, the first ``EDGE`` bytes of every page a host wrote since its
        basis (lazy), and all those of the pages a guest may have stored to unseen (``blind``)."""
        if self._flush_due:
            self._flush_due = False
            self._kept.clear()
            self._basis.clear()
            self._edges.clear()
            self._blind.clear()
            self._write_only.clear()
            self._dormant.clear()   # (live stays: its pages still have soft-TLB entries)
            self._flush()
            self.flushes += 1
            return
        if not (self._kept or self._edges or self._blind):
            return
        changes: list[tuple[int, Spans]] = []
        for page in self._blind:
            changes.append((page, [(0, 1 << PAGE_SHIFT)]))
            self._kept.pop(page, None)
            self._basis.pop(page, None)
            self._edges.discard(page)
        self._blind.clear()
        for page, kept in self._kept.items():
            now = self._read_page(page)
            if now != kept:
                changes.append((page, changed_spans(kept, now)))
        self._kept.clear()
        for page in self._edges:
            old = self._basis.get(page)
            now = self._read_page(page)
            if old is not None and now[:EDGE] != old[:EDGE]:
                changes.append((page, [(0, EDGE)]))
                self._basis[page] = now[:EDGE] + old[EDGE:]
        self._edges.clear()
        if changes:
            self._remove(changes)

    def _remove(self, changes: list[tuple[int, Spans]]) -> None:
        if self._drop(changes):
            self.dropped += sum(len(spans) for page, spans in changes)
            return
        if self.lazy:
            raise RuntimeError("internal: a lazy code cache could not remove translations")
        self._flush_due = True
        self.settle()

    def stop_lazy(self) -> None:
        """Keep translations the eager way from now on: Thumb code was declared. (The lazy way
        is kept safe for a Thumb block crossing into a page by its first-chunk rule; a board
        that declares Thumb code gets the way that rests on fewer facts.)"""
        if self.lazy:
            self.lazy = False
            self.flush_all()
