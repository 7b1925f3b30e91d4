"""The injector on its own, without a board: its phases, its table edits through a TableEditor,
and the descriptor fields it changes (hand-computed vectors)."""

from __future__ import annotations

from typing import Optional

import pytest

from hypemu import lpae
from hypemu.inject import Corrupt, InjectError, Injector, Remap, Skip, corrupted
from hypemu.loader import GuestImage, Region
from memfake import DictMem, PageAllocator

PGD, VA, PA = 0x10000, 0xC0000000, 0x80000000
LEAF = 0x0080_0000_8000_075F          # encode_page(PA, PAGE_HYP)


class FakeEditor:
    """A TableEditor over a dict memory holding one page mapped at VA."""

    def __init__(self) -> None:
        self.mem = DictMem()
        lpae.map_range(self.mem, PageAllocator(self.mem, 0x20000), PGD, VA, PA, 4096, lpae.PAGE_HYP)
        self.log: list[tuple] = []

    def read64(self, pa: int) -> int:
        return self.mem.read64(pa)

    def write64(self, pa: int, value: int) -> None:
        self.log.append(("write", pa, value))
        self.mem.write64(pa, value)

    def pgd(self, table: str) -> int:
        return PGD

    def hyp_tlbi(self, va: int) -> None:
        self.log.append(("tlbi", va))

    def record(self, kind: str, name: str, value: Optional[int] = None, pc: Optional[int] = None,
               detail: str = "") -> None:
        self.log.append(("event", name, pc))


def _leaf_pa(editor: FakeEditor) -> int:
    (pa,) = [pa for pa, v in editor.mem.nonzero().items() if v == LEAF]
    return pa


def test_the_page_under_test_is_pa_with_page_hyp():
    assert lpae.encode_page(PA, lpae.PAGE_HYP) == LEAF


@pytest.mark.parametrize("field, value, level, new", [
    ("valid", 0, 3, 0x0080_0000_8000_075E),
    ("af", 0, 3, 0x0080_0000_8000_035F),
    ("xn", 1, 3, 0x00C0_0000_8000_075F),
    ("ap", 3, 3, 0x0080_0000_8000_07DF),        # AP[2:1] = 0b11: bits[7:6]
    ("output", 0x1234_5000, 3, 0x0080_0000_1234_575F),
    ("output", 0x4000_0000, 1, 0x0080_0000_4000_075F),
])
def test_one_field_changes_and_nothing_else(field, value, level, new):
    assert corrupted(LEAF, level, field, value) == new


def test_an_invalid_descriptor_keeps_its_other_bits():
    assert corrupted(0x0080_0000_8000_075E, 3, "af", 0) == 0x0080_0000_8000_035E
    assert corrupted(0x0080_0000_8000_075E, 3, "valid", 1) == LEAF


@pytest.mark.parametrize("field, value, level, key, message", [
    ("ap", 4, 3, "corrupt.value", "AP.2:1. is 2 bits"),
    ("output", 0x8000_1000, 2, "corrupt.value", "aligned to the mapping's size .0x200000."),
    ("output", 1 << 40, 3, "corrupt.value", "40-bit PA"),
    ("pxn", 1, 3, "corrupt.field", "unknown field"),
])
def test_a_field_value_that_does_not_fit_is_refused(field, value, level, key, message):
    with pytest.raises(InjectError, match=message) as info:
        corrupted(LEAF, level, field, value)
    assert info.value.key == key


def test_the_phases_apply_each_injection_at_its_time():
    editor = FakeEditor()
    leaf = _leaf_pa(editor)
    injector = Injector([Remap("runtime", VA, 0x9000_0000, at=1), Corrupt("runtime", VA, "xn", 1),
                         Remap("runtime", VA, 0x9100_0000, bbm=False, at=0)])
    steps: list[str] = []
    injector.after_tables(editor)
    assert editor.log == [("write", leaf, LEAF | 1 << 54), ("event", "corrupt", None)]
    editor.log.clear()
    injector.before_step(0, editor, lambda: steps.append("new step"))
    xn_leaf = LEAF | 1 << 54
    assert editor.log == [("event", "remap", None), ("write", leaf, xn_leaf - PA + 0x9100_0000),
                          ("tlbi", VA)]                           # no break: make, then invalidate
    editor.log.clear()
    injector.before_step(1, editor, lambda: steps.append("new step"))
    assert editor.log == [("event", "remap", None), ("write", leaf, 0), ("tlbi", VA),
                          ("write", leaf, xn_leaf - PA + 0x9000_0000)]   # break, invalidate, make
    assert steps == ["new step", "new step"]
    assert [r["kind"] for r in injector.records] == ["corrupt", "remap", "remap"]
    assert [r.get("at") for r in injector.records] == [None, 0, 1]


