"""Descriptive statistics of an aggregated dataset: counts, conflict, disagreement matrix."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.schema import ratings_dict


def rating_gaps(table: pa.Table) -> tuple[list[str], np.ndarray]:
    """(aspects, rows × aspects matrix of chosen − rejected ground-truth ratings; NaN if absent)."""
    if not {"chosen_ratings", "rejected_ratings"} <= set(table.column_names):
        return [], np.zeros((table.num_rows, 0))  # a gap needs both sides
    cr = [ratings_dict(v) or {} for v in table["chosen_ratings"].to_pylist()]
    rr = [ratings_dict(v) or {} for v in table["rejected_ratings"].to_pylist()]
    aspects = sorted({k for d in cr for k in d})
    g = np.full((table.num_rows, len(aspects)), np.nan)
    for i, (c, r) in enumerate(zip(cr, rr)):
        for j, a in enumerate(aspects):
            if a in c and a in r:
                g[i, j] = c[a] - r[a]
    return aspects, g


def disagreement_matrix(table: pa.Table) -> dict[str, dict[str, float]]:
    """Share of pairs on which aspects a and b prefer different responses (paper Fig. 1 / B.1),
    over pairs that neither aspect ties."""
    aspects, g = rating_gaps(table)
    s = np.sign(g)
    out: dict[str, dict[str, float]] = {}
    for i, a in enumerate(aspects):
        out[a] = {}
        for j, b in enumerate(aspects):
            m = (s[:, i] != 0) & (s[:, j] != 0) & ~np.isnan(s[:, i]) & ~np.isnan(s[:, j])
            out[a][b] = float(np.mean(s[m, i] != s[m, j])) if m.any() else float("nan")
    return out


def conflict_flags(table: pa.Table, holistic: str = "mean") -> np.ndarray:
    """+1 pair agrees with the holistic preference, −1 in conflict (Def. 3.3), 0 tie, NaN unknown."""
    if holistic == "overall":
        if not {"chosen_overall", "rejected_overall"} <= set(table.column_names):
            return np.full(table.num_rows, np.nan)
        c = np.asarray(table["chosen_overall"].to_numpy(zero_copy_only=False), dtype=float)
        r = np.asarray(table["rejected_overall"].to_numpy(zero_copy_only=False), dtype=float)
        return np.sign(c - r)
    aspects, g = rating_gaps(table)
    if not aspects:
        return np.full(table.num_rows, np.nan)
    with np.errstate(invalid="ignore"):
        return np.sign(np.nanmean(g, axis=1)) if g.size else np.full(table.num_rows, np.nan)


def describe(table: pa.Table) -> dict:
    """Counts per aspect, length statistics and (with ground truth) the conflict rate."""
    counts = {d["values"]: d["counts"] for d in pc.value_counts(table["aspect"]).to_pylist()}
    lc = np.asarray(pc.utf8_length(table["chosen"]).to_numpy(zero_copy_only=False), dtype=float)
    lr = np.asarray(pc.utf8_length(table["rejected"]).to_numpy(zero_copy_only=False), dtype=float)
    out = {"rows": table.num_rows, "aspects": dict(sorted(counts.items())),
           "chosen_chars_mean": float(lc.mean()) if len(lc) else 0.0,
           "rejected_chars_mean": float(lr.mean()) if len(lr) else 0.0,
           "chosen_longer_share": float(np.mean(lc >= lr)) if len(lc) else 0.0}
    flags = conflict_flags(table)
    known = ~np.isnan(flags)
    if known.any():
        out["conflict_rate"] = float(np.mean(flags[known] < 0))
        out["holistic_ties"] = int(np.sum(flags[known] == 0))
        out["disagreement"] = disagreement_matrix(table)
    return out
