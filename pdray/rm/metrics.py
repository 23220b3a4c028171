"""Reward-model quality: held-out accuracy, the cross-aspect matrix (Fig. B.3), length bias."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.intervals import wilson_interval
from pdray.io import write_json
from pdray.models.backbones import load_reward_backbone
from pdray.models.reward import pair_rewards
from pdray.rm.dataset import delta_len
from pdray.rm.model_set import HOLISTIC, RewardModelSet


def pair_margins(model, tok, table: pa.Table, *, max_length: int, system_prompt: str | None = None,
                 head: int = 0, response_share: float | None = None) -> np.ndarray:
    """r(x, y_w) − r(x, y_l) for every pair (raw, no length term), encoded and pooled exactly
    as training and scoring do (:func:`pdray.models.reward.pair_rewards`)."""
    if table.num_rows == 0:
        return np.zeros(0)
    rc, rr = pair_rewards(model, tok, table["prompt"].to_pylist(), table["chosen"].to_pylist(),
                          table["rejected"].to_pylist(), system_prompt=system_prompt,
                          max_length=max_length, response_share=response_share)
    return rc[:, head] - rr[:, head]


def accuracy(margins: np.ndarray) -> float:
    """Pairwise accuracy of margins r_w − r_l: a tie (margin exactly 0) counts one half."""
    m = np.asarray(margins, dtype=np.float64)
    return float(np.mean(m > 0) + 0.5 * np.mean(m == 0)) if len(m) else float("nan")


def length_only_accuracy(dlen: np.ndarray) -> float:
    """Accuracy of the length-only scorer r(x, y) = len(y): it prefers the longer response."""
    return accuracy(np.asarray(dlen, dtype=np.float64))


def length_correlation(margins: np.ndarray, dlen: np.ndarray) -> float:
    """Pearson correlation between the reward margin and Δlen (length bias)."""
    if len(margins) < 3 or np.std(margins) == 0 or np.std(dlen) == 0:
        return float("nan")
    return float(np.corrcoef(margins, dlen)[0, 1])


def length_slope(margins: np.ndarray, dlen: np.ndarray) -> float:
    """Least-squares slope of the margin on Δlen (reward units per token)."""
    d = np.asarray(dlen, dtype=np.float64)
    if len(d) < 3 or np.std(d) == 0:
        return float("nan")
    return float(np.polyfit(d, np.asarray(margins, dtype=np.float64), 1)[0])


def quality_gate(own: dict, rho: float, length_debias: str) -> list[str]:
    """Plain warnings for reward models whose gaps PD should not trust: accuracy interval
    containing 0.5, no better than length-only, or (penalty) ρ·|Δlen| dominating |Δr̂|."""
    out = []
    for k, v in own.items():
        lo, hi = v.get("accuracy_ci95", (float("nan"),) * 2)
        acc, base = v.get("heldout_accuracy"), v.get("length_only_accuracy")
        if np.isfinite(lo) and lo <= 0.5:
            out.append(f"aspect {k!r}: held-out accuracy {acc:.3f} (95% CI {lo:.2f}–{hi:.2f}, "
                       f"n={v['n']}) is not above chance: PD will be close to random. Train "
                       f"longer (rm.min_steps), on more pairs, or with a stronger backbone")
        elif base is not None and np.isfinite(base) and acc <= base:
            out.append(f"aspect {k!r}: held-out accuracy {acc:.3f} does not beat the length-only "
                       f"scorer ({base:.3f}): PD will rank pairs by length more than by {k}")
        if length_debias == "penalty" and v.get("median_abs_margin") is not None:
            term = rho * v.get("median_abs_dlen", 0.0)
            if term > v["median_abs_margin"]:
                out.append(f"aspect {k!r}: the length term ρ·|Δlen| (median {term:.4f}) is larger "
                           f"than the reward gap |Δr̂| (median {v['median_abs_margin']:.4f}): "
                           f"Eq. 18 will rank pairs by −Δlen; lower rm.rho or use "
                           f"rm.length_debias=learned")
    return out


def conflict_matrix(cross_accuracy: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Paper Fig. B.3: the share of aspect j's pairs that model k ranks the other way (1 − acc)."""
    return {k: {j: 1.0 - v for j, v in row.items()} for k, row in cross_accuracy.items()}


