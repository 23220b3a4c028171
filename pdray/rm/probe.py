"""Head-only reward models (``rm.train_backbone: false``): a linear probe on frozen features.

The backbone is not trained. Its pooled last hidden state φ(x, y) (the model's own pooling,
:mod:`pdray.models.reward`: the masked mean for ``mean``, the last token's state for decoders'
``native``) is computed once per response, and only the scalar head w is fitted, by the same
Bradley–Terry loss as full training (Eq. 11, with the length term of Eq. 17 in the mode's form,
:func:`pdray.rm.losses.bt_loss`) plus an L2 penalty α‖w‖²:

    min_w  mean_i −log σ(w·(φ(x, y_w) − φ(x, y_l)) [± length term])  +  α‖w‖²

on standardised features, by L-BFGS; α is chosen from ``rm.head_l2`` by the held-out BT loss on
the dev split (the one early stopping uses), then refitted on fit + dev. With the learned length
mode the per-aspect coefficient ρ̂_k is fitted jointly and, as in full training, not part of the
saved reward. The saved model is the backbone plus this head, a plain classifier like any other.

Why: one forward pass per response instead of ~60 optimizer steps of forward + backward makes a
100M+ backbone (SmolLM2-135M) affordable on CPU, and on a small D_k (hundreds of pairs) a
regularised probe of a pretrained model can generalise better than fine-tuning it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pdray.errors import ConfigError
from pdray.models.formatting import default_batch_tokens
from pdray.models.reward import _head, linear_head, pad_batch, token_batches
from pdray.rm.losses import bt_loss


def pooled_states(model, pooling: str, encoded: Sequence[Sequence[int]], pad_id: int, *,
                  batch_tokens: int | None = None, progress=None) -> np.ndarray:
    """φ for every encoded input (rows × hidden), the vector the model's linear head reads."""
    if linear_head(model) is None:
        raise ConfigError(f"rm.train_backbone=false needs a single linear head; "
                          f"{type(model).__name__} has none")
    is_decoder = hasattr(model, "score")
    if pooling == "native" and not is_decoder:
        raise ConfigError("rm.train_backbone=false with native pooling needs a decoder "
                          "(last-token head); use rm.pooling=mean for encoders")
    head = _head(model)
    batch_tokens = batch_tokens or default_batch_tokens(model.device.type == "cuda")
    out = np.zeros((len(encoded), head.in_features), dtype=np.float32)
    model.eval()
    done = 0
    with torch.inference_mode():
        for b in token_batches([len(x) for x in encoded], batch_tokens):
            ids, mask = pad_batch([encoded[i] for i in b], pad_id)
            hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            if pooling == "mean":
                m = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
            else:  # right padding: the last real token of each row
                last = mask.sum(1) - 1
                pooled = hidden[torch.arange(len(b)), last]
            out[b] = pooled.float().numpy()
            done += len(b)
            if progress:
                progress(done, len(encoded))
    return out


@dataclass
class ProbeFit:
    """The fitted head (in the backbone's feature units), the learned length coefficient and
    what was measured on the way."""

    weight: np.ndarray          # (hidden,)
    length_coef: float | None
    l2: float
    dev_loss: float | None      # held-out BT loss at the chosen α (None without a dev split)
    dev_losses: dict            # α → held-out BT loss
    train_loss: float           # BT loss of the final fit on all its rows
    iterations: int


