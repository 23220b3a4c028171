"""The math of LossDiff-IRM as pure vectorised functions (METHOD.md, "Second seed", steps 2-3).

Step 4 (the percentile band, and its PD hybrids) is selection math and lives with the rest of
it: :func:`pdray.selection.band.band_intersection`, ``pd_irm_intersect``, ``pd_irm_rank_sum``.

Notation: a pair z = (x, y_w, y_l); ``pc``/``pr`` are the sequence log-probabilities
log π(y_w|x) / log π(y_l|x) of the model being scored, ``rc``/``rr`` those of the reference
π_ref. All functions take numpy arrays (or scalars) and return float64 arrays.
"""

from __future__ import annotations

import numpy as np

MODELS = ("policy", "ref", "aux")
"""The three models every pair is scored under: θ (policy), π_ref (ref), θ_val (aux)."""
LOGP_COLUMNS = tuple(f"{m}_{s}_logp" for m in MODELS for s in ("chosen", "rejected"))
"""The sequence log-prob columns of the log-prob scores, from which LossDiff and IRM follow."""


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def log_ratio_margin(pc, pr, rc, rr) -> np.ndarray:
    """M(z) = [log π(y_w|x) − log π_ref(y_w|x)] − [log π(y_l|x) − log π_ref(y_l|x)]."""
    return (_f(pc) - _f(rc)) - (_f(pr) - _f(rr))


def dpo_loss_per_pair(pc, pr, rc, rr, beta: float) -> np.ndarray:
    """ℓ_DPO(θ; z) = −log σ(β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))])
    (paper Eq. 2, the loss LossDiff evaluates per pair in step 2 of "Second seed").

    Computed as softplus(−βM) = log(1 + e^{−βM}), stable for any margin.
    """
    return np.logaddexp(0.0, -beta * log_ratio_margin(pc, pr, rc, rr))


def lossdiff(policy_c, policy_r, aux_c, aux_r, ref_c, ref_r, beta: float) -> np.ndarray:
    """Step 2 of "Second seed": LossDiff(z) = ℓ_DPO(θ; z) − ℓ_DPO(θ_val; z).

    Both losses use the same reference π_ref (both warm-up runs start from it). Large
    positive: the policy fits z much worse than a model trained on clean validation data.
    """
    return (dpo_loss_per_pair(policy_c, policy_r, ref_c, ref_r, beta)
            - dpo_loss_per_pair(aux_c, aux_r, ref_c, ref_r, beta))


def irm(policy_c, policy_r, ref_c, ref_r, beta: float) -> np.ndarray:
    """Step 3 of "Second seed": IRM(z) = β·log π_θ(y_w|x)/π_ref(y_w|x) − β·log π_θ(y_l|x)/π_ref(y_l|x)."""
    return beta * log_ratio_margin(policy_c, policy_r, ref_c, ref_r)
