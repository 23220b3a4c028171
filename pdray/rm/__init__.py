"""Per-aspect Bradley–Terry reward models (paper Sec. 4.1–4.2, Eq. 11, 16, 17) on Ray Train."""

from pdray.rm.config import PAPER_SYSTEM_PROMPTS, RMConfig
from pdray.rm.dataset import delta_len, training_rows
from pdray.rm.losses import bt_loss, margin_for
from pdray.rm.metrics import conflict_matrix, evaluate_set
from pdray.rm.sampling import balanced_shares, length_balanced_indices, length_balanced_sample
from pdray.rm.train import train_reward_models

__all__ = ["PAPER_SYSTEM_PROMPTS", "RMConfig", "balanced_shares", "bt_loss", "conflict_matrix",
           "delta_len", "evaluate_set", "length_balanced_indices", "length_balanced_sample",
           "margin_for", "train_reward_models", "training_rows"]