def _fit(dz: torch.Tensor, margin: torch.Tensor, mode: str, l2: float, coef0: float,
         max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    w = torch.zeros(dz.shape[1], dtype=torch.float64, requires_grad=True)
    params = [w]
    coef = None
    if mode == "learned":
        coef = torch.tensor(float(coef0), dtype=torch.float64, requires_grad=True)
        params.append(coef)
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        r = dz @ w
        loss = bt_loss(r, torch.zeros_like(r), margin, mode, coef) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    its = int(opt.state[opt._params[0]].get("n_iter", 0))
    return w.detach(), (coef.detach() if coef is not None else None), its


def _loss(dz, margin, mode, w, coef) -> float:
    r = dz @ w
    return float(bt_loss(r, torch.zeros_like(r), margin, mode, coef))


def fit_head(d_fit: np.ndarray, margin_fit: np.ndarray, d_dev: np.ndarray | None,
             margin_dev: np.ndarray | None, *, length_debias: str, l2_grid: Sequence[float],
             coef0: float = 0.0) -> ProbeFit:
    """Fit w on feature differences d = φ(x, y_w) − φ(x, y_l) (rows × hidden).

    Features are divided by their scale s (the RMS of d over the fitting rows, per dimension),
    so α means the same for every backbone; the returned weight is w/s, in the backbone's units.
    α is the grid value with the lowest held-out BT loss on the dev rows (the smallest α when
    there are none), then the fit is repeated on fit + dev rows.
    """
    if len(l2_grid) == 0:
        raise ConfigError("rm.head_l2 needs at least one value")
    scale = np.sqrt(np.mean(np.square(d_fit), axis=0)) + 1e-8
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))
    fz, fm = t(d_fit / scale), t(margin_fit)
    dev_losses: dict = {}
    has_dev = d_dev is not None and len(d_dev) > 0
    if has_dev and len(l2_grid) > 1:
        dz, dm = t(d_dev / scale), t(margin_dev)
        for a in l2_grid:
            w, c, _ = _fit(fz, fm, length_debias, float(a), coef0)
            dev_losses[float(a)] = _loss(dz, dm, length_debias, w, c)
        best = min(dev_losses, key=lambda a: (dev_losses[a], a))
    else:
        best = float(min(l2_grid))
    if has_dev:
        fz = torch.cat([fz, t(d_dev / scale)])
        fm = torch.cat([fm, t(margin_dev)])
    w, c, its = _fit(fz, fm, length_debias, best, coef0)
    train = _loss(fz, fm, length_debias, w, c)
    return ProbeFit(weight=(w.numpy() / scale), length_coef=float(c) if c is not None else None,
                    l2=best, dev_loss=dev_losses.get(best), dev_losses=dev_losses,
                    train_loss=train, iterations=its)


def train_probe(model, tok, pooling: str, rows: dict, eval_rows: dict | None, *,
                num_labels: int, length_debias: str, l2_grid: Sequence[float],
                coef0: Sequence[float] | None, echo=print, name: str = "") -> dict:
    """Fit every head of ``model`` in place on the training rows of
    :func:`pdray.rm.dataset.training_rows` (``chosen_ids``, ``rejected_ids``, ``margin``,
    ``head``); the metrics in the shape the full-training worker reports."""
    def states(r: dict, what: str) -> tuple[np.ndarray, np.ndarray]:
        n = len(r["chosen_ids"])
        shown = [0]

        def progress(done, total):   # about every fifth of the responses, and the last
            if done * 5 // total > shown[0] or done == total:
                shown[0] = done * 5 // total
                echo(f"[rm:{name}] frozen features ({what}): {done}/{total} responses")

        phi = pooled_states(model, pooling, list(r["chosen_ids"]) + list(r["rejected_ids"]),
                            tok.pad_token_id, progress=progress)
        return phi[:n] - phi[n:], np.asarray(r["margin"], dtype=np.float64)

    d_fit, m_fit = states(rows, "fit")
    d_dev, m_dev = states(eval_rows, "dev") if eval_rows else (None, None)
    h_fit = np.asarray(rows.get("head") or [0] * len(d_fit))
    h_dev = np.asarray(eval_rows.get("head") or [0] * len(d_dev)) if eval_rows else None
    head = _head(model)
    weight = np.zeros((num_labels, head.in_features), dtype=np.float64)
    coefs, fits = [], []
    for k in range(num_labels):
        f, dv = h_fit == k, (h_dev == k) if h_dev is not None else None
        fit = fit_head(d_fit[f], m_fit[f], d_dev[dv] if dv is not None else None,
                       m_dev[dv] if dv is not None else None, length_debias=length_debias,
                       l2_grid=l2_grid, coef0=(coef0[k] if coef0 else 0.0))
        weight[k] = fit.weight
        coefs.append(fit.length_coef)
        fits.append(fit)
        dev = f", held-out BT loss {fit.dev_loss:.4f}" if fit.dev_loss is not None else ""
        echo(f"[rm:{name}] head {k}: α = {fit.l2:g}{dev}, BT loss {fit.train_loss:.4f} "
             f"({fit.iterations} L-BFGS iterations)")
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        if head.bias is not None:
            head.bias.zero_()
    dev_losses = [f.dev_loss for f in fits if f.dev_loss is not None]
    return {"train_loss": float(np.mean([f.train_loss for f in fits])), "first_loss": math.log(2),
            "steps": int(sum(f.iterations for f in fits)), "planned_steps": None,
            "best_eval_loss": float(np.mean(dev_losses)) if dev_losses else None,
            "best_step": None, "eval_losses": dev_losses, "stopped_early": False,
            "head_l2": [f.l2 for f in fits],
            "length_coef": coefs if length_debias == "learned" else None}
