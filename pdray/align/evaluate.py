"""Built-in evaluation of a trained policy: held-out preference accuracy of its implicit reward
r(x, y) = β·log π_θ(y|x)/π_ref(y|x) (Eq. 2–3; a pair is correct when r(x, y_w) > r(x, y_l)),
split by aspect and by conflicting / non-conflicting pairs (Def. 3.3: the aspect label disagrees
with the mean-of-aspects preference; needs ground-truth ratings), and the mean length of greedy
samples on a few prompts (length bias is a failure mode to watch)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from pdray.align.logprobs import sequence_logprobs
from pdray.data.stats import conflict_flags


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _load(path, trust_remote_code: bool):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(path), trust_remote_code=trust_remote_code).to(_device()).eval()


def _load_tok(path, trust_remote_code: bool):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def accuracy_report(margin: np.ndarray, pairs: pa.Table) -> dict:
    """Accuracy of ``margin > 0`` overall, by ``aspect`` and by conflict (pure function)."""
    correct = margin > 0
    mean = (lambda m: float(correct[m].mean()) if m.any() else float("nan"))
    out = {"accuracy": float(correct.mean()) if len(correct) else float("nan"),
           "n": len(correct), "mean_margin": float(margin.mean()) if len(margin) else 0.0}
    if "aspect" in pairs.column_names:
        asp = np.asarray(pairs["aspect"].to_pylist(), dtype=object)
        out["by_aspect"] = {a: mean(asp == a) for a in sorted(set(asp))}
        out["n_by_aspect"] = {a: int((asp == a).sum()) for a in sorted(set(asp))}
    flags = conflict_flags(pairs) if "aspect" in pairs.column_names else np.full(len(margin), np.nan)
    if len(flags) and not np.all(np.isnan(flags)):
        out["conflicting"], out["n_conflicting"] = mean(flags < 0), int((flags < 0).sum())
        out["non_conflicting"], out["n_non_conflicting"] = mean(flags > 0), int((flags > 0).sum())
    return out


def implicit_reward_accuracy(model_dir, ref_dir, pairs: pa.Table, *, beta: float = 0.1,
                             max_length: int = 512, batch_size: int = 8,
                             trust_remote_code: bool = False) -> dict:
    """Held-out preference accuracy of the implicit reward of ``model_dir`` against ``ref_dir``.

    margin(z) = β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))]
    (the DPO margin M_θ of Eq. 3). Returns ``accuracy``, ``n``, ``mean_margin``, ``by_aspect``
    and, with ground-truth ratings, ``conflicting`` / ``non_conflicting`` (+ their counts).
    """
    tok = _load_tok(model_dir, trust_remote_code)
    p, c, r = (pairs[k].to_pylist() for k in ("prompt", "chosen", "rejected"))
    lp = {}
    with torch.inference_mode():
        for name, path in (("pol", model_dir), ("ref", ref_dir)):
            m = _load(path, trust_remote_code)
            lp[name] = [sequence_logprobs(m, tok, p, y, batch_size=batch_size,
                                          max_length=max_length).cpu() for y in (c, r)]
            del m
    margin = (beta * ((lp["pol"][0] - lp["ref"][0]) - (lp["pol"][1] - lp["ref"][1]))).numpy()
    return accuracy_report(margin, pairs)


def sample_lengths(model_dir, prompts: list[str], *, max_new_tokens: int = 64,
                   trust_remote_code: bool = False) -> float:
    """Mean number of new tokens of greedy samples on ``prompts`` (chat template if any)."""
    tok = _load_tok(model_dir, trust_remote_code)
    model = _load(model_dir, trust_remote_code)
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
