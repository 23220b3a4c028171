"""Sequence log-probabilities of chosen and rejected responses, and the Ray Data actor.

log π(y|x) = Σ_{t ∈ response} log softmax(f(x, y_<t))[y_t]: the sum over the response tokens
only, the prompt being context. With a chat template the text is rendered exactly as TRL's
DPOTrainer renders conversational pairs (prompt with ``add_generation_prompt=True``; the
response starts where prompt and prompt+response token ids diverge), so the scored log-probs
are the ones the warm-up DPO optimised. Without a template: ``prompt`` then ``response + eos``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from pdray.align.logprobs import common_prefix
from pdray.lossdiff import math as LM
from pdray.models.reward import token_batches
from pdray.schema import text_errors

MODELS = ("policy", "ref", "aux")
LOGP_COLUMNS = tuple(f"{m}_{s}_logp" for m in MODELS for s in ("chosen", "rejected"))


def encode_pair(tokenizer, prompt: str, response: str, max_length: int) -> tuple[list[int], int]:
    """(token ids of prompt+response, number of leading prompt tokens).

    Truncation keeps the start of the response (at most ``max_length − 1`` tokens) and the end
    of the prompt (at least one token, so the first response token has a context).
    """
    if getattr(tokenizer, "chat_template", None):
        user = [{"role": "user", "content": prompt}]
        p_text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        f_text = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": response}],
                                               tokenize=False)
        p_ids = tokenizer(p_text, add_special_tokens=False)["input_ids"]
        f_ids = tokenizer(f_text, add_special_tokens=False)["input_ids"]
    else:
        p_ids = tokenizer(prompt)["input_ids"]
        f_ids = tokenizer(prompt + response + (tokenizer.eos_token or ""))["input_ids"]
    n_p = common_prefix(p_ids, f_ids)
    if n_p == 0:  # nothing shared (no BOS, merged boundary): keep one token of context
        n_p = 1
    prompt_ids, resp_ids = f_ids[:n_p], f_ids[n_p:]
    if not resp_ids:
        raise ValueError("the response has no tokens after the prompt")
    resp_ids = resp_ids[: max_length - 1]
    keep_p = max(1, max_length - len(resp_ids))
    prompt_ids = prompt_ids[-keep_p:]
    return prompt_ids + resp_ids, len(prompt_ids)


def logprobs_of_encoded(model, encoded: Sequence[tuple[list[int], int]], *, pad_id: int,
                        batch_tokens: int = 8192, device=None) -> np.ndarray:
    """Σ log p(response tokens) per encoded sequence, batched by a padded-token budget."""
    import torch

    device = device or next(model.parameters()).device
    out = np.zeros(len(encoded), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for b in token_batches([len(ids) for ids, _ in encoded], batch_tokens):
            L = max(len(encoded[i][0]) for i in b)
            ids = torch.full((len(b), L), pad_id, dtype=torch.long)
            att = torch.zeros((len(b), L), dtype=torch.long)
            tgt = torch.zeros((len(b), L - 1), dtype=torch.bool)
            for r, i in enumerate(b):
                seq, n_p = encoded[i]
                ids[r, : len(seq)] = torch.tensor(seq)
                att[r, : len(seq)] = 1
                tgt[r, n_p - 1: len(seq) - 1] = True  # logits at t-1 predict token t
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits
            logits = logits[:, :-1].float()
            nxt = ids[:, 1:].to(device)
            tok_lp = logits.gather(-1, nxt.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)
            tok_lp = torch.where(tgt.to(device), tok_lp, torch.zeros_like(tok_lp))
            out[b] = tok_lp.double().sum(-1).cpu().numpy()
    return out


def sequence_logprobs(model, tokenizer, prompts: Sequence[str], responses: Sequence[str], *,
                      batch_tokens: int = 8192, max_length: int = 1024) -> np.ndarray:
    """log π(response | prompt) for every row: the sum over response tokens (see module doc)."""
    enc = [encode_pair(tokenizer, p, r, max_length) for p, r in zip(prompts, responses)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return logprobs_of_encoded(model, enc, pad_id=pad, batch_tokens=batch_tokens)


def load_causal_lm(path: str, *, trust_remote_code: bool = False, dtype: str = "float32",
                   device: str = "cpu"):
    """(model, tokenizer) from a local HF folder, eval mode, pad token set."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                 dtype=getattr(torch, dtype))
    return model.to(device).eval(), tok


