"""Alignment on the selected subset: DPO and DMPO (Eq. 2–5, 39) with TRL under Ray Train.

Modules: ``config`` (:class:`DPOConfig`, the stage's defaults, and ``trl_args``: its mapping to
``trl.DPOConfig``), ``dmpo`` (the DMPO loss, ``DMPOConfig``, ``DMPOTrainer``), ``logprobs`` (the
one sequence log-prob implementation), ``evaluate`` (held-out implicit-reward accuracy),
``data``, ``worker`` (the Ray Train worker), ``train`` (the driver). The names below are loaded
on first use, so reading the config does not import torch and trl.
"""

from __future__ import annotations

from pdray.lazy import lazy_names

_HOME = {
    "DPOConfig": "config", "deepspeed_config": "config", "trl_args": "config",
    "DMPOConfig": "dmpo", "DMPOTrainer": "dmpo", "dmpo_loss": "dmpo", "dpo_margin": "dmpo",
    "implicit_reward_accuracy": "evaluate", "sample_lengths": "evaluate",
    "sequence_logprobs": "logprobs",
    "DPOResult": "train", "train_dpo": "train",
}

__all__ = sorted(_HOME)

__getattr__, __dir__ = lazy_names(__name__, _HOME)
