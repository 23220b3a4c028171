"""The LossDiff scorer: a Ray Data actor that turns blocks of pairs into the six sequence
log-probs (policy θ, reference π_ref, auxiliary θ_val × chosen, rejected), LossDiff and IRM.

Log-probs come from the shared implementation, :mod:`pdray.align.logprobs`: each pair is
tokenised and truncated exactly as TRL's DPOTrainer does it for the warm-up runs, so IRM, the
DPO losses behind LossDiff and DPO's held-out implicit-reward accuracy all measure the tokens
DPO optimised. Following TRL changed two things from LossDiff's earlier encoding: truncation
keeps the *start* of prompt + response (``max_length`` tokens; it used to keep the response
start and cut the prompt's beginning), and a pair whose prompt alone fills ``max_length`` is not
scored (TRL drops it from training; it is recorded as a failed row). Plain-text pairs still end
their responses with EOS (TRL appends it too); chat-template pairs are tokenised by the template
call itself and the response starts at TRL's prompt boundary (the smaller one of chosen and
rejected).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa

from pdray.align.logprobs import (
    encode_pair,
    has_completion,
    load_causal_lm,
    pad_id_of,
    pair_logprobs,
)
from pdray.lossdiff import math as LM
from pdray.lossdiff.config import LossDiffConfig
from pdray.schema import text_errors

MODELS, LOGP_COLUMNS = LM.MODELS, LM.LOGP_COLUMNS


def encode_rows(tok, prompts, chosen, rejected, max_length: int, errors: list) -> list:
    """Per row, :func:`~pdray.align.logprobs.encode_pair` or ``None``; a row that cannot be
    encoded (or keeps no response token after truncation) gets its error in ``errors``."""
    out = []
    for i, row in enumerate(zip(prompts, chosen, rejected)):
        enc = None
        if errors[i] is None:
            try:
                enc = encode_pair(tok, *row, max_length)
                if not (has_completion(enc[0]) and has_completion(enc[1])):
                    errors[i] = (f"the prompt fills max_length={max_length} tokens: no response "
                                 "token left (TRL's DPOTrainer drops such pairs)")
                    enc = None
            except Exception as e:  # noqa: BLE001 - one bad row fails alone
                errors[i] = f"{type(e).__name__}: {e}"
        out.append(enc)
    return out


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

    def _encode(self, cols: dict, errors: list) -> dict[str, list]:
        """Encodings per distinct tokenizer (models sharing one share the encoding)."""
        enc: dict[str, list] = {}
        for name in MODELS:
            if self.keys[name] not in enc:
                enc[self.keys[name]] = encode_rows(self.toks[name], cols["prompt"],
                                                   cols["chosen"], cols["rejected"],
                                                   self.cfg.max_length, errors)
        return enc

    def _score(self, enc: dict[str, list], rows: list[int], progress=None) -> dict[str, np.ndarray]:
        """The six log-prob columns of ``rows``; chosen and rejected share one bucketed pass;
        ``progress(done, total)`` after each model."""
        import torch

        out = {}
        with torch.inference_mode():
            for m, name in enumerate(MODELS):
                tok, pairs = self.toks[name], [enc[self.keys[name]][i] for i in rows]
                lc, lr = pair_logprobs(self.models[name], pairs, pad_id=pad_id_of(tok),
                                       batch_tokens=self.cfg.batch_tokens)
                out[f"{name}_chosen_logp"] = lc.double().cpu().numpy()
                out[f"{name}_rejected_logp"] = lr.double().cpu().numpy()
                if progress:
                    progress(m + 1, len(MODELS))
        return out

    def __call__(self, batch: pa.Table, progress=None) -> pa.Table:
        n = batch.num_rows
        cols = {k: batch[k].to_pylist() for k in ("prompt", "chosen", "rejected")}
        errors = text_errors(batch)
        enc = self._encode(cols, errors)
        vals = {c: np.full(n, np.nan) for c in LOGP_COLUMNS}
        ok = [i for i in range(n) if errors[i] is None]
        if ok:
            try:
                res = self._score(enc, ok, progress)
                for c in LOGP_COLUMNS:
                    vals[c][ok] = res[c]
            except Exception:  # noqa: BLE001 - retried row by row so one bad row fails alone
                for i in ok:
                    try:
                        r1 = self._score(enc, [i])
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
