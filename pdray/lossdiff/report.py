"""The small report of a LossDiff-IRM selection (the selection itself is written by
:func:`pdray.selection.write_selection`, the ``pdray select`` contract).

``write_report``: ``report.json`` (keep rate, score statistics, the comparison of
:func:`pdray.lossdiff.hybrid.compare`) and ``hist_lossdiff.png``, ``hist_irm.png``,
``scatter.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.io import write_json
from pdray.lossdiff.logprob_scores import LossDiffSelection


def _stats(v: np.ndarray) -> dict:
    if not len(v):
        return {}
    q = np.quantile(v, [0.0, 0.2, 0.5, 0.8, 1.0])
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(q[0]),
            "p20": float(q[1]), "median": float(q[2]), "p80": float(q[3]), "max": float(q[4])}


def _plots(ld, ir, mask, bounds, d: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for name, v in (("lossdiff", ld), ("irm", ir)):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.hist(v, bins=min(40, max(5, len(v) // 3)), color="#4a7ab5")
        for b in bounds.get(name) or []:
            ax.axvline(b, color="#c0392b", ls="--", lw=1)
        ax.set_xlabel(name)
        ax.set_ylabel("pairs")
        ax.set_title(f"{name} (band in red)")
        fig.tight_layout()
        fig.savefig(d / f"hist_{name}.png", dpi=90)
        plt.close(fig)
        files.append(f"hist_{name}.png")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(ld[~mask], ir[~mask], s=8, c="#999999", label="dropped")
    ax.scatter(ld[mask], ir[mask], s=8, c="#27ae60", label="kept")
    ax.set_xlabel("LossDiff")
    ax.set_ylabel("IRM")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(d / "scatter.png", dpi=90)
    plt.close(fig)
    return files + ["scatter.png"]


def write_report(scores: pa.Table, sel: LossDiffSelection, output_dir: str | Path, *,
                 comparison: dict | None = None, failures: int = 0) -> dict:
    """Write ``report.json`` and the PNG plots; return the report dict."""
    d = Path(output_dir)
    d.mkdir(parents=True, exist_ok=True)
    ld = scores["lossdiff"].to_numpy(zero_copy_only=False).astype(np.float64)
    ir = scores["irm"].to_numpy(zero_copy_only=False).astype(np.float64)
    plots = _plots(ld, ir, sel.mask, sel.bounds, d) if len(ld) else []
    rep = {"rows": scores.num_rows, "selected": len(sel.selected_ids),
           "keep_rate": sel.keep_rate, "failed_rows": failures, "bounds": sel.bounds,
           "lossdiff": _stats(ld), "irm": _stats(ir),
           "corr_lossdiff_irm": float(np.corrcoef(ld, ir)[0, 1]) if len(ld) > 2 else None,
           "plots": plots}
    if comparison is not None:
        rep["comparison"] = {k: v for k, v in comparison.items() if k != "selected_ids"}
    write_json(rep, d / "report.json")
    return rep
