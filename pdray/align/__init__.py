"""Alignment on the selected subset: DPO and DMPO (Eq. 2–5, 39) with TRL under Ray Train."""

from pdray.align.config import DPOConfig, deepspeed_config, trl_args
from pdray.align.dmpo import DMPOConfig, DMPOTrainer, dmpo_loss, dpo_margin
from pdray.align.evaluate import implicit_reward_accuracy, sample_lengths
from pdray.align.logprobs import sequence_logprobs
from pdray.align.train import DPOResult, train_dpo

__all__ = ["DMPOConfig", "DMPOTrainer", "DPOConfig", "DPOResult", "deepspeed_config", "dmpo_loss",
           "dpo_margin", "implicit_reward_accuracy", "sample_lengths", "sequence_logprobs",
           "train_dpo", "trl_args"]
