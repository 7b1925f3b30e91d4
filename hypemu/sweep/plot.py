"""The heatmap of ``hypemu sweep --plot X Y -o FILE``: for each pair of values of two axes, the
share of the points there that came up ``ok``, the other axes aggregated. The only importer of
matplotlib in this package (the optional extra ``hypemu[plot]``).

Cells are the axis values in the sweep file's order (an axis is a list of chosen placements, not a
continuum), labelled as the summary shows them: sizes in binary units, addresses in hex. Each
cell gives its share as a number, and, where not all points are ok, the most common reason for
the others. Invalid points (combinations that are not a scenario) are left out of the share; a
cell with only those is blank and says so.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

from ..errors import InputError
from .spec import Axis, SweepSpec
from .summary import show_value

PLOT_MISSING = ("--plot draws with matplotlib, which is not installed: pip install 'hypemu[plot]' "
                "(the rows and the summary need nothing)")


def check_available() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(PLOT_MISSING) from None


def _grid(rows: Iterable[dict[str, Any]], x: Axis, y: Axis
          ) -> tuple[list[list[float]], list[list[str]], Counter[str]]:
    """Per cell: the share of valid points ok, its note; and the outcome counts of all rows. One
    pass, counts only (the rows may be millions)."""
    xs = {repr(v): i for i, v in enumerate(x.row_values)}
    ys = {repr(v): i for i, v in enumerate(y.row_values)}
    valid: Counter[tuple[int, int]] = Counter()
    ok: Counter[tuple[int, int]] = Counter()
    seen: set[tuple[int, int]] = set()
    others: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    for row in rows:
        cell = (ys[repr(row[y.path])], xs[repr(row[x.path])])
        outcomes[row["outcome"]] += 1
        seen.add(cell)
        if row["outcome"] == "invalid":
            continue
        valid[cell] += 1
        if row["outcome"] == "ok":
            ok[cell] += 1
        else:
            others[cell][row["reason_class"] or row["outcome"]] += 1
    share = [[float("nan")] * len(x.values) for _ in y.values]
    notes = [[""] * len(x.values) for _ in y.values]
    for cell in seen:
        j, i = cell
        if not valid[cell]:
            notes[j][i] = "invalid"
            continue
        share[j][i] = ok[cell] / valid[cell]
        notes[j][i] = f"{100 * ok[cell] // valid[cell]}%"
        if others[cell]:
            notes[j][i] += "\n" + others[cell].most_common(1)[0][0].replace("_", " ")
    return share, notes, outcomes


def heatmap(spec: SweepSpec, rows: Iterable[dict[str, Any]], x_path: str, y_path: str,
            out: str) -> None:
    """Draw the share of ok points over axes ``x_path`` and ``y_path`` to ``out`` (.png, .svg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = {a.path: a for a in spec.axes}
    x, y = axes[x_path], axes[y_path]
    share, notes, counts = _grid(rows, x, y)
    width = max(7.0, 1.25 * len(x.values) + 3.0)
    height = max(3.5, 0.7 * len(y.values) + 2.0)
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    image = ax.imshow(share, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(x.values)), [show_value(x, v) for v in x.row_values],
                  rotation=30 if len(x.values) > 4 else 0, ha="right" if len(x.values) > 4 else "center")
    ax.set_yticks(range(len(y.values)), [show_value(y, v) for v in y.row_values])
    ax.set_xlabel(x.path)
    ax.set_ylabel(y.path)
    small = len(x.values) * len(y.values) <= 300
    for j, line in enumerate(notes):
        for i, text in enumerate(line):
            if text and small:
                ax.text(i, j, text, ha="center", va="center", fontsize=7)
    others = [a.path for a in spec.axes if a.path not in (x_path, y_path)]
    ax.set_title(f"{spec.name}: share of points ok"
                 + (f"\n(all values of {', '.join(others)})" if others else ""), fontsize=10)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of points ok")
    legend = ", ".join(f"{o} {n}" for o, n in counts.most_common())
    fig.text(0.01, 0.01, f"{sum(counts.values())} points: {legend}. Cell: share ok of the valid points, the "
                         f"most common other outcome or reason", fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out)
    plt.close(fig)
