"""DMPO (paper Eq. 2–5, 39): −log σ(κ·M_θ(z) + Δφ_k(z)), with Δφ estimated by PD(z).

M_θ(z) = β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))] is DPO's
margin; κ is the number of aspects. With Δφ = 0 and κ = 1 it is exactly DPO.
:class:`DMPOTrainer` is TRL's DPOTrainer with this loss; its arguments are a :class:`DMPOConfig`
(TRL's DPOConfig carrying κ).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from trl import DPOConfig, DPOTrainer

from pdray.align.logprobs import completion_logps


def dpo_margin(pc, pr, rc, rr, beta: float) -> torch.Tensor:
    """DPO's margin M_θ(z) = β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) −
    log π_ref(y_l|x))] (Eq. 2–3), from per-pair sequence log-probs."""
    return beta * ((pc - rc) - (pr - rr))


def dmpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
              pd, beta: float, kappa: int) -> torch.Tensor:
    """Per-pair DMPO loss ℓ(z) = −log σ(κ·M_θ(z) + Δφ_k(z)) (paper Eq. 39; Eq. 2–5 give DPO's
    M_θ), with the aspect-conflict offset Δφ_k(z) estimated by the normalised PD(z) (Eq. 15).

    All log-prob arguments are per-pair sums over response tokens (shape ``[B]``); ``pd`` is
    ``[B]``; gradients flow through the policy terms. κ = 1, PD = 0 gives DPO's −log σ(M_θ).
    """
    m = dpo_margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                   ref_rejected_logps, beta)
    return -F.logsigmoid(kappa * m + pd)


class PDCollator:
    """Wraps TRL's DPO collator and carries the per-pair ``pd`` column."""

    def __init__(self, base):
        self.base = base

    def __call__(self, examples):
        out = self.base(examples)
        out["pd"] = torch.tensor([float(e["pd"]) for e in examples], dtype=torch.float32)
        return out


@dataclass
class DMPOConfig(DPOConfig):
    """TRL's DPOConfig plus DMPO's κ (Eq. 39), which :class:`DMPOTrainer` reads as
    ``args.kappa``."""

    kappa: int = field(default=1, metadata={"help": "DMPO κ: the number of aspects; the DPO "
                                            "margin is scaled by κ before PD is added"})

    def __post_init__(self):
        if isinstance(self.kappa, bool) or not isinstance(self.kappa, int) or self.kappa < 1:
            raise ValueError(f"kappa must be an integer ≥ 1, got {self.kappa!r}")
        super().__post_init__()


class DMPOTrainer(DPOTrainer):
    """TRL's DPOTrainer (data handling, reference model, precomputed reference log-probs,
    DeepSpeed, checkpoints) with the DMPO loss; ``args`` is a :class:`DMPOConfig` (κ)."""

    def __init__(self, *args, **kwargs):
        train_args = kwargs["args"] if "args" in kwargs else (args[2] if len(args) > 2 else None)
        if not isinstance(train_args, DMPOConfig):
            raise TypeError(f"DMPOTrainer needs args=DMPOConfig(..., kappa=κ), got "
                            f"{type(train_args).__name__}")
        super().__init__(*args, **kwargs)
        self.data_collator = PDCollator(self.data_collator)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "pd" not in self._signature_columns:
            self._signature_columns = list(self._signature_columns) + ["pd"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Policy log-probs on [chosen; rejected], reference log-probs from the precomputed
        columns or TRL's own reference pass (frozen copy, or the PEFT model with its adapter
        disabled), then the mean of :func:`dmpo_loss` over the batch."""
        inputs = dict(inputs)
        pd = inputs.pop("pd")
        ids, att, comp = inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"]
        logps = completion_logps(model, ids, att, comp)
        pc, pr = logps.chunk(2)
        if "ref_chosen_logps" in inputs:
            rc, rr = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            rc, rr = self.compute_ref_log_probs(self.ref_model or self.model, inputs)
        rc, rr = rc.detach().to(pc.device, pc.dtype), rr.detach().to(pc.device, pc.dtype)
        losses = dmpo_loss(pc, pr, rc, rr, pd.to(pc.device, pc.dtype), self.beta,
                          self.args.kappa)
        loss = losses.mean()
        mode = "train" if model.training else "eval"
        with torch.no_grad():
            m = dpo_margin(pc, pr, rc, rr, self.beta)
            self._metrics[mode]["rewards/accuracies"].append((m > 0).float().mean().item())
            self._metrics[mode]["rewards/margins"].append(m.mean().item())
            self._metrics[mode]["dmpo/pd_mean"].append(pd.float().mean().item())
        return (loss, None) if return_outputs else loss
