"""The HTML report's frontier figure holds every element it promises, at the right coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboards.frontier_section import frontier_figure
from sweeper.tables.frontier import frontier
from sweeper.tables.robustness_lines import zero_shot_line


def _trials() -> pd.DataFrame:
    """Two lr configurations x 2 seeds with a 3-point WiSE-FT curve, and one FAILED trial."""
    rows = []
    for lr, base in ((1e-3, 0.80), (1e-4, 0.70)):
        for seed in (0, 1):
            row = {"method": "ft", "lr": lr, "seed": seed, "status": "FINISHED", "best_epoch": 1.0}
            row |= {"id/acc": base + 0.01 * seed, "ood/avg_acc": 1.2 - base + 0.01 * seed}
            row |= {"zeroshot/id/acc": 0.55, "zeroshot/ood/avg_acc": 0.46}
            for alpha, w in (("0.0", 0.0), ("0.5", 0.5), ("1.0", 1.0)):
                row[f"wise/{alpha}/id/acc"] = 0.55 + w * (row["id/acc"] - 0.55)
                row[f"wise/{alpha}/ood/avg_acc"] = 0.46 + w * (row["ood/avg_acc"] - 0.46) + 0.1 * w * (1 - w)
            rows.append(row)
    rows.append({"method": "ft", "lr": 1e-2, "seed": 0, "status": "FAILED", "id/acc": 0.3, "ood/avg_acc": 0.3})
    return pd.DataFrame(rows)


def _artists(figure) -> dict[str, object]:
    ax = figure.axes[0]
    return {a.get_gid(): a for a in [*ax.collections, *ax.lines] if a.get_gid()}


def test_figure_has_trials_front_zero_shot_line_and_curves() -> None:
    df = _trials()
    line = zero_shot_line(0.55, 0.46, 0.1)
    result = frontier(df, ["id/acc", "ood/avg_acc"], labels=["lr"], line=line)
    figure = frontier_figure(df, result)
    art = _artists(figure)
    assert {"trials", "unfinished", "front", "zero-shot", "line", "wise:lr=0.001", "wise:lr=0.0001"} <= set(art)
    assert len(art["trials"].get_offsets()) == 4 and len(art["unfinished"].get_offsets()) == 1
    assert art["zero-shot"].get_offsets().tolist() == [pytest.approx([0.55, 0.46])]
    # The front is drawn through its means, sorted by ID accuracy.
    front_x = np.asarray(art["front"].get_xdata(), dtype=float)
    assert front_x.tolist() == sorted(result.front["id/acc mean"].tolist()) and len(front_x) == len(result.front)
    # Each curve: its three alphas, mean over seeds, from zero-shot (α=0) outwards.
    curve = art["wise:lr=0.001"]
    assert np.asarray(curve.get_xdata(), dtype=float).tolist() == pytest.approx([0.55, 0.6775, 0.805])
    # The line is the zero-shot line: it passes through the zero-shot point.
    xs, ys = (np.asarray(v, dtype=float) for v in art["line"].get_data())
    assert np.interp(0.55, xs, ys) == pytest.approx(0.46, abs=1e-6)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts.count("α=0.5") == 2  # every alpha of both curves is marked


def test_figure_without_a_line_or_curves() -> None:
    df = _trials().drop(columns=[c for c in _trials().columns if c.startswith("wise/")])
    art = _artists(frontier_figure(df, frontier(df, ["id/acc", "ood/avg_acc"], labels=["lr"])))
    assert "line" not in art and not any(gid.startswith("wise:") for gid in art)
    assert {"trials", "front", "zero-shot"} <= set(art)
