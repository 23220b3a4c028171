"""Turn canonical pairs into RewardTrainer rows: token ids exactly as scoring will see them
(:func:`pdray.models.formatting.encode_reward_inputs`), the length feature ``margin`` of the
unit's length mode (:func:`pdray.rm.losses.margin_for`) and (multi-head) the head index."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pdray.models.formatting import (
    DEFAULT_RESPONSE_SHARE,
    encode_reward_inputs,
    response_token_lens,
)
from pdray.rm.losses import margin_for


def delta_len(tokenizer, table: pa.Table) -> np.ndarray:
    """Δlen = len(y_w) − len(y_l) in the reward tokenizer's tokens (Eq. 17)."""
    c = response_token_lens(tokenizer, table["chosen"].to_pylist())
    r = response_token_lens(tokenizer, table["rejected"].to_pylist())
    return np.asarray(c, dtype=np.int64) - np.asarray(r, dtype=np.int64)


def training_rows(tokenizer, table: pa.Table, *, max_length: int, rho: float, length_debias: str,
                  system_prompts: dict[str, str] | None = None,
                  heads: dict[str, int] | None = None, length_scale: float = 1.0,
                  response_share: float = DEFAULT_RESPONSE_SHARE) -> dict[str, list]:
    """Columns ``chosen_ids``, ``rejected_ids``, ``margin`` (and ``head``) for RewardTrainer."""
    prompts = table["prompt"].to_pylist()
    aspects = table["aspect"].to_pylist()
    sys = [system_prompts.get(a) if system_prompts else None for a in aspects]
    kw = {"max_length": max_length, "response_share": response_share}
    chosen, _ = encode_reward_inputs(tokenizer, prompts, table["chosen"].to_pylist(), sys, **kw)
    rejected, _ = encode_reward_inputs(tokenizer, prompts, table["rejected"].to_pylist(), sys, **kw)
    rows = {"chosen_ids": chosen, "rejected_ids": rejected,
            "margin": margin_for(delta_len(tokenizer, table), rho, length_debias,
                                 length_scale).tolist()}
    if heads is not None:
        rows["head"] = [heads[a] for a in aspects]
    return rows
