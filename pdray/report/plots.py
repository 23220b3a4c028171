"""The report's figures (matplotlib PNGs), each returned with its caption in words: what it
shows and how to read it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.selection.scores import gap_aspects


@dataclass(frozen=True)
class Figure:
    """One PNG of the report: its file, a title and a caption (plain text, escaped when
    rendered)."""

    path: Path
    title: str
    caption: str


PD_BINS = 50
"""Bins of the PD histogram (the figure and ``metrics.json``'s ``pd_histogram``)."""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def file_stem(name: str) -> str:
    """A file-name-safe form of an aspect name (``gap_<stem>.png``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def pd_hist(pd: np.ndarray, path: Path, threshold: float | None = None) -> Figure:
    """The PD of every scored pair; ``threshold``: the largest PD the ``pd`` selection kept."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(pd, bins=PD_BINS, color="#4C72B0", alpha=0.85)
    mean = float(np.mean(pd)) if len(pd) else float("nan")
    ax.axvline(mean, color="k", ls="--", label=f"mean {mean:.3f}")
    if threshold is not None:
        ax.axvline(threshold, color="#C44E52", lw=2, label=f"pd keeps PD ≤ {threshold:.3f}")
    ax.set_xlabel("PD(z)   ← consensus · conflict →")
    ax.set_ylabel("pairs")
    ax.legend()
    cut = (f" The red line is the cut of the pd selection: it keeps the pairs left of "
           f"{threshold:.3f}." if threshold is not None else "")
    caption = (f"How much the reward models of the other aspects disagree with each pair's "
               f"label: the preference divergence PD of all {len(pd)} scored pairs (the PD the "
               f"selection ranked by). Negative PD: the other aspects also prefer the chosen "
               f"response (consensus); positive: they prefer the rejected one (conflict). "
               f"The dashed line is the mean ({mean:.3f}).{cut}")
    return Figure(_save(fig, path), "Preference divergence of every pair", caption)


def gap_figures(scores: pa.Table, out: Path) -> list[Figure]:
    """One figure per aspect k: Δr̂_k on the pairs labelled for k vs on the other aspects'
    pairs (paper Fig. B.4)."""
    plt = _plt()
    own = np.asarray(scores["aspect"].to_pylist(), dtype=object)
    figs = []
    for k in gap_aspects(scores):
        g = scores[f"gap_{k}"].to_numpy(zero_copy_only=False).astype(float)
        mine, other = g[own == k], g[own != k]
        fig, ax = plt.subplots(figsize=(8, 4.5))
        bins = np.histogram_bin_edges(g[np.isfinite(g)], bins=40) if np.isfinite(g).any() else 40
        if len(mine):
            ax.hist(mine, bins=bins, alpha=0.6, density=True, color="#4C72B0",
                    label=f"pairs labelled for {k} ({len(mine)})")
        if len(other):
            ax.hist(other, bins=bins, alpha=0.6, density=True, color="#DD8452",
                    label=f"pairs of the other aspects ({len(other)})")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"reward gap Δr̂ of the {k} model: r(chosen) − r(rejected)")
        ax.set_ylabel("density")
        ax.set_title(f"Aspect {k}")
        ax.legend()
        caption = (f"The {k} reward model's gap r(chosen) − r(rejected) on the {len(mine)} "
                   f"pairs labelled for {k} (blue) and on the {len(other)} pairs labelled for "
                   f"the other aspects (orange), each scaled to unit area. Blue right of zero: "
                   f"the model agrees with its own labels. Orange left of zero: pairs whose "
                   f"chosen response is worse in {k}, the conflicts PD counts.")
        figs.append(Figure(_save(fig, out / f"gap_{file_stem(k)}.png"),
                           f"Reward gaps of the {k} model", caption))
    return figs


def dlen_box(scores: pa.Table, selections: dict, path: Path) -> Figure:
    """Δlen distribution of each selection (paper Fig. B.7)."""
    plt = _plt()
    dlen = dict(zip(scores["id"].to_pylist(), (np.asarray(scores["chosen_len"], float)
                                              - np.asarray(scores["rejected_len"], float))))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = [[dlen[i] for i in s.selected_ids if i in dlen] for s in selections.values()]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(selections) + 1), list(selections), rotation=20)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("Δlen = len(chosen) − len(rejected) (tokens)")
    caption = ("Length difference Δlen = len(chosen) − len(rejected), in tokens, of the pairs "
               "each strategy kept: the box spans the middle half, the line in it is the "
               "median, the whiskers reach 1.5 box-lengths (outliers hidden). A box far above "
               "zero means the strategy keeps pairs whose chosen response is simply longer: a "
               "length bias, not consensus.")
    return Figure(_save(fig, path), "Length difference of the kept pairs", caption)


def budget_curve(budgets: list[float], curve: dict, path: Path, *, measure: str) -> Figure:
    """One line per strategy over the budget λ; ``measure``: ``cp``, ``mean_pd`` or
    ``mean_dlen``."""
    ylabel, title, how = {
        "cp": ("consensus precision", "Consensus precision against the budget",
               ("the share of kept pairs whose label agrees with the mean of the aspects' "
                "ground-truth ratings. Higher is better; true_pd (ranked by the ratings "
                "themselves) is the ceiling")),
        "mean_pd": ("mean PD of the selection", "Mean PD against the budget",
                    ("the mean PD of the kept pairs (no ground truth to measure consensus). "
                     "Lower means more consensual pairs")),
        "mean_dlen": ("mean Δlen of the selection (tokens)", "Length bias against the budget",
                      ("the mean Δlen = len(chosen) − len(rejected) of the kept pairs. A line "
                       "far from the others leans on length")),
    }[measure]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s, ys in curve.items():
        ax.plot(budgets, ys, marker="o", label=s)
    ax.set_xlabel("budget λ (share of the pairs kept)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    lo, hi = (min(budgets), max(budgets)) if budgets else (float("nan"),) * 2
    caption = (f"Each strategy re-run at budgets λ from {lo:g} to {hi:g} (the share of pairs "
               f"it keeps); the y axis is {how}. At λ = 1 every strategy keeps every pair and "
               f"the lines meet.")
    return Figure(_save(fig, path), title, caption)
