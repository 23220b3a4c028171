"""Per-aspect Bradley–Terry reward models (paper Sec. 4.1–4.2, Eq. 11, 16, 17) on Ray Train.

Modules: ``config`` (:class:`RMConfig`, the stage's defaults, and ``trl_args``: its mapping to
``trl.RewardConfig``), ``model_set`` (the reward-model
set manifest ``rm_set.json`` that scoring reads), ``dataset``, ``sampling``, ``losses`` (the TRL
trainer), ``worker`` (one Ray Train worker), ``train`` (the driver), ``metrics`` (quality gates).
The names below are loaded on first use, so reading a reward-model set (scoring, the CLI) does
not import torch and trl.
"""

from __future__ import annotations

from pdray.lazy import lazy_names

_HOME = {
    "PAPER_SYSTEM_PROMPTS": "config", "RMConfig": "config", "trl_args": "config",
    "RewardModelSet": "model_set",
    "delta_len": "dataset", "training_rows": "dataset",
    "bt_loss": "losses", "margin_for": "losses",
    "conflict_matrix": "metrics", "evaluate_set": "metrics",
    "balanced_shares": "sampling", "length_balanced_indices": "sampling",
    "length_balanced_sample": "sampling",
    "train_reward_models": "train",
}

__all__ = ["PAPER_SYSTEM_PROMPTS", "RMConfig", "RewardModelSet", "balanced_shares", "bt_loss",
           "conflict_matrix", "delta_len", "evaluate_set", "length_balanced_indices",
           "length_balanced_sample", "margin_for", "train_reward_models", "training_rows",
           "trl_args"]


__getattr__, __dir__ = lazy_names(__name__, _HOME)
