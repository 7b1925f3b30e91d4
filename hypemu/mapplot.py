"""The memory map as a picture (``hypemu map -o map.svg``): the physical address space in the middle,
the HYP VA spaces beside it (dual-step: boot on the left, runtime on the right), each mapping drawn as
a band from its VA range to its PA range, and a refused layout's collision hatched in red.

Why a segmented axis: the objects that matter are 4 KiB pages in address spaces of 4 GiB and more, so
each column is cut at every boundary it shows and each piece gets a height that grows with the log of
its size; the ticks carry the real addresses (hex) and the pieces their sizes (binary units).

The only module that imports matplotlib (an optional extra: ``pip install 'hypemu[plot]'``).
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import matplotlib

matplotlib.use("Agg")   # files only: never a window, whatever the environment says

from matplotlib import pyplot as plt             # noqa: E402
from matplotlib.axes import Axes                 # noqa: E402
from matplotlib.figure import Figure             # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

from .layout import FOUR_GIB                     # noqa: E402
from .memmap import BOOT, PHYS, RUNTIME, SINGLE, Collision, Mapping, MemoryMap, Region, size_text  # noqa: E402

COLORS = {"ram": "#e8f3e8", "hole": "#ffffff", "image": "#d7e3f4", "pl1": "#b9cbe6",
          "init_page": "#f6b26b", "init": "#e06c00", "text": "#8fb3e0", "data": "#a4c2f4",
          "bounce": "#f9cb9c", "stack": "#b4a7d6", "pgd": "#93c47d", "table": "#b6d7a8"}
MAP_COLORS = {"idmap": "#e06c00", "trampoline": "#cc0000"}
MAP_DEFAULT = "#3c78d8"
COLUMN_WIDTH = {"va": 0.7, "pa": 1.1}


def gid(*parts: str) -> str:
    """An SVG id for an element: ``kind:name`` with every other character made a dash."""
    return ":".join(re.sub(r"[^A-Za-z0-9_.]+", "-", p).strip("-") for p in parts)


def region_id(r: Region) -> str:
    """The SVG id of a physical region: its name and start (table pages share a name)."""
    return gid("phys", r.name, f"{r.start:#x}")


def mapping_id(m: Mapping) -> str:
    """The SVG id of a mapping's box in its VA column; its band is ``band:...`` alike."""
    return gid("map", m.space, m.name)


def collision_id(c: Collision) -> str:
    return gid("collision", c.space, c.first, c.second)


class Column:
    """One address space drawn as a segmented vertical axis from ``lo`` (top) to ``hi``."""

    def __init__(self, x: float, width: float, cuts: Iterable[int]):
        self.x, self.width = x, width
        self.cuts = sorted(set(cuts))
        self.ys = [0.0]
        for a, b in zip(self.cuts, self.cuts[1:]):
            self.ys.append(self.ys[-1] + 1.5 + 0.35 * max(0.0, math.log2(b - a) - 12))

    @property
    def height(self) -> float:
        return self.ys[-1]

    def y(self, addr: int) -> float:
        """The drawing position of ``addr`` (linear inside each piece)."""
        cuts = self.cuts
        if addr <= cuts[0]:
            return self.ys[0]
        for i in range(len(cuts) - 1):
            if addr <= cuts[i + 1]:
                frac = (addr - cuts[i]) / (cuts[i + 1] - cuts[i])
                return self.ys[i] + frac * (self.ys[i + 1] - self.ys[i])
        return self.ys[-1]

    def box(self, ax: Axes, start: int, end: int, color: str, ident: str, *,
            span: tuple[float, float] = (0.0, 1.0), label: str = "", label_at: float = 0.5,
            alpha: float = 1.0) -> None:
        """A rectangle for [start, end) over the fraction ``span`` of the column's width, its label
        at ``label_at`` of its height."""
        y0, y1 = self.y(start), self.y(end)
        x0, x1 = self.x + span[0] * self.width, self.x + span[1] * self.width
        rect = Rectangle((x0, y0), x1 - x0, max(y1 - y0, 0.25), facecolor=color,
                         edgecolor="#444444", linewidth=0.6, alpha=alpha)
        rect.set_gid(ident)
        ax.add_patch(rect)
        if label:
            ax.text(x0 + 0.03, y0 + label_at * (y1 - y0), label, fontsize=6, va="center",
                    ha="left", gid=ident + ":label")

    def ticks(self, ax: Axes, side: str, ident: str, digits: int) -> None:
        """Hex addresses at every cut, on ``side`` ('left' or 'right') of the column."""
        x = self.x - 0.04 if side == "left" else self.x + self.width + 0.04
        for addr in self.cuts:
            ax.text(x, self.y(addr), f"{addr:#0{digits + 2}x}", fontsize=5.5, family="monospace",
                    va="center", ha="right" if side == "left" else "left",
                    gid=gid(ident, "tick", f"{addr:#x}"))


