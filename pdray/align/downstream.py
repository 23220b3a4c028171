"""What PD claims, measured on the aligned policy: held-out accuracy against the consensus label.

PD keeps the pairs whose label agrees with every aspect (METHOD.md Def. 3.3, Eq. 10), so the
aligned model should prefer what the *consensus* of the aspects prefers, not each pair's own
aspect label (which carries the very conflicts PD removes). The consensus label of a held-out
pair is the sign of its mean aspect-rating gap (the paper's Oracle relabelling, Table 1; the
conflict flag of :func:`pdray.data.stats.conflict_flags`):

* both PKU-SafeRLHF labels agree → that response; they disagree → a tie (no consensus);
* rating means (HelpSteer, UltraFeedback) → the response with the higher mean rating;
* a tie, or no ratings, → the pair has no consensus label and is counted, never scored.

A pair is correct when the policy's implicit-reward margin M_θ(z) (Eq. 3) has the sign of the
consensus; a margin of exactly 0 is never correct. Pure functions on numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np

from pdray.intervals import wilson_interval


def _share(correct: np.ndarray) -> float:
    return float(correct.mean()) if len(correct) else math.nan


def consensus_report(margin: np.ndarray, flags: np.ndarray) -> dict:
    """Consensus accuracy of ``margin`` (one DPO margin per pair, oriented to the pair's own
    label) given the pairs' consensus flags (+1 the consensus agrees with the own label, −1 it
    disagrees: a conflict pair, 0 tie, NaN no ratings).

    Returns ``consensus_accuracy`` and its 95 % Wilson interval ``consensus_ci`` over the
    ``n_consensus`` pairs with a consensus label; the same accuracy on the agreeing pairs
    (``consensus_pairs_accuracy``) and on the conflict pairs (``conflict_pairs_accuracy``: the
    policy must prefer the response the own label rejected), with their counts; and
    ``n_consensus_ties`` / ``n_no_ratings``, the pairs that have no consensus label.
    """
    m = np.asarray(margin, dtype=np.float64)
    f = np.asarray(flags, dtype=np.float64)
    if m.shape != f.shape:
        raise ValueError(f"consensus_report: {len(m)} margins but {len(f)} flags")
    agree, conflict = f > 0, f < 0
    labelled = agree | conflict
    correct = np.where(agree, m > 0, m < 0)[labelled]
    acc = _share(correct)
    return {"consensus_accuracy": acc, "consensus_ci": list(wilson_interval(acc, len(correct))),
            "n_consensus": int(labelled.sum()),
            "consensus_pairs_accuracy": _share(m[agree] > 0), "n_consensus_pairs": int(agree.sum()),
            "conflict_pairs_accuracy": _share(m[conflict] < 0),
            "n_conflict_pairs": int(conflict.sum()),
            "n_consensus_ties": int((f == 0).sum()), "n_no_ratings": int(np.isnan(f).sum())}


def headline(ev: dict) -> tuple[str, float, list]:
    """The one number a DPO run is judged by: (name, value, 95 % interval). The consensus
    accuracy where the held-out pairs have a consensus label; else (no ratings) the accuracy
    against each pair's own label, named so."""
    c = ev.get("consensus_accuracy", math.nan)
    if ev.get("n_consensus") and not math.isnan(c):
        return "consensus accuracy", c, list(ev.get("consensus_ci") or [math.nan, math.nan])
    own = ev.get("own_label_accuracy", ev.get("accuracy", math.nan))
    return "own-label accuracy", own, list(wilson_interval(own, int(ev.get("n") or 0)))


def headline_line(ev: dict) -> str:
    """One line: the headline number with its interval and count, the own-label accuracy and the
    mean generated length (AL) beside it."""
    name, v, (lo, hi) = headline(ev)
    n = ev.get("n_consensus") if name.startswith("consensus") else ev.get("n")
    parts = [f"{name} {v:.3f} (95% CI {lo:.2f}–{hi:.2f}, n={n})"]
    if name.startswith("consensus"):
        parts.append(f"own-label {ev.get('own_label_accuracy', math.nan):.3f}")
    if "mean_generated_length" in ev:
        parts.append(f"AL {ev['mean_generated_length']:.1f} tokens")
    return "; ".join(parts)