def evaluate_set(root, heldout: pa.Table, *, max_length: int | None = None,
                 trust_remote_code: bool = False, echo=print, write: bool = True) -> dict:
    """Metrics of the reward-model set in ``root`` on ``heldout`` pairs:

    - ``own[k]``: pairwise accuracy of model k on aspect k's pairs, n, and the Pearson correlation
      of its margin r(x,y_w) − r(x,y_l) with Δlen (length bias);
    - ``cross_accuracy[k][j]``: accuracy of model k on aspect j's pairs, and ``conflict[k][j]`` =
      1 − that (Fig. B.3), for every aspect pair of the set (plus the holistic model if present).

    With ``write``, the metrics go to ``root/metrics.json`` and into ``rm_set.json`` (``extra``).
    """
    root = Path(root)
    rm_set = RewardModelSet.load(root)
    if heldout.num_rows == 0:
        return {}
    max_length = max_length or rm_set.max_length
    aspects = rm_set.aspects
    data = {a: heldout.filter(pc.equal(heldout["aspect"], a)) for a in aspects}
    models = aspects + ([HOLISTIC] if rm_set.holistic_path else [])
    matrix: dict[str, dict[str, float]] = {}
    own: dict[str, dict] = {}
    cache: dict = {}
    for k in models:
        d = rm_set.model_dir(root, k)
        if d not in cache:
            cache[d] = load_reward_backbone(str(d), None, trust_remote_code=trust_remote_code,
                                            echo=lambda *_: None)
        model, tok = cache[d]
        head = rm_set.head_index(k) if k != HOLISTIC else 0
        matrix[k] = {}
        for j in aspects:
            m = pair_margins(model, tok, data[j], max_length=max_length,
                             system_prompt=rm_set.system_prompts.get(k), head=head,
                             response_share=rm_set.response_share)
            matrix[k][j] = accuracy(m)
            if j == k:
                dl = delta_len(tok, data[j]).astype(float)
                acc = accuracy(m)
                own[k] = {"heldout_accuracy": acc, "n": len(m),
                          "accuracy_ci95": wilson_interval(acc, len(m)),
                          "length_only_accuracy": length_only_accuracy(dl),
                          "zero_gap_share": float(np.mean(m == 0)) if len(m) else float("nan"),
                          "median_abs_margin": float(np.median(np.abs(m))) if len(m) else None,
                          "median_abs_dlen": float(np.median(np.abs(dl))) if len(m) else None,
                          "margin_dlen_corr": length_correlation(m, dl),
                          "margin_dlen_slope": length_slope(m, dl)}
    for k, u in (rm_set.extra.get("units") or {}).items():
        for a in ([k] if k in own else list(own) if k in ("all_in_one", "multi_head") else []):
            t = u.get("train") or {}
            own[a].update({"steps": t.get("steps"), "planned_steps": t.get("planned_steps"),
                           "final_loss": t.get("train_loss"),
                           "best_eval_loss": t.get("best_eval_loss"),
                           "learned_rho_per_token": t.get("learned_rho_per_token")})
    warnings = quality_gate(own, rm_set.rho, rm_set.length_debias)
    metrics = {"own": own, "cross_accuracy": matrix, "conflict": conflict_matrix(matrix),
               "heldout_pairs": heldout.num_rows, "warnings": warnings}
    if write:
        rm_set.extra["metrics"] = metrics
        rm_set.save(root)
        write_json(metrics, root / "metrics.json")
    for k, v in own.items():
        lo, hi = v["accuracy_ci95"]
        echo(f"[rm:{k}] held-out accuracy {v['heldout_accuracy']:.3f} (95% CI {lo:.2f}–{hi:.2f}, "
             f"n={v['n']}; length-only {v['length_only_accuracy']:.3f}), margin~Δlen corr "
             f"{v['margin_dlen_corr']:+.3f}")
    for w in warnings:
        echo(f"[rm] warning: {w}")
    return metrics

