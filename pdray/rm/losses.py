"""Bradley–Terry reward losses with length debiasing (paper Eq. 11, 17) and the trainer that
applies them: TRL's ``RewardTrainer`` with pdray's forward pass, heads and optimizer groups.

Every training row carries a ``margin`` column (TRL's name) holding the length feature of the
pair; how it enters the loss depends on ``length_debias`` (:func:`bt_loss`):

* ``penalty`` (Eq. 17): margin = ρ·Δlen               →  −log σ(Δr − ρ·Δlen)
* ``poe`` (fixed product of experts): margin = ρ·Δlen →  −log σ(Δr + ρ·Δlen); scored as Δr
* ``learned`` (product of experts with a learned coefficient): margin = Δlen / s (s: the std
  of Δlen in the unit's training rows) → −log σ(Δr + w_k·Δlen/s), w_k trained jointly with the
  model, one per head; scored as Δr alone, so a model that learned nothing gives gaps ≈ 0
  instead of −ρ·Δlen. ρ̂_k = w_k / s is reported per token.
* ``none`` (plain Bradley–Terry, Eq. 11): margin = 0

``multi_head`` mode (one backbone, κ scalar heads) carries the head index of each pair in a
``head`` column (:class:`HeadCollator`); each pair trains only its own aspect's head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from pdray.length_modes import LENGTH_MODES
from pdray.models.reward import head_parameter_names, reward_output

LENGTH_COEF = "pdray_length_coef"


def length_scale(dlen) -> float:
    """s of the learned mode: the standard deviation of Δlen (1 when it is 0)."""
    s = float(np.std(np.asarray(dlen, dtype=np.float64))) if len(dlen) else 0.0
    return s if s > 0 else 1.0


def fit_length_coef(feature, iters: int = 50) -> float:
    """Maximum-likelihood w of the length expert alone, −Σ log σ(w·x) over the pairs' length
    features x = Δlen/s (Newton's method; 0 when x is all 0). The learned mode starts from it,
    so the length expert explains what length explains from the first step and the model is
    left the rest. Bounded to ±20 when the data are separable by length."""
    x = np.asarray(feature, dtype=np.float64)
    if not len(x) or not np.any(x):
        return 0.0
    w = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-w * x))
        grad = np.sum((1.0 - p) * x)
        hess = np.sum(p * (1.0 - p) * x * x)
        if hess <= 1e-12:
            break
        step = grad / hess
        w = float(np.clip(w + step, -20.0, 20.0))
        if abs(step) < 1e-8:
            break
    return w


def margin_for(dlen, rho: float, length_debias: str, scale: float = 1.0) -> np.ndarray:
    """The ``margin`` column for Δlen (tokens): ρ·Δlen (penalty, poe), Δlen/scale (learned), 0."""
    d = np.asarray(dlen, dtype=np.float64)
    if length_debias in ("penalty", "poe"):
        return rho * d
    if length_debias == "learned":
        return d / scale
    if length_debias == "none":
        return np.zeros_like(d)
    raise ValueError(f"length_debias must be one of {LENGTH_MODES}, got {length_debias!r}")


def bt_loss(r_w: torch.Tensor, r_l: torch.Tensor, margin: torch.Tensor | None,
            length_debias: str, coef: torch.Tensor | float | None = None) -> torch.Tensor:
    """Mean Bradley–Terry loss over pairs (Eq. 11) with the length term (Eq. 17).

    ``margin`` is the pair's length feature (:func:`margin_for`). penalty: −log σ(Δr − margin);
    poe: −log σ(Δr + margin); learned: −log σ(Δr + coef·margin); none: −log σ(Δr).
    With an unconstrained reward r, the penalty loss equals plain BT on r' = r − ρ·len(y), i.e.
    it re-parameterises the fitted score; it only acts through finite training (METHOD.md).
    """
    diff = r_w - r_l
    if margin is not None:
        margin = torch.as_tensor(margin, dtype=diff.dtype, device=diff.device)
        if length_debias == "penalty":
            diff = diff - margin
        elif length_debias == "poe":
            diff = diff + margin
        elif length_debias == "learned":
            diff = diff + (coef if coef is not None else 0.0) * margin
    return -nn.functional.logsigmoid(diff).mean()


class HeadCollator(DataCollatorForPreference):
    """TRL's preference collator plus the scalar-head index of every pair (multi-head mode)."""

    def torch_call(self, examples):
        out = super().torch_call(examples)
        out["head"] = torch.tensor([e["head"] for e in examples], dtype=torch.long)
        return out


def add_length_coef(model, init) -> None:
    """Register the learned length coefficients w (one per head, starting at ``init``) on
    ``model`` so they are trained, checkpointed and resumed with it (removed again before the
    final save)."""
    setattr(model, LENGTH_COEF, nn.Parameter(torch.tensor(list(init), dtype=torch.float32)))


def pop_length_coef(model) -> list[float] | None:
    """Remove the learned coefficients from ``model`` (before ``save_pretrained``); their values."""
    coef = getattr(model, LENGTH_COEF, None)
    if coef is None:
        return None
    delattr(model, LENGTH_COEF)
    return [float(x) for x in coef.detach().cpu()]


class PdrayRewardTrainer(RewardTrainer):
    """TRL's RewardTrainer with pdray's reward forward pass (the model's pooling, installed by
    :func:`pdray.models.reward.install_forward`), κ heads, the four
    length modes of :func:`bt_loss`, and a separate learning rate for the fresh scalar head
    (and the learned length coefficients)."""

    def __init__(self, *args, length_debias: str, head_lr: float | None = None,
                 **kwargs):
        self.length_debias, self.head_lr = length_debias, head_lr
        model = kwargs.get("model")
        config = getattr(model, "config", None)
        if config is not None and getattr(config, "num_labels", 1) != 1:
            # TRL allows one scalar head; κ heads (multi_head) are pdray's, picked per pair in
            # compute_loss. Show TRL a one-label copy of the config while it initialises.
            import copy

            one = copy.deepcopy(config)
            one.num_labels = 1
            model.config = one
            try:
                super().__init__(*args, **kwargs)
            finally:
                model.config = config
            return
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is not None or self.head_lr is None or self.is_deepspeed_enabled:
            return super().create_optimizer() if model is None else super().create_optimizer(model)
        model = self.model
        head = head_parameter_names(model)
        fast = [p for n, p in model.named_parameters()
                if p.requires_grad and (n in head or n.split(".")[-1] == LENGTH_COEF)]
        ids = {id(p) for p in fast}
        slow = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": slow, "lr": self.args.learning_rate,
                   "weight_decay": self.args.weight_decay},
                  {"params": fast, "lr": self.head_lr, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]],
                                           betas=(self.args.adam_beta1, self.args.adam_beta2),
                                           eps=self.args.adam_epsilon)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        head = inputs.pop("head", None)
        margin = inputs.pop("margin", None)
        out = reward_output(model, inputs["input_ids"], inputs["attention_mask"])
        logits = out.logits
        if head is None:
            rewards = logits[:, 0]
        else:
            rewards = logits.gather(1, head.repeat(2).unsqueeze(1)).squeeze(1)
        r_w, r_l = torch.chunk(rewards, 2)
        coef = None
        if self.length_debias == "learned":  # returned by the forward pass (install_forward)
            w = out["length_coef"]
            coef = w[head] if head is not None else w[0]
        loss = bt_loss(r_w, r_l, margin, self.length_debias, coef)
        with torch.no_grad():
            self._metrics[mode]["accuracy"].append((r_w > r_l).float().mean().item())
            self._metrics[mode]["margin"].append((r_w - r_l).mean().item())
        if return_outputs:
            return loss, {"logits": logits}
        return loss
