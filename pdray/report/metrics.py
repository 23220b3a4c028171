"""Selection-quality metrics: consensus precision, conflict rate, Δlen, overlaps, budget curve."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from pdray.data.stats import conflict_flags as holistic_agreement
from pdray.length_modes import LengthTerm
from pdray.selection import compute_pd, select
from pdray.selection.config import default


def _lookup(pairs: pa.Table) -> dict:
    return {v: i for i, v in enumerate(pairs["id"].to_pylist())}


def consensus(ids: list[str], pairs: pa.Table, agree: np.ndarray, index: dict) -> tuple[float, float]:
    """(CP, conflict rate) of the pairs ``ids``: shares whose label agrees / disagrees with the
    holistic (mean-of-aspects) preference (Def. 3.3). Holistic ties count in neither; their
    share is :func:`consensus_split`'s third value, so CP + conflict + ties = 1."""
    return consensus_split(ids, pairs, agree, index)[:2]


def consensus_split(ids: list[str], pairs: pa.Table, agree: np.ndarray, index: dict
                    ) -> tuple[float, float, float]:
    """(CP, conflict, ties): shares of ``ids`` whose label agrees with, disagrees with, or ties
    the holistic preference. Ties are not consensus: with two binary aspects (PKU-SafeRLHF)
    every disagreement of the aspects is a holistic tie, so the conflict column alone reads 0."""
    return agreement_shares(np.asarray([agree[index[i]] for i in ids if i in index], dtype=float))


def agreement_shares(agree: np.ndarray) -> tuple[float, float, float]:
    """(CP, conflict, ties) of holistic-agreement flags (:func:`pdray.data.stats.conflict_flags`:
    +1, −1, 0; NaN, no ground truth, counts in none); NaN for all three without a known flag."""
    a = np.asarray(agree, dtype=float)
    a = a[~np.isnan(a)]
    if not len(a):
        return math.nan, math.nan, math.nan
    return float(np.mean(a > 0)), float(np.mean(a < 0)), float(np.mean(a == 0))


