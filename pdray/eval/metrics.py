"""Evaluation metrics: the win score of Eq. 19, AW, average length, AlpacaEval WR and LC.

* ``win_score = (wins − losses) / |D_t| + 1`` (Eq. 19), in [0, 2]; 1 means on par with the
  baseline. ``|D_t|`` counts every prompt of the set: a prompt whose judgments could not be
  parsed counts as a tie and is reported (``failed``), never dropped.
* ``AW`` = mean of the win scores over the test sets (Sec. 5.1).
* ``AL`` = average response length (words by default), reported next to every score.
* AlpacaEval win rate ``WR`` = 100 · mean preference for the model over the reference (ties 0.5).
* Length-controlled win rate ``LC``: AlpacaEval 2 fits a GLM of the judge's preference on the
  model identity, a length term ``tanh(Δlen / std(Δlen))`` and an instruction-difficulty term,
  and reports the win rate with the length term set to zero. :func:`length_controlled_win_rate`
  fits the same logistic model **without** the instruction-difficulty term (it needs the
  leaderboard's other models), with a small L2 penalty on the length coefficient, by Newton's method. It is therefore an
  approximation of AlpacaEval's LC; with the ``alpaca_eval`` package installed,
  :func:`alpaca_eval_lc` calls its own implementation instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def outcome_counts(outcomes: Iterable[str]) -> dict[str, int]:
    c = {"win": 0, "loss": 0, "tie": 0, "failed": 0}
    for o in outcomes:
        if o not in c:
            raise ValueError(f"unknown outcome {o!r}")
        c[o] += 1
    return c


def win_score(wins: int, losses: int, n: int) -> float:
    """Eq. 19: ``(wins − losses)/|D_t| + 1``; NaN when nothing was judged."""
    if n <= 0:
        return float("nan")
    if wins + losses > n or wins < 0 or losses < 0:
        raise ValueError(f"wins ({wins}) + losses ({losses}) exceed |D_t| ({n})")
    return (wins - losses) / n + 1.0


def average_win_score(scores: Mapping[str, float] | Sequence[float]) -> float:
    """AW: the mean of the per-set win scores (Sec. 5.1), NaN sets skipped."""
    vals = list(scores.values()) if isinstance(scores, Mapping) else list(scores)
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def response_length(text: str, unit: str = "words") -> int:
    if unit == "words":
        return len(text.split())
    if unit == "chars":
        return len(text)
    raise ValueError(f"unknown length unit {unit!r}")


def average_length(texts: Iterable[str], unit: str = "words") -> float:
    """AL: mean response length (words or characters)."""
    lens = [response_length(t, unit) for t in texts]
    return float(np.mean(lens)) if lens else float("nan")


def set_summary(outcomes: Sequence[str], target_texts: Sequence[str],
                baseline_texts: Sequence[str], unit: str = "words") -> dict:
    """Counts, win score (Eq. 19) and AL of one test set. Eq. 19 divides by |D_t|, every prompt
    of the set: a failed judgment counts as a tie there (neither a win nor a loss) and is
    reported in ``failed``, so failures cannot raise or lower the score by shrinking D_t."""
    c = outcome_counts(outcomes)
    judged = c["win"] + c["loss"] + c["tie"]
    return {"n": len(outcomes), "judged": judged, **c,
            "win_score": win_score(c["win"], c["loss"], len(outcomes)),
            "AL": average_length(target_texts, unit),
            "AL_baseline": average_length(baseline_texts, unit)}


def outcome_preference(outcome: str) -> float | None:
    """Preference for the model over the baseline: win 1, tie 0.5, loss 0, failed None."""
    return {"win": 1.0, "tie": 0.5, "loss": 0.0}.get(outcome)


def win_rate(preferences: Sequence[float]) -> float:
    """AlpacaEval WR in percent: 100 · mean preference (ties 0.5)."""
    p = np.asarray(preferences, dtype=float)
    return float(100.0 * p.mean()) if p.size else float("nan")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit_length_glm(preferences: Sequence[float], len_model: Sequence[float],
                   len_ref: Sequence[float], l2: float = 1e-3,
                   iters: int = 100) -> tuple[float, float, float]:
    """Fit ``P(model preferred) = σ(θ + φ·tanh(Δlen/std(Δlen)))`` by penalised Newton steps.

    ``preferences`` are in [0, 1] (ties 0.5, used as fractional labels, as AlpacaEval does).
    Returns ``(θ, φ, std(Δlen))``.
    """
    y = np.asarray(preferences, dtype=float)
    d = np.asarray(len_model, dtype=float) - np.asarray(len_ref, dtype=float)
    sd = float(d.std()) or 1.0
    x = np.tanh(d / sd)
    X = np.stack([np.ones_like(x), x], axis=1)
    w = np.zeros(2)
    pen = np.array([0.0, l2])  # only the length coefficient is penalised
    for _ in range(iters):
        p = _sigmoid(X @ w)
        grad = X.T @ (p - y) / len(y) + pen * w
        hess = (X.T * (p * (1 - p))) @ X / len(y) + np.diag(pen + 1e-9)
        step = np.clip(np.linalg.lstsq(hess, grad, rcond=None)[0], -5.0, 5.0)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1]), sd


def length_controlled_win_rate(preferences: Sequence[float], len_model: Sequence[float],
                               len_ref: Sequence[float], l2: float = 1e-3) -> float:
    """LC win rate in percent: the fitted GLM's win rate with the length term zeroed."""
    if len(preferences) == 0:
        return float("nan")
    theta, _, _ = fit_length_glm(preferences, len_model, len_ref, l2=l2)
    return float(100.0 * _sigmoid(theta))


def alpaca_eval_lc(annotations) -> dict:
    """Optional adapter: AlpacaEval's own LC implementation (needs ``pip install alpaca_eval``).

    ``annotations``: a pandas DataFrame in AlpacaEval's annotation format (``instruction``,
    ``output_1`` (reference), ``output_2`` (model), ``generator_1``, ``generator_2``,
    ``preference`` in [1, 2]).
    """
    try:
        from alpaca_eval.metrics.glm_winrate import get_length_controlled_winrate
    except ImportError:
        raise ImportError("the alpaca_eval adapter needs `pip install alpaca_eval`; "
                          "pdray's built-in LC (length_controlled_win_rate) is an approximation "
                          "without the instruction-difficulty term") from None
    return get_length_controlled_winrate(annotations)
