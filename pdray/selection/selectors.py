"""Every selection strategy behind one interface and one registry.

A selector gets a :class:`Context` and returns a :class:`Choice`: the indices (into the scores
table) it keeps and a per-row score column. Relabelling baselines (``oracle``, ``overall``)
return the relabelled pairs instead. Register new ones with ``@register_selector("name")``;
what a selector reads beyond the main gap scores (its own reward models, the LossDiff columns) is
declared there as :class:`Needs`, which the pipeline turns into configuration, so no stage
names a strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.errors import ConfigError, DataError
from pdray.length_modes import LengthTerm
from pdray.schema import ratings_dict
from pdray.selection import band as B
from pdray.selection import math as M
from pdray.selection import ranking as R
from pdray.selection.config import BAND, LOSSDIFF_KEEP
from pdray.selection.pd import compute_pd, pd_from_gaps, true_gaps
from pdray.selection.scores import columns


@dataclass
class Context:
    scores: pa.Table
    pairs: pa.Table | None
    budget: float
    gamma: float
    length: LengthTerm                   # Eq. 18's term on ``scores`` (any ρ̂_k fit already removed)
    seed: int
    aspect_weights: dict | None = None
    file: str | None = None              # where the scores came from (named in errors)

    @property
    def n(self) -> int:
        return self.scores.num_rows

    @property
    def k(self) -> int:
        return M.budget_count(self.n, self.budget)


@dataclass
class Choice:
    keep: np.ndarray                     # row indices into ctx.scores (in selection order)
    score_name: str
    score: np.ndarray                    # one value per row of ctx.scores
    q: dict[str, float] = field(default_factory=dict)
    relabelled: pa.Table | None = None   # oracle / overall: the relabelled pairs
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Needs:
    """What a selector reads beyond the main gap scores.

    ``rm_switch``: the ``rm`` config flag that trains the reward models it reads (the pipeline
    turns it on when the strategy is asked for); ``scores``: the score stage's manifest field
    holding its scores (``scores``: the main set); ``logprobs``: it reads the LossDiff / IRM
    columns (the ``lossdiff`` stage)."""
    rm_switch: str | None = None
    scores: str = "scores"
    logprobs: bool = False


SELECTORS: dict[str, Callable[..., Choice]] = {}
DESCRIPTIONS: dict[str, str] = {}
NEEDS: dict[str, Needs] = {}


def register_selector(name: str, description: str = "", needs: Needs = Needs()):
    def deco(fn):
        SELECTORS[name] = fn
        DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().splitlines()[0]
        NEEDS[name] = needs
        return fn
    return deco


def _pd(ctx: Context, length: LengthTerm | None = None) -> tuple[np.ndarray, dict]:
    r = compute_pd(ctx.scores, gamma=ctx.gamma, length=length or ctx.length,
                   aspect_weights=ctx.aspect_weights, file=ctx.file)
    return r.pd, r.q


@register_selector("pd", "OURS: the λ·|D| pairs with the most negative PD (Eq. 10)")
def select_pd(ctx: Context) -> Choice:
    pd, q = _pd(ctx)
    ids = ctx.scores["id"]
    return Choice(R.top_lowest(pd, ids, ctx.k), "pd", pd, q)


@register_selector("no_debias", "A2: PD from reward models trained without length mitigation",
                   Needs(rm_switch="train_no_debias", scores="scores_no_debias"))
def select_no_debias(ctx: Context) -> Choice:
    pd, q = _pd(ctx, LengthTerm.of(ctx.length.mode, 0.0))
    ids = ctx.scores["id"]
    return Choice(R.top_lowest(pd, ids, ctx.k), "pd", pd, q)


@register_selector("high", "the λ·|D| pairs with the most positive PD (most conflicted)")
def select_high(ctx: Context) -> Choice:
    pd, q = _pd(ctx)
    ids = ctx.scores["id"]
    return Choice(R.top_lowest(-pd, ids, ctx.k), "pd", pd, q)


@register_selector("mid", "the λ·|D| pairs around the median PD")
def select_mid(ctx: Context) -> Choice:
    pd, q = _pd(ctx)
    ids = ctx.scores["id"]
    order = R.top_lowest(pd, ids, ctx.n)
    start = (ctx.n - ctx.k) // 2
    return Choice(order[start:start + ctx.k], "pd", pd, q)


@register_selector("random", "a seeded uniform sample of λ·|D| pairs")
def select_random(ctx: Context) -> Choice:
    """Seeded uniform sample. The draws are assigned in ``id`` order, so the same seed picks
    the same ids whatever the row order of the scores table."""
    ids = ctx.scores["id"]
    by_id = np.asarray(pc.sort_indices(ids))
    u = np.empty(ctx.n)
    u[by_id] = np.random.default_rng(ctx.seed).random(ctx.n)
    return Choice(R.top_lowest(u, ids, ctx.k), "random_u", u)


@register_selector("holistic", "A1: the largest margins of one reward model trained on all of D",
                   Needs(rm_switch="train_holistic"))
def select_holistic(ctx: Context, column: str = "gap_holistic") -> Choice:
    if column not in ctx.scores.column_names:
        raise DataError(f"holistic needs a {column} column (train the holistic RM: "
                        "rm.train_holistic=true)", file=ctx.file, field=column)
    ids, _, dlen = columns(ctx.scores)
    g = M.length_adjusted_gap(ctx.scores[column].to_numpy().astype(float), dlen,
                              ctx.length.rho, ctx.length.mode)
    return Choice(R.top_lowest(-g, ids, ctx.k), "holistic_margin", g)


@register_selector("true_pd", "analysis only: PD computed from ground-truth rating gaps")
def select_true_pd(ctx: Context) -> Choice:
    if ctx.pairs is None:
        raise ConfigError("true_pd needs the pairs with ground truth (--data PAIRS)")
    ids, _, _ = columns(ctx.scores)
    gaps, own = true_gaps(ctx.pairs, ids)
    r = pd_from_gaps(gaps, own, gamma=ctx.gamma, weights=ctx.aspect_weights)
    return Choice(R.top_lowest(r.pd, ids, ctx.k), "true_pd", r.pd, r.q)


@register_selector("band", "rows inside a middle percentile band of every given score column")
def select_band(ctx: Context, columns: list[str] | None = None, low: float = BAND[0],
                high: float = BAND[1]) -> Choice:
    cols = columns
    if not cols:
        raise ConfigError("band needs columns=[...]")
    mask = B.band_intersection([_finite_column(ctx, c) for c in cols], low, high)
    keep = np.flatnonzero(mask)
    ids = np.asarray(ctx.scores["id"].to_pylist(), dtype=object)
    keep = keep[np.argsort(ids[keep].astype(str), kind="stable")]
    bounds = {c: list(B.percentile_bounds(_finite_column(ctx, c), low, high)) for c in cols}
    return Choice(keep, "in_band", mask.astype(float),
                  info={"keep_rate": float(mask.mean()) if ctx.n else 0.0, "band": [low, high],
                        "columns": list(cols), "bounds": bounds})


def _finite_column(ctx: Context, c: str) -> np.ndarray:
    """A score column as float64; a missing column or a non-finite value names the file, the
    row and the column."""
    if c not in ctx.scores.column_names:
        raise DataError(f"no column {c!r} in the scores (pdray lossdiff score writes lossdiff "
                        "and irm)", file=ctx.file, field=c)
    v = ctx.scores[c].to_numpy(zero_copy_only=False).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    if len(bad):
        raise DataError(f"non-finite value ({len(bad)} such rows)", file=ctx.file,
                        row=int(bad[0]), field=c)
    return v


@register_selector("lossdiff_irm", "second seed: middle band of LossDiff ∩ middle band of IRM",
                   Needs(logprobs=True))
def select_lossdiff_irm(ctx: Context, low: float | None = None, high: float | None = None,
                        keep_rate: float = LOSSDIFF_KEEP) -> Choice:
    """The pairs inside a middle band of LossDiff and of IRM. Given ``low``/``high``, that band;
    by default the narrowest symmetric band keeping ``keep_rate`` of the scored pairs
    (:func:`pdray.selection.band.band_for_keep_rate`, the paper's 50–64 %)."""
    if (low is None) != (high is None):
        raise ConfigError("lossdiff_irm: give both low and high, or neither (keep_rate decides)")
    target = None                              # a band given: no keep-rate target
    if low is None:
        target = float(keep_rate)
        low, high = B.band_for_keep_rate([_finite_column(ctx, c) for c in ("lossdiff", "irm")],
                                         target)
    choice = select_band(ctx, columns=["lossdiff", "irm"], low=low, high=high)
    choice.info["keep_rate_target"] = target
    return choice


@register_selector("pd_irm", "hybrid: PD top-λ ∩ IRM middle band, or a rank-sum of both",
                   Needs(logprobs=True))
def select_pd_irm(ctx: Context, low: float = BAND[0], high: float = BAND[1],
                  combine: str = "intersect") -> Choice:
    irm = _finite_column(ctx, "irm")
    pd, q = _pd(ctx)
    ids, _, _ = columns(ctx.scores)
    if combine == "intersect":
        mask = B.pd_irm_intersect(pd, irm, ids, ctx.k, low, high)
        keep = np.flatnonzero(mask)
        keep = keep[np.argsort(ids[keep].astype(str), kind="stable")]
        return Choice(keep, "pd", pd, q, info={"keep_rate": float(mask.mean())})
    if combine == "rank_sum":
        keep, s = B.pd_irm_rank_sum(pd, irm, ids, ctx.k)
        return Choice(keep, "rank_sum", s, q)
    raise ConfigError(f"pd_irm: combine must be 'intersect' or 'rank_sum', got {combine!r}")


@register_selector("all", "every pair (the full-data baseline)")
def select_all(ctx: Context) -> Choice:
    ids = ctx.scores["id"]
    return Choice(R.top_lowest(np.zeros(ctx.n), ids, ctx.n), "all", np.zeros(ctx.n))


def _relabel(ctx: Context, key: str) -> Choice:
    """Relabel every pair of the scores by a holistic ground truth; ties and pairs without
    ground truth are dropped and counted (``dropped_ties``, ``dropped_no_truth``)."""
    if ctx.pairs is None:
        raise ConfigError(f"{key} needs the pairs with ground truth (--data PAIRS)")
    idx = pc.index_in(ctx.scores["id"], value_set=ctx.pairs["id"])
    if idx.null_count:
        row = pc.indices_nonzero(pc.is_null(idx))[0].as_py()
        raise DataError(f"id {ctx.scores['id'][row].as_py()!r} of the scores is not in the pairs "
                        f"({idx.null_count} such rows)", row=row, field="id")
    p = ctx.pairs.take(idx)                       # aligned with the scores rows
    if key == "oracle":
        if "chosen_ratings" not in p.column_names:
            raise DataError("oracle needs chosen_ratings/rejected_ratings", field="chosen_ratings")
        diff = []
        for c, r in zip(p["chosen_ratings"].to_pylist(), p["rejected_ratings"].to_pylist()):
            c, r = ratings_dict(c) or {}, ratings_dict(r) or {}
            ks = sorted(set(c) & set(r))
            diff.append(np.mean([c[k] for k in ks]) - np.mean([r[k] for k in ks]) if ks else np.nan)
        diff = np.asarray(diff, dtype=float)
    else:
        if "chosen_overall" not in p.column_names:
            raise DataError("overall needs chosen_overall/rejected_overall", field="chosen_overall")
        diff = (np.asarray(p["chosen_overall"].to_numpy(zero_copy_only=False), dtype=float)
                - np.asarray(p["rejected_overall"].to_numpy(zero_copy_only=False), dtype=float))
    swap = diff < 0
    no_truth = np.isnan(diff)
    keep = np.flatnonzero(~no_truth & (diff != 0))
    cols = {c: p[c] for c in p.column_names}
    sw = pa.array(swap)
    for a, b in (("chosen", "rejected"), ("chosen_ratings", "rejected_ratings"),
                 ("chosen_overall", "rejected_overall")):
        if a in cols and b in cols:
            cols[a], cols[b] = pc.if_else(sw, p[b], p[a]), pc.if_else(sw, p[a], p[b])
    relabelled = pa.table(cols).take(pa.array(keep))
    relabelled = relabelled.append_column("relabelled", pa.array(swap[keep]))
    score = np.zeros(ctx.n)
    score[keep] = 1.0
    n_tie = int(np.sum(diff == 0))
    return Choice(keep, "kept", score, relabelled=relabelled,
                  info={"relabelled": int(swap[keep].sum()), "dropped_ties": n_tie,
                        "dropped_no_truth": int(no_truth.sum()),
                        "dropped": n_tie + int(no_truth.sum())})


@register_selector("oracle", "full data relabelled by the mean aspect rating (ties dropped)")
def select_oracle(ctx: Context) -> Choice:
    return _relabel(ctx, "oracle")


@register_selector("overall", "full data relabelled by the overall rating (ties dropped)")
def select_overall(ctx: Context) -> Choice:
    return _relabel(ctx, "overall")
