"""PD × LossDiff-IRM compared: each alone and the two hybrids, on one scores table.

PD selection (paper Eq. 10, 15) is data-dependent: it needs aspect reward models. LossDiff-IRM
(METHOD.md, "Second seed") is model-dependent: it needs the policy and reference model. Two
combinations exist, as the ``pd_irm`` selector (``combine``); their math is
:mod:`pdray.selection.band`'s, used here for the comparison report of ``pdray lossdiff
select``:

- ``intersect``: the λ·|D| pairs of most negative PD (Eq. 10) ∩ the middle IRM band (step 4);
- ``rank_sum``: rank pairs by PD (ascending) and by |IRM − median IRM| (ascending, "middle of
  the band" first); keep the λ·|D| pairs with the smallest rank sum, ties broken by ``id``.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from pdray.errors import DataError
from pdray.report.metrics import consensus, holistic_agreement
from pdray.selection import band as B
from pdray.selection import math as M
from pdray.selection import ranking as R
from pdray.selection.config import BAND


def align_pd(scores: pa.Table, pd_table: pa.Table) -> np.ndarray:
    """PD values (column ``pd``) in the row order of ``scores`` (matched on ``id``)."""
    if "pd" not in pd_table.column_names:
        raise DataError("PD table has no pd column", field="pd")
    lut = dict(zip(pd_table["id"].to_pylist(), pd_table["pd"].to_pylist()))
    out = np.empty(scores.num_rows)
    for i, k in enumerate(scores["id"].to_pylist()):
        if k not in lut or lut[k] is None:
            raise DataError(f"id {k!r} has no PD value", row=i, field="pd")
        out[i] = lut[k]
    return out


def compare(scores: pa.Table, pd=None, pairs: pa.Table | None = None, *, budget: float = 0.3,
            low: float = BAND[0], high: float = BAND[1]) -> dict:
    """Keep rate, consensus precision (CP) / conflict rate (Def. 3.3, when ``pairs`` carry
    ground-truth ratings) and Jaccard overlaps of: LossDiff band, IRM band, LossDiff-IRM, and —
    when PD is given (array in ``scores`` order or a table with ``id``, ``pd``) — PD alone and the
    two hybrids."""
    ids = np.asarray(scores["id"].to_pylist(), dtype=object)
    ld = scores["lossdiff"].to_numpy(zero_copy_only=False).astype(np.float64)
    ir = scores["irm"].to_numpy(zero_copy_only=False).astype(np.float64)
    masks = {"lossdiff_band": B.percentile_band(ld, low, high),
             "irm_band": B.percentile_band(ir, low, high),
             "lossdiff_irm": B.band_intersection([ld, ir], low, high)}
    if pd is not None:
        pdv = align_pd(scores, pd) if isinstance(pd, pa.Table) else np.asarray(pd, np.float64)
        k = M.budget_count(len(ids), budget)
        masks["pd"] = np.zeros(len(ids), dtype=bool)
        masks["pd"][R.top_lowest(pdv, ids, k)] = True
        masks["pd_irm"] = B.pd_irm_intersect(pdv, ir, ids, k, low, high)
        keep, _ = B.pd_irm_rank_sum(pdv, ir, ids, k)
        masks["pd_irm_rank_sum"] = np.zeros(len(ids), dtype=bool)
        masks["pd_irm_rank_sum"][keep] = True
    sel = {k: sorted(ids[m].tolist()) for k, m in masks.items()}
    agree = index = None
    if pairs is not None:
        agree = holistic_agreement(pairs)
        index = {v: i for i, v in enumerate(pairs["id"].to_pylist())}
    out: dict = {"n": len(ids), "budget": budget, "band": [low, high], "strategies": {},
                 "overlap": {}}
    if agree is not None:
        cp, cr = consensus(ids.tolist(), pairs, agree, index)
        out["all"] = {"cp": cp, "conflict": cr}
    for k, kept in sel.items():
        row = {"kept": len(kept), "keep_rate": len(kept) / max(len(ids), 1)}
        if agree is not None:
            row["cp"], row["conflict"] = consensus(kept, pairs, agree, index)
        out["strategies"][k] = row
    names = list(sel)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            sa, sb = set(sel[a]), set(sel[b])
            out["overlap"][f"{a}|{b}"] = len(sa & sb) / len(sa | sb) if sa | sb else math.nan
    out["selected_ids"] = sel
    return out


def format_comparison(cmp: dict) -> str:
    """A plain-text table of :func:`compare`'s result."""
    lines = [f"{'strategy':<18} {'kept':>6} {'keep':>7} {'CP':>7} {'conflict':>9}"]
    rows = dict(cmp["strategies"])
    if "all" in cmp:
        rows = {"all": {"kept": cmp["n"], "keep_rate": 1.0, **cmp["all"]}, **rows}
    for k, m in rows.items():
        cp = f"{m['cp']:.3f}" if m.get("cp") is not None and not math.isnan(m["cp"]) else "-"
        cr = (f"{m['conflict']:.3f}" if m.get("conflict") is not None
              and not math.isnan(m["conflict"]) else "-")
        lines.append(f"{k:<18} {m['kept']:>6} {m['keep_rate']:>7.1%} {cp:>7} {cr:>9}")
    return "\n".join(lines)
