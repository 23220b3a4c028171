"""The second seed's selector: LossDiff-IRM, model-dependent scoring (METHOD.md, "Second seed").

warm-up (DPO of θ on D, θ_val on a held-out validation set) → Ray Data log-prob scoring of every
pair under θ, π_ref and θ_val (LossDiff, IRM) → the middle percentile band of both scores.
``hybrid`` compares it with PD selection and the PD × IRM hybrids (the ``pd_irm`` selector).
The names below are loaded on first use, so reading the config does not import torch.
"""

from __future__ import annotations

from pdray.lazy import lazy_names

# light; and the function ``warmup`` must win over the submodule of that name, which
# importing it would bind
from pdray.lossdiff.warmup import WarmupResult, split_validation, warmup

_HOME = {
    "LossDiffConfig": "config", "WarmupDPO": "config",
    "dpo_loss_per_pair": "math", "irm": "math", "lossdiff": "math",
    "SCORE_COLUMNS": "logprob_scores", "LossDiffSelection": "logprob_scores",
    "read_logprob_scores": "logprob_scores", "score_logprobs": "logprob_scores",
    "lossdiff_irm_selection": "logprob_scores",
}

__all__ = sorted([*_HOME, "WarmupResult", "split_validation", "warmup"])

__getattr__, __dir__ = lazy_names(__name__, _HOME)