def _va_cuts(mmap: MemoryMap, maps: list[Mapping]) -> list[int]:
    cuts = [0, FOUR_GIB]
    for m in maps:
        cuts += [m.va, m.va_end]
    for lo, hi in mmap.lowmem:
        cuts += [lo, hi]
    return cuts


def _pa_cuts(mmap: MemoryMap) -> list[int]:
    cuts = [0]
    for r in mmap.phys:
        cuts += [r.start, r.end]
    return cuts


LEAF_SPAN = (0.05, 0.8)
"""Where a leaf region or a mapping sits in its column; the strip on the right names containers."""


def _draw_phys(ax: Axes, col: Column, regions: list[Region]) -> None:
    ax.add_patch(Rectangle((col.x, col.y(col.cuts[0])), col.width, col.height, facecolor="#f4f4f4",
                           edgecolor="#999999", linewidth=0.5, gid="phys:space"))
    containers = {"ram": (0.0, 1.0, 0.95), "hole": (0.0, 1.0, 0.95), "image": (0.02, 0.9, 0.86)}
    for r in sorted(regions, key=lambda r: -r.size):
        ident = region_id(r)
        label = f"{r.name}  {size_text(r.size)}"
        if r.kind == "lowmem_end":
            y = col.y(r.start)
            ax.plot([col.x - 0.1, col.x + col.width + 0.1], [y, y], color="#6a1b9a", linewidth=1.2,
                    linestyle="--", gid=ident)
            ax.text(col.x + col.width / 2, y - 0.2, f"end of lowmem {r.start:#x}", fontsize=5.5,
                    ha="center", va="bottom", color="#6a1b9a", gid=ident + ":label")
        elif r.kind in containers:
            lo, hi, at = containers[r.kind]
            col.box(ax, r.start, r.end, COLORS[r.kind], ident, span=(lo, hi))
            y0 = col.y(r.start)
            ax.text(col.x + at * col.width, y0 + 0.2, label, fontsize=5.5, ha="center", va="top",
                    rotation=270, style="italic", gid=ident + ":label")
        elif r.kind == "init":   # inside its page: the upper part, narrower
            col.box(ax, r.start, r.end, COLORS["init"], ident, span=(0.12, 0.74), label=label)
        else:
            col.box(ax, r.start, r.end, COLORS.get(r.kind, "#cccccc"), ident, span=LEAF_SPAN,
                    label=label, label_at=0.8 if r.kind == "init_page" else 0.5)


def _lanes(maps: list[Mapping]) -> list[tuple[float, float]]:
    """Side-by-side spans for mappings that claim the same VAs (a collision shows both)."""
    spans = []
    lo, hi = LEAF_SPAN
    for m in maps:
        group = [o for o in maps if o.va < m.va_end and m.va < o.va_end]
        k, n = group.index(m), len(group)
        step = (hi - lo) / n
        spans.append((lo + k * step, lo + (k + 1) * step))
    return spans


def _draw_space(ax: Axes, col: Column, mmap: MemoryMap, space: str, maps: list[Mapping]) -> None:
    top = col.y(col.cuts[0])
    ax.add_patch(Rectangle((col.x, top), col.width, col.height, facecolor="#fbfbfb",
                           edgecolor="#999999", linewidth=0.5, gid=gid("va", space, "space")))
    for lo, hi in mmap.lowmem:
        ident = gid("va", space, "lowmem", f"{lo:#x}")
        col.box(ax, lo, hi, "#e3f2fd", ident)
        ax.text(col.x + 0.9 * col.width, col.y(lo) + 0.2, "lowmem (kernel linear map)",
                fontsize=5.5, ha="center", va="top", rotation=270, style="italic",
                gid=ident + ":label")
    if col.cuts[-1] > FOUR_GIB:
        col.box(ax, FOUR_GIB, col.cuts[-1], "#f4cccc", gid("va", space, "beyond-4GiB"),
                label="beyond the 32-bit VA space")
    for m, span in zip(maps, _lanes(maps)):
        col.box(ax, m.va, m.va_end, MAP_COLORS.get(m.name, MAP_DEFAULT), mapping_id(m),
                span=span, alpha=0.85,
                label=m.name if span[1] - span[0] < 0.7 else f"{m.name}  {size_text(m.size)}")