def _tok_key(tok) -> str:
    blob = json.dumps([sorted(tok.get_vocab().items()), tok.chat_template or "",
                       tok.eos_token or "", tok.bos_token or ""])
    return hashlib.sha256(blob.encode()).hexdigest()


class LogProbActor:
    """Ray Data callable class: loads policy θ, reference π_ref and auxiliary θ_val once per
    actor; ``__call__`` turns a block of pairs into the "Model-dependent scores" contract rows.

    Output: ``id``, ``aspect``, the six ``*_logp`` columns, ``lossdiff``, ``irm``, plus
    ``_shard`` and ``_error`` (null when scored). A row that cannot be scored keeps its error.
    """

    def __init__(self, paths: dict, cfg_json: str):
        import torch

        from pdray.lossdiff.config import LossDiffConfig

        self.cfg = LossDiffConfig.model_validate_json(cfg_json)
        dev = "cuda" if self.cfg.gpus_per_actor > 0 and torch.cuda.is_available() else "cpu"
        if dev == "cpu":
            torch.set_num_threads(max(1, round(self.cfg.cpus_per_actor or 1)))
        self.models, self.toks = {}, {}
        for name in MODELS:
            self.models[name], self.toks[name] = load_causal_lm(
                paths[name], trust_remote_code=self.cfg.trust_remote_code,
                dtype=self.cfg.dtype if dev == "cuda" else "float32", device=dev)
        self.keys = {name: _tok_key(t) for name, t in self.toks.items()}

    def _score(self, prompts, chosen, rejected) -> dict[str, np.ndarray]:
        cache: dict[str, tuple] = {}
        out = {}
        for name in MODELS:
            tok, key = self.toks[name], self.keys[name]
            if key not in cache:  # models sharing a tokenizer share the encoding
                L = self.cfg.max_length
                cache[key] = ([encode_pair(tok, p, c, L) for p, c in zip(prompts, chosen)],
                              [encode_pair(tok, p, r, L) for p, r in zip(prompts, rejected)])
            enc_c, enc_r = cache[key]  # chosen and rejected bucketed together: one pass
            lp = logprobs_of_encoded(self.models[name], enc_c + enc_r, pad_id=tok.pad_token_id,
                                     batch_tokens=self.cfg.batch_tokens)
            out[f"{name}_chosen_logp"], out[f"{name}_rejected_logp"] = lp[:len(enc_c)], lp[len(enc_c):]
        return out

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        cols = {k: batch[k].to_pylist() for k in ("prompt", "chosen", "rejected")}
        errors = text_errors(batch)
        vals = {c: np.full(n, np.nan) for c in LOGP_COLUMNS}
        ok = [i for i in range(n) if errors[i] is None]
        if ok:
            try:
                res = self._score(*([cols[k][i] for i in ok] for k in cols))
                for c in LOGP_COLUMNS:
                    vals[c][ok] = res[c]
            except Exception:  # noqa: BLE001 - retried row by row so one bad row fails alone
                for i in ok:
                    try:
                        r1 = self._score([cols["prompt"][i]], [cols["chosen"][i]],
                                         [cols["rejected"][i]])
                        for c in LOGP_COLUMNS:
                            vals[c][i] = r1[c][0]
                    except Exception as e:  # noqa: BLE001
                        errors[i] = f"{type(e).__name__}: {e}"
        b = self.cfg.beta
        with np.errstate(invalid="ignore"):  # NaN rows are the failed ones, flagged below
            ld = LM.lossdiff(vals["policy_chosen_logp"], vals["policy_rejected_logp"],
                             vals["aux_chosen_logp"], vals["aux_rejected_logp"],
                             vals["ref_chosen_logp"], vals["ref_rejected_logp"], b)
            ir = LM.irm(vals["policy_chosen_logp"], vals["policy_rejected_logp"],
                        vals["ref_chosen_logp"], vals["ref_rejected_logp"], b)
        for i in ok:
            if errors[i] is None and not (np.isfinite(ld[i]) and np.isfinite(ir[i])):
                errors[i] = "non-finite log-probability"
        out = {"id": batch["id"], "aspect": batch["aspect"]}
        out.update({c: pa.array(vals[c], pa.float64()) for c in LOGP_COLUMNS})
        out["lossdiff"] = pa.array(ld, pa.float64())
        out["irm"] = pa.array(ir, pa.float64())
        if "_shard" in batch.column_names:
            out["_shard"] = batch["_shard"]
        out["_error"] = pa.array(errors, pa.string())
        return pa.table(out)
