"""Scorers: one interface for the scoring actors' backends (transformers here; vLLM engines in
:mod:`pdray.scoring.vllm_engine`; :mod:`pdray.scoring.scorers` picks one by ``score.backend``).
The ``ray_llm`` backend is not a per-actor scorer but a Ray Data pipeline of its own
(:mod:`pdray.scoring.llm`) built on the same plan (:func:`scoring_plan`) and encoding.

A scorer turns a batch of pairs into r̂_k(x, y_w) and r̂_k(x, y_l) for every aspect k of a
reward-model set: raw logits of the aspect's head, never a sigmoid. Every chosen and rejected
input of the batch is bucketed by its own length under a token budget (``score.batch_tokens``),
so a short response is never padded to its partner's length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pdray.models.backbones import load_reward_backbone
from pdray.models.formatting import encode_reward_inputs
from pdray.models.reward import pad_batch, reward_forward, token_batches
from pdray.rm.model_set import HOLISTIC, RewardModelSet


def encode_pairs(tok, prompts, chosen, rejected, system, max_length: int, response_share: float):
    """Token ids of both responses of every pair (the training encoding, prompt cut from the
    left) and a mask of the pairs whose two inputs came out identical after truncation."""
    kw = {"max_length": max_length, "response_share": response_share}
    tc, _ = encode_reward_inputs(tok, list(prompts), list(chosen), system, **kw)
    tr, _ = encode_reward_inputs(tok, list(prompts), list(rejected), system, **kw)
    same = np.fromiter((a == b for a, b in zip(tc, tr)), dtype=bool, count=len(tc))
    return tc, tr, same


class Scorer:
    """Interface: ``score(prompts, chosen, rejected, progress=None) -> (rewards, stats)``.

    ``rewards[k] = (r_chosen, r_rejected)`` arrays per model key k (aspects, plus ``holistic``
    when the set has one); ``stats`` counts real and padded tokens, and ``stats["same_input"]``
    marks the pairs whose chosen and rejected inputs were identical for some model after
    truncation (their gap is 0 by construction, not by judgement). ``progress(done, total)``,
    when given, is called as the work advances (pairs × model passes done, of all of them).
    """

    keys: list[str]
    engine_seconds: float = 0.0   # time spent starting engines (vLLM), reported apart
    engines_started: int = 0

    @property
    def tokenizer(self):
        """The tokenizer of the set's first model (response lengths are counted with it)."""
        raise NotImplementedError

    def score(self, prompts, chosen, rejected,
              progress=None) -> tuple[dict, dict]:  # pragma: no cover
        raise NotImplementedError


class _Model:
    def __init__(self, folder: Path, num_labels: int, cfg, device):
        import torch

        dtype = {"auto": torch.bfloat16 if device.type == "cuda" else torch.float32,
                 "float32": torch.float32, "bfloat16": torch.bfloat16,
                 "float16": torch.float16}[cfg.dtype]
        self.model, self.tok = load_reward_backbone(str(folder), num_labels,
                                                    trust_remote_code=cfg.trust_remote_code,
                                                    torch_dtype=dtype)
        self.model.to(device).eval()
        self.device = device


class HFScorer(Scorer):
    """transformers backend (CPU, or GPU with bf16), ``torch.inference_mode``."""

    def __init__(self, rm_set: RewardModelSet, rm_dir: str, cfg):
        import torch

        self.rm_set, self.cfg = rm_set, cfg
        self.device = torch.device("cuda" if cfg.gpus_per_actor > 0 and torch.cuda.is_available()
                                   else "cpu")
        self.max_length = cfg.max_length or rm_set.max_length
        self.response_share = rm_set.response_share
        self.batch_tokens = cfg.resolved_batch_tokens(self.device.type == "cuda")
        n_labels = len(rm_set.aspects) if rm_set.mode == "multi_head" else 1
        self.models: dict[str, _Model] = {}
        # plan: (model folder, pass name, system prompt, [(key, head index)])
        self.plan = scoring_plan(rm_set, rm_dir)
        for folder, name, _, heads in self.plan:
            if folder not in self.models:
                nl = n_labels if name == "multi_head" else 1
                self.models[folder] = _Model(Path(folder), nl, cfg, self.device)
        self.keys = [k for *_, heads in self.plan for k, _ in heads]

    @property
    def tokenizer(self):
        return next(iter(self.models.values())).tok

    def score(self, prompts, chosen, rejected, progress=None):
        import torch

        n = len(prompts)
        done, total = 0, n * len(self.plan)
        out = {k: (np.zeros(n), np.zeros(n)) for k in self.keys}
        stats = {"tokens": 0, "padded": 0, "forward_passes": 0, "same_input": np.zeros(n, bool)}
        encoded: dict = {}  # separate mode: one tokenizer for every aspect → encode once
        for folder, _, system, heads in self.plan:
            m = self.models[folder]
            key = (m.tok.name_or_path, len(m.tok), system)
            if key not in encoded:
                encoded[key] = encode_pairs(m.tok, prompts, chosen, rejected, system,
                                            self.max_length, self.response_share)
            tc, tr, same = encoded[key]
            stats["same_input"] |= same
            both = tc + tr                      # row i < n: chosen of pair i; n + i: its rejected
            for b in token_batches([len(x) for x in both], self.batch_tokens):
                ids, mask = pad_batch([both[i] for i in b], m.tok.pad_token_id)
                with torch.inference_mode():
                    logits = reward_forward(m.model, ids.to(m.device),
                                            mask.to(m.device)).float().cpu().numpy()
                stats["tokens"] += int(mask.sum())
                stats["padded"] += int(ids.numel())
                stats["forward_passes"] += 1
                rows = np.asarray(b)
                side, pair = rows >= n, rows % n
                for k, h in heads:
                    out[k][0][pair[~side]] = logits[~side, h]
                    out[k][1][pair[side]] = logits[side, h]
                done += len(b) / 2
                if progress:
                    progress(done, total)
        return out, stats