def jaccard(a: list[str], b: list[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else math.nan


def selection_metrics(scores: pa.Table, selections: dict, pairs: pa.Table | None = None,
                      true_pd_ids: list[str] | None = None) -> dict:
    """Per strategy: kept, CP, conflict rate, mean Δlen (tokens); Jaccard overlaps between
    strategies; CP of ``true_pd`` (the ceiling) when ground truth exists."""
    dlen = dict(zip(scores["id"].to_pylist(),
                    (np.asarray(scores["chosen_len"], dtype=float)
                     - np.asarray(scores["rejected_len"], dtype=float)).tolist()))
    agree = holistic_agreement(pairs) if pairs is not None else None
    index = _lookup(pairs) if pairs is not None else {}
    out: dict = {"strategies": {}, "overlap": {}}
    all_d = np.asarray(list(dlen.values()))
    out["all"] = {"kept": len(dlen), "mean_dlen": float(all_d.mean()) if len(all_d) else math.nan}
    if agree is not None:
        cp, cr, ties = consensus_split(list(dlen), pairs, agree, index)
        out["all"].update(cp=cp, conflict=cr, ties=ties)
    for name, sel in selections.items():
        ids = sel.selected_ids
        d = [dlen[i] for i in ids if i in dlen]
        m = {"kept": len(ids), "share": len(ids) / max(len(dlen), 1),
             "mean_dlen": float(np.mean(d)) if d else math.nan}
        if agree is not None:
            m["cp"], m["conflict"], m["ties"] = consensus_split(ids, pairs, agree, index)
        out["strategies"][name] = m
    names = list(selections)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            out["overlap"][f"{a}|{b}"] = jaccard(selections[a].selected_ids,
                                                 selections[b].selected_ids)
    if true_pd_ids is not None and agree is not None:
        out["true_pd_ceiling_cp"] = consensus(true_pd_ids, pairs, agree, index)[0]
    return out


def budget_table(scores: pa.Table, strategies: list[str], budgets: list[float], *,
                 gamma: float, length: LengthTerm, pairs: pa.Table | None = None,
                 seed: int = default("seed")) -> dict[str, dict]:
    """Per strategy and budget λ: mean PD and mean Δlen of the selection, and its CP when
    ``pairs`` carries ground truth. ``{"mean_pd": {s: [...]}, "mean_dlen": {...}, "cp": {...}}``.
    ``length`` is the selection's term (with its ρ̂_k), so every point ranks by its PD."""
    pd = dict(zip(scores["id"].to_pylist(),
                  compute_pd(scores, gamma=gamma, length=length).pd.tolist()))
    dlen = dict(zip(scores["id"].to_pylist(),
                    (np.asarray(scores["chosen_len"], dtype=float)
                     - np.asarray(scores["rejected_len"], dtype=float)).tolist()))
    truth = pairs is not None and "chosen_ratings" in pairs.column_names
    agree = holistic_agreement(pairs) if truth else None
    index = _lookup(pairs) if truth else {}
    out: dict[str, dict] = {"mean_pd": {}, "mean_dlen": {}}
    if truth:
        out["cp"] = {}
    for s in strategies:
        for series in out.values():
            series[s] = []
        for lam in budgets:
            r = select(scores, s, length=length, budget=lam, gamma=gamma, seed=seed,
                       pairs=pairs if s == "true_pd" else None)
            ids = r.selected_ids
            out["mean_pd"][s].append(float(np.mean([pd[i] for i in ids])) if ids else math.nan)
            out["mean_dlen"][s].append(float(np.mean([dlen[i] for i in ids])) if ids else math.nan)
            if truth:
                out["cp"][s].append(consensus(ids, pairs, agree, index)[0])
    return out


def budget_curve(scores: pa.Table, pairs: pa.Table, strategies: list[str], budgets: list[float],
                 *, gamma: float, length: LengthTerm, seed: int = default("seed")
                 ) -> dict[str, list[float]]:
    """CP of each strategy as the budget λ grows (needs ground truth)."""
    return budget_table(scores, strategies, budgets, pairs=pairs, gamma=gamma, length=length,
                        seed=seed)["cp"]


def verdict(metrics: dict) -> list[str]:
    """The report's first lines: is pd above random (with ground truth: CP of pd vs the CP of all
    of D, random's expected value), and the reward models' warnings."""
    out = []
    pd = (metrics.get("strategies") or {}).get("pd")
    base = (metrics.get("all") or {}).get("cp")
    if pd is not None and pd.get("cp") is not None and base is not None and not math.isnan(base):
        ceiling = metrics.get("true_pd_ceiling_cp")
        closed = ((pd["cp"] - base) / (ceiling - base)
                  if ceiling is not None and ceiling > base else math.nan)
        if pd["cp"] <= base:
            out.append(f"PD is NOT above random: CP(pd) {pd['cp']:.3f} ≤ CP(random, expected) "
                       f"{base:.3f}; the reward models below explain why")
        else:
            out.append(f"PD is above random: CP(pd) {pd['cp']:.3f} vs CP(random, expected) "
                       f"{base:.3f} (gap to the true-PD ceiling closed: {closed:+.2f})")
    elif pd is not None:
        out.append("No ground truth: CP cannot be measured; judge PD by the reward models' "
                   "held-out accuracy below, or pass labelled pairs with --data")
    corr = metrics.get("pd_dlen_corr")
    if corr is not None and not math.isnan(corr) and abs(corr) > 0.5:
        out.append(f"PD is strongly correlated with Δlen ({corr:+.2f}): the selection is close to "
                   f"a length ranking")
    n_same = metrics.get("same_input") or 0
    if n_same:
        out.append(f"{n_same} pairs had identical chosen/rejected inputs after truncation "
                   f"(gap 0 by construction): raise rm.max_length")
    out += list((metrics.get("reward_models") or {}).get("warnings", []))
    return out