def _draw_band(ax: Axes, va_col: Column, pa_col: Column, m: Mapping) -> None:
    """The band from a mapping's VA range to its PA range."""
    left = va_col.x < pa_col.x
    xv = va_col.x + va_col.width * LEAF_SPAN[1] if left else va_col.x + va_col.width * LEAF_SPAN[0]
    xp = pa_col.x if left else pa_col.x + pa_col.width
    v0, v1 = va_col.y(m.va), va_col.y(m.va_end)
    p0, p1 = pa_col.y(m.pa), pa_col.y(m.pa + m.size)
    band = Polygon([(xv, v0), (xp, p0), (xp, p1), (xv, v1)], closed=True, alpha=0.35,
                   facecolor=MAP_COLORS.get(m.name, MAP_DEFAULT), edgecolor="none")
    band.set_gid(gid("band", m.space, m.name))
    ax.add_patch(band)


def _draw_collision(ax: Axes, col: Column, c: Collision) -> None:
    ident = collision_id(c)
    y0, y1 = col.y(c.start), col.y(c.end)
    rect = Rectangle((col.x - 0.05, y0 - 0.3), col.width + 0.1, max(y1 - y0, 0.25) + 0.6,
                     facecolor="none", edgecolor="#cc0000", hatch="////", linewidth=1.5)
    rect.set_gid(ident)
    ax.add_patch(rect)
    ax.text(col.x + col.width / 2, y1 + 0.5, "collision: " + c.detail, fontsize=6, color="#cc0000",
            ha="center", va="top", wrap=True, gid=ident + ":label")


def figure(mmap: MemoryMap) -> Figure:
    """The picture of ``mmap``, as a matplotlib Figure."""
    spaces = list(mmap.spaces)
    pa_digits = max(8, (max((r.end for r in mmap.phys), default=0).bit_length() + 3) // 4)
    x = {BOOT: 0.0, SINGLE: 0.0, "pa": 1.8, RUNTIME: 3.9}
    pa_col = Column(x["pa"], COLUMN_WIDTH["pa"], _pa_cuts(mmap))
    cols = {s: Column(x[s], COLUMN_WIDTH["va"], _va_cuts(mmap, mmap.spaces[s])) for s in spaces}
    height = max([pa_col.height] + [c.height for c in cols.values()])
    fig, ax = plt.subplots(figsize=(11, max(6.0, height * 0.17)))
    _draw_phys(ax, pa_col, mmap.phys)
    pa_col.ticks(ax, "left" if RUNTIME in cols else "right", "pa", pa_digits)
    for space, col in cols.items():
        _draw_space(ax, col, mmap, space, mmap.spaces[space])
        col.ticks(ax, "right" if space == RUNTIME else "left", gid("va", space), 8)
        for m in mmap.spaces[space]:
            _draw_band(ax, col, pa_col, m)
    for c in mmap.collisions:
        _draw_collision(ax, pa_col if c.space == PHYS else cols[c.space], c)
    heads = {BOOT: "boot HYP VA", RUNTIME: "runtime HYP VA", SINGLE: "HYP VA (one table)"}
    for space, col in [("pa", pa_col), *cols.items()]:
        ax.text(col.x + col.width / 2, -1.0, heads.get(space, "physical (PA)"), fontsize=9,
                ha="center", va="bottom", weight="bold", gid=gid("head", space))
    title = f"{mmap.name}: memory map ({mmap.design})"
    if mmap.refused:
        title += f"\nREFUSED (config_error): {mmap.refused}"
    ax.text(x["pa"] + COLUMN_WIDTH["pa"] / 2, height + 0.8,
            "not to scale: each column is cut at every boundary shown, and each piece's height grows "
            "with log2 of its size", fontsize=6, ha="center", va="top", color="#666666",
            gid="note:scale")
    ax.set_title(title, fontsize=9, color="#cc0000" if mmap.refused else "black", wrap=True)
    lefts = [c.x for c in cols.values()] + [pa_col.x]
    rights = [c.x + c.width for c in cols.values()] + [pa_col.x + pa_col.width]
    ax.set_xlim(min(lefts) - 0.9, max(rights) + 0.9)
    ax.set_ylim(height + 1.0, -2.0)   # low addresses at the top, as a memory map is read
    ax.axis("off")
    fig.tight_layout()
    return fig


def save(mmap: MemoryMap, path: str) -> None:
    """Write the picture to ``path``: SVG (text kept as text, elements with ids) or PNG."""
    if not path.lower().endswith((".svg", ".png")):
        raise ValueError(f"{path}: the picture must be a .svg or a .png file")
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "hypemu"}):
        fig = figure(mmap)
        try:
            fig.savefig(path, dpi=150, metadata={"Date": None} if path.endswith(".svg") else None)
        finally:
            plt.close(fig)