def test_an_error_names_the_injection_it_came_from():
    injector = Injector([Corrupt("runtime", VA, "xn", 1), Corrupt("boot", 0x40000000, "af", 0)])
    with pytest.raises(InjectError, match="not mapped in the boot table") as info:
        injector.after_tables(FakeEditor())
    assert (info.value.index, info.value.key) == (1, "corrupt.va")


def _region(name: str, words: list[int], base: int, symbols: dict[str, int]) -> Region:
    code = b"".join(w.to_bytes(4, "little") for w in words)
    return Region(name, code, base, base, symbols, frozenset(symbols), f"{name}.S")


DSB, ISB, MOV = 0xF57FF04F, 0xF57FF06F, 0xE1A00000


def test_patching_code_nops_the_named_instructions_and_logs_once_the_board_exists():
    image = GuestImage(pl1=_region("pl1", [DSB], 0x1000, {}), stub=_region("stub", [DSB], 0x1100, {}),
                       init=_region("init", [MOV, DSB, ISB], 0x2000, {"go": 0x2004}),
                       runtime=_region("runtime", [DSB, MOV], 0xC0003000, {"fn": 0xC0003004}))
    injector = Injector([Skip(mnemonic="DSB"), Skip(symbol="go", offset=4)])
    patched = injector.patch_code(image)
    nop = (0xE320F000).to_bytes(4, "little")
    assert patched.init.code == MOV.to_bytes(4, "little") + nop + nop
    assert patched.runtime.code == nop + MOV.to_bytes(4, "little")
    assert patched.pl1 == image.pl1 and patched.stub == image.stub     # not init or runtime code
    assert injector.records == [{"kind": "skip", "what": "DSB", "addresses": [0x2004, 0xC0003000]},
                                {"kind": "skip", "what": "go+0x4", "addresses": [0x2008]}]
    editor = FakeEditor()
    injector.after_tables(editor)
    assert editor.log == [("event", "skip", 0x2004), ("event", "skip", 0x2008)]


@pytest.mark.parametrize("skip, key, message", [
    (Skip(mnemonic="isb"), "skip", "no 'isb' instruction"),
    (Skip(symbol="nowhere"), "skip.symbol", "no symbol 'nowhere'"),
    (Skip(symbol="fn", offset=4), "skip.offset", r"fn\+0x4 is outside the runtime code"),
])
def test_a_skip_that_names_nothing_is_refused(skip, key, message):
    image = GuestImage(pl1=_region("pl1", [ISB], 0x1000, {}), stub=_region("stub", [ISB], 0x1100, {}),
                       init=_region("init", [MOV], 0x2000, {}),
                       runtime=_region("runtime", [MOV, MOV], 0xC0003000, {"fn": 0xC0003004}))
    with pytest.raises(InjectError, match=message) as info:
        Injector([skip]).patch_code(image)
    assert (info.value.index, info.value.key) == (0, key)


def test_each_skip_finds_its_instructions_in_the_code_as_linked():
    image = GuestImage(pl1=_region("pl1", [MOV], 0x1000, {}), stub=_region("stub", [MOV], 0x1100, {}),
                       init=_region("init", [DSB, ISB], 0x2000, {"go": 0x2000}),
                       runtime=_region("runtime", [MOV], 0xC0003000, {}))
    injector = Injector([Skip(symbol="go"), Skip(mnemonic="dsb"), Skip(mnemonic="isb")])
    patched = injector.patch_code(image)
    assert patched.init.code == (0xE320F000).to_bytes(4, "little") * 2
    assert [r["addresses"] for r in injector.records] == [[0x2000], [0x2000], [0x2004]]