class PackedScorer(Scorer):
    """The scorers on a vLLM engine, which packs sequences (no padding): per model folder, one
    engine call on every chosen and rejected input of the batch. Subclasses load an engine per
    folder (:meth:`_engine`) and run it on token ids (:meth:`_logits`)."""

    def _setup(self, rm_set: RewardModelSet, rm_dir: str, cfg) -> None:
        from transformers import AutoTokenizer

        self.rm_set, self.cfg = rm_set, cfg
        self.max_length = cfg.max_length or rm_set.max_length
        self.plan = scoring_plan(rm_set, rm_dir)
        self.engines, self.toks = {}, {}
        for folder, *_ in self.plan:   # every folder checked before any engine starts
            self._check(folder)
        for folder, *_ in self.plan:
            if folder in self.engines:
                continue
            self.engines[folder] = self._engine(folder)
            self.toks[folder] = AutoTokenizer.from_pretrained(
                folder, trust_remote_code=cfg.trust_remote_code)
        self.keys = [k for *_, heads in self.plan for k, _ in heads]

    @property
    def tokenizer(self):
        return next(iter(self.toks.values()))

    def _check(self, folder: str) -> None:
        """Raise a one-line error when ``folder`` cannot be served (before any engine starts)."""

    def _engine(self, folder: str):
        raise NotImplementedError

    def _logits(self, folder: str, ids: list[list[int]]) -> np.ndarray:
        """(len(ids), heads) raw head logits of the token-id sequences ``ids``."""
        raise NotImplementedError

    pairs_per_call = 128   # engine calls of this many pairs: progress while a shard is scored

    def score(self, prompts, chosen, rejected, progress=None):
        n = len(prompts)
        out = {k: (np.zeros(n), np.zeros(n)) for k in self.keys}
        stats = {"tokens": 0, "padded": 0, "forward_passes": 0, "same_input": np.zeros(n, bool)}
        done, total = 0, n * len(self.plan)
        for folder, _, system, heads in self.plan:
            tc, tr, same = encode_pairs(self.toks[folder], prompts, chosen, rejected, system,
                                        self.max_length, self.rm_set.response_share)
            stats["same_input"] |= same
            for a in range(0, n, self.pairs_per_call):
                b = min(a + self.pairs_per_call, n)
                ids = tc[a:b] + tr[a:b]       # a call: these pairs' chosen, then their rejected
                logits = self._logits(folder, ids)
                stats["tokens"] += sum(len(x) for x in ids)
                stats["padded"] += sum(len(x) for x in ids)  # vLLM packs sequences: no padding
                stats["forward_passes"] += 1
                for k, h in heads:
                    out[k][0][a:b] = logits[:b - a, h]
                    out[k][1][a:b] = logits[b - a:, h]
                done += b - a
                if progress:
                    progress(done, total)
        return out, stats


def scoring_plan(rm_set: RewardModelSet, rm_dir: str) -> list[tuple]:
    """One pass per model folder of the set: ``(folder, key, system prompt or None,
    [(aspect, head index), …])`` — what every backend (HF, vLLM, ray_llm) runs."""
    plan = []
    if rm_set.mode in ("separate", "all_in_one"):
        for a in rm_set.aspects:
            plan.append((str(rm_set.model_dir(rm_dir, a)), a,
                         rm_set.system_prompts.get(a) if rm_set.mode == "all_in_one" else None,
                         [(a, 0)]))
    else:
        plan.append((str(rm_set.model_dir(rm_dir, rm_set.aspects[0])), "multi_head", None,
                     [(a, i) for i, a in enumerate(rm_set.aspects)]))
    if rm_set.holistic_path:
        plan.append((str(rm_set.model_dir(rm_dir, HOLISTIC)), HOLISTIC, None, [(HOLISTIC, 0)]))
    return plan


