"""The reward forward pass: one definition for training, scoring, metrics and the RM judge.

A reward model is a transformers sequence classifier (a plain HF folder, safetensors) whose raw
head logits are the rewards r̂(x, y) — never a sigmoid. How token states become the vector the
scalar head reads is the *pooling*, saved in the folder's ``config.json`` as ``pdray_pooling``:

* ``mean``: the attention-masked mean of the last hidden states, then the model's linear head.
  This is how sentence encoders such as all-MiniLM-L6-v2 were trained to be read; their [CLS]
  pooler (what ``BertForSequenceClassification`` uses) was never trained for it.
* ``native``: the classifier's own pooling — the last non-pad token for decoders
  (``LlamaForSequenceClassification``, Qwen2, SmolLM2 …), the [CLS] pooler for BERT-style models.
  vLLM's ``classify`` runner computes this pooling, so only ``native`` models can use it.

``auto`` (the training default) picks ``mean`` for encoders with a linear ``classifier`` head
and ``native`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from transformers.utils import ModelOutput

from pdray.errors import ConfigError
from pdray.models.formatting import DEFAULT_RESPONSE_SHARE, encode_reward_inputs

POOLINGS = ("auto", "mean", "native")


@dataclass
class RewardOutput(ModelOutput):
    """What pdray's forward pass returns: the head logits and (learned length mode) the
    length coefficients w, one per head."""

    logits: object = None
    length_coef: object = None


POOLING_KEY = "pdray_pooling"


def _head(model):
    """The scalar-head module (``classifier`` for encoders, ``score`` for decoders), looked up
    at call time so a peft wrapper installed later is the one used."""
    for name in ("classifier", "score"):
        head = getattr(model, name, None)
        if head is not None:
            return head
    return None


def linear_head(model):
    """The model's scalar head when it is a single ``nn.Linear`` (or a peft wrapper of one)."""
    from torch import nn

    head = _head(model)
    inner = getattr(head, "original_module", head)
    return head if isinstance(inner, nn.Linear) else None


def head_parameter_names(model) -> set[str]:
    """Names of the parameters of the scalar head (for its own learning rate)."""
    return {n for n, _ in model.named_parameters()
            if any(part in ("classifier", "score") for part in n.split("."))}


def resolve_pooling(model, pooling: str = "auto") -> str:
    """``mean`` or ``native`` for ``model``; ``auto`` = mean for encoders with a linear
    ``classifier`` (BERT, MiniLM, …), native (last token) for decoders."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if pooling != "auto":
        if pooling == "mean" and linear_head(model) is None:
            raise ConfigError(f"pooling 'mean' needs a single linear head; "
                              f"{type(model).__name__} has none (use pooling=native)")
        return pooling
    is_decoder = bool(getattr(model.config, "is_decoder", False)) or hasattr(model, "score")
    return "mean" if (not is_decoder and linear_head(model) is not None) else "native"


def saved_pooling(model) -> str:
    """The pooling a trained reward model was saved with (``native`` for plain HF classifiers)."""
    return getattr(model.config, POOLING_KEY, None) or "native"


def install_forward(model, pooling: str, length_coef: str | None = None):
    """Give ``model`` pdray's forward pass, in place: ``mean`` pooling (module docstring) and,
    with ``length_coef`` (an attribute name), that parameter in the output as
    ``length_coef`` — so every parameter the loss uses is used inside ``forward`` and
    DistributedDataParallel (as Ray Train prepares the model) synchronises it. ``native``
    without a coefficient leaves the model as it is. The saved model is a plain HF classifier
    either way; its pooling is recorded in ``config.pdray_pooling`` (:func:`saved_pooling`)."""
    if pooling == "native" and not length_coef:
        return model
    original = model.forward

    def forward(input_ids=None, attention_mask=None, **kw):
        if pooling == "mean":
            hidden = model.base_model(input_ids=input_ids,
                                      attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
            dropout = getattr(model, "dropout", None)
            logits = _head(model)(dropout(pooled) if dropout else pooled)
        else:
            logits = original(input_ids=input_ids, attention_mask=attention_mask, **kw).logits
        coef = getattr(model, length_coef) * 1.0 if length_coef else None
        return RewardOutput(logits=logits, length_coef=coef)

    model.forward = forward
    return model


def reward_output(model, input_ids, attention_mask):
    """The one reward forward pass (training, scoring, metrics, the RM judge): the output of a
    model given pdray's forward by :func:`install_forward` (as
    :func:`pdray.models.backbones.load_reward_backbone` does) — ``logits`` (batch, num_labels)
    and, in the learned length mode, ``length_coef``. ``model`` may be wrapped (DDP, peft)."""
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)


def reward_forward(model, input_ids, attention_mask):
    """Raw head logits, shape (batch, num_labels): :func:`reward_output`'s ``logits``."""
    return reward_output(model, input_ids, attention_mask).logits


def token_batches(lengths: Sequence[int], batch_tokens: int, max_rows: int = 256) -> list[list[int]]:
    """Group row indices sorted by length so each batch holds ≤ ``batch_tokens`` padded tokens."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, cur, cur_max = [], [], 0
    for i in order:
        L = int(lengths[i])
        new_max = max(cur_max, L)
        if cur and (new_max * (len(cur) + 1) > batch_tokens or len(cur) >= max_rows):
            batches.append(cur)
            cur, new_max = [], L
        cur.append(int(i))
        cur_max = new_max
    if cur:
        batches.append(cur)
    return batches


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int):
    """Right-padded ``(input_ids, attention_mask)`` long tensors."""
    import torch

    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids, mask


def reward_logits_ids(model, pad_id: int, encoded: Sequence[Sequence[int]], *,
                      batch_tokens: int = 16384, device=None) -> np.ndarray:
    """Logits (rows × num_labels) of ``model`` on pre-encoded inputs, length-bucketed."""
    import torch

    device = device or next(model.parameters()).device
    out = np.zeros((len(encoded), model.config.num_labels), dtype=np.float64)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for b in token_batches([len(x) for x in encoded], batch_tokens):
            ids, mask = pad_batch([encoded[i] for i in b], pad_id)
            logits = reward_forward(model, ids.to(device), mask.to(device))
            out[b] = logits.float().cpu().numpy()
    model.train(was_training)
    return out


def pair_rewards(model, tokenizer, prompts, chosen, rejected, *, system_prompt=None,
                 max_length: int, response_share: float | None = None,
                 batch_tokens: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """(r(x, y_w), r(x, y_l)) logits (rows × num_labels) with the shared input encoding."""
    share = DEFAULT_RESPONSE_SHARE if response_share is None else response_share
    n = len(prompts)
    if n == 0:
        k = model.config.num_labels
        return np.zeros((0, k)), np.zeros((0, k))
    enc_c, _ = encode_reward_inputs(tokenizer, prompts, chosen, system_prompt,
                                    max_length=max_length, response_share=share)
    enc_r, _ = encode_reward_inputs(tokenizer, prompts, rejected, system_prompt,
                                    max_length=max_length, response_share=share)
    r = reward_logits_ids(model, tokenizer.pad_token_id, enc_c + enc_r, batch_tokens=batch_tokens)
    return r[:n], r[n:]
