"""The second seed's selector: LossDiff-IRM, model-dependent scoring (METHOD.md, "Second seed").

warm-up (DPO of θ on D, θ_val on a held-out validation set) → Ray Data log-prob scoring of every
pair under θ, π_ref and θ_val (LossDiff, IRM) → the middle percentile band of both scores.
``hybrid`` compares it with PD selection and the PD × IRM hybrids (the ``pd_irm`` selector).
"""

from pdray.lossdiff.config import LossDiffConfig, WarmupDPO
from pdray.lossdiff.math import dpo_loss_per_pair, irm, lossdiff
from pdray.lossdiff.pipeline import (
                                 SCORE_COLUMNS,
                                 LossDiffSelection,
                                 WarmupResult,
                                 read_logprob_scores,
                                 score_logprobs,
                                 select_lossdiff_irm,
                                 split_validation,
                                 warmup,
)

__all__ = [
                                 "SCORE_COLUMNS",
                                 "LossDiffConfig",
                                 "LossDiffSelection",
                                 "WarmupDPO",
                                 "WarmupResult",
                                 "dpo_loss_per_pair",
                                 "irm",
                                 "lossdiff",
                                 "read_logprob_scores",
                                 "score_logprobs",
                                 "select_lossdiff_irm",
                                 "split_validation",
                                 "warmup",
]
