"""Built-in evaluation of a trained policy: held-out preference accuracy of its implicit reward
r(x, y) = β·log π_θ(y|x)/π_ref(y|x) (Eq. 2–3; a pair is correct when r(x, y_w) > r(x, y_l)),
split by aspect and by conflicting / non-conflicting pairs (Def. 3.3: the aspect label disagrees
with the mean-of-aspects preference; needs ground-truth ratings), and the mean length of greedy
samples on a few prompts (length bias is a failure mode to watch).

Log-probs come from :mod:`pdray.align.logprobs`: the pairs are tokenised and truncated exactly
as TRL's DPOTrainer does it, so the accuracy is measured on the tokens DPO optimises. A pair
whose prompt alone fills ``max_length`` (TRL drops it from training) has no margin and is left
out of the accuracy; ``n_dropped`` counts such pairs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from pdray.align.downstream import consensus_report
from pdray.align.logprobs import (
    encode_pair,
    has_completion,
    load_causal_lm,
    load_tokenizer,
    pad_id_of,
    pair_logprobs,
)
from pdray.data.stats import conflict_flags


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def accuracy_report(margin: np.ndarray, pairs: pa.Table) -> dict:
    """Accuracy of ``margin > 0`` against each pair's own label (``accuracy``, also as
    ``own_label_accuracy``), by ``aspect`` and by conflict, and the accuracy against the
    consensus label (:func:`pdray.align.downstream.consensus_report`; pure function)."""
    correct = margin > 0
    mean = (lambda m: float(correct[m].mean()) if m.any() else float("nan"))
    acc = float(correct.mean()) if len(correct) else float("nan")
    out = {"accuracy": acc, "own_label_accuracy": acc,
           "n": len(correct), "mean_margin": float(margin.mean()) if len(margin) else 0.0,
           "mean_abs_margin": float(np.abs(margin).mean()) if len(margin) else 0.0}
    if "aspect" in pairs.column_names:
        asp = np.asarray(pairs["aspect"].to_pylist(), dtype=object)
        out["by_aspect"] = {a: mean(asp == a) for a in sorted(set(asp))}
        out["n_by_aspect"] = {a: int((asp == a).sum()) for a in sorted(set(asp))}
    flags = conflict_flags(pairs) if "aspect" in pairs.column_names else np.full(len(margin), np.nan)
    if len(flags) and not np.all(np.isnan(flags)):
        out["conflicting"], out["n_conflicting"] = mean(flags < 0), int((flags < 0).sum())
        out["non_conflicting"], out["n_non_conflicting"] = mean(flags > 0), int((flags > 0).sum())
    out.update(consensus_report(margin, flags))
    return out


def implicit_margins(model_dir, ref_dir, pairs: pa.Table, *, beta: float = 0.1,
                     max_length: int = 1024, batch_tokens: int = 8192,
                     trust_remote_code: bool = False) -> np.ndarray:
    """Per pair, the DPO margin M_θ(z) = β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) −
    (log π_θ(y_l|x) − log π_ref(y_l|x))] (Eq. 3), NaN where truncation leaves no completion.

    Both models score the encoding of ``model_dir``'s tokenizer (TRL uses one tokenizer too).
    ``max_length`` should be the run's (the default is :class:`pdray.align.DPOConfig`'s).
    """
    tok = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    p, c, r = (pairs[k].to_pylist() for k in ("prompt", "chosen", "rejected"))
    enc = [encode_pair(tok, *row, max_length) for row in zip(p, c, r)]
    keep = np.array([has_completion(a) and has_completion(b) for a, b in enc], dtype=bool)
    kept = [e for e, k in zip(enc, keep) if k]
    lp = {}
    with torch.inference_mode():
        for name, path in (("pol", model_dir), ("ref", ref_dir)):
            m, _ = load_causal_lm(path, trust_remote_code=trust_remote_code, dtype=None,
                                  device=_device())
            lp[name] = [t.cpu().double() for t in pair_logprobs(
                m, kept, pad_id=pad_id_of(tok), batch_tokens=batch_tokens)]
            del m
    margin = np.full(len(enc), np.nan)
    if kept:
        margin[keep] = (beta * ((lp["pol"][0] - lp["ref"][0])
                                - (lp["pol"][1] - lp["ref"][1]))).numpy()
    return margin


def implicit_reward_accuracy(model_dir, ref_dir, pairs: pa.Table, *, beta: float = 0.1,
                             max_length: int = 1024, batch_tokens: int = 8192,
                             trust_remote_code: bool = False) -> dict:
    """Held-out preference accuracy of the implicit reward of ``model_dir`` against ``ref_dir``.

    A pair is correct when its margin (:func:`implicit_margins`) is positive. Returns
    ``accuracy``, ``n``, ``mean_margin``, ``by_aspect``, ``n_dropped`` (pairs whose prompt fills
    ``max_length``, not counted) and, with ground-truth ratings, ``conflicting`` /
    ``non_conflicting`` (+ their counts).
    """
    margin = implicit_margins(model_dir, ref_dir, pairs, beta=beta, max_length=max_length,
                              batch_tokens=batch_tokens, trust_remote_code=trust_remote_code)
    keep = ~np.isnan(margin)
    out = accuracy_report(margin[keep], pairs.filter(pa.array(keep)))
    out["n_dropped"] = int((~keep).sum())
    return out


def sample_lengths(model_dir, prompts: list[str], *, max_new_tokens: int = 64,
                   trust_remote_code: bool = False) -> float:
    """Mean number of new tokens of greedy samples on ``prompts`` (chat template if any)."""
    model, tok = load_causal_lm(model_dir, trust_remote_code=trust_remote_code, dtype=None,
                                device=_device())
    lens = []
    with torch.inference_mode():
        for p in prompts:
            if getattr(tok, "chat_template", None):
                ids = tok.apply_chat_template([{"role": "user", "content": p}],
                                              add_generation_prompt=True, return_tensors="pt",
                                              return_dict=True)
            else:
                ids = tok(p, return_tensors="pt")
            ids = {k: v.to(model.device) for k, v in ids.items()}
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
            new = out[0, ids["input_ids"].shape[1]:].tolist()
            if tok.eos_token_id is not None and tok.eos_token_id in new:
                new = new[: new.index(tok.eos_token_id) + 1]
            lens.append(len(new))
    return float(np.mean(lens)) if lens else 0.0
