"""The reward scorer a :class:`pdray.scoring.runner.ShardWorker` wraps: one per actor, a shard per
call."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.models.formatting import response_token_lens
from pdray.rm.model_set import RewardModelSet
from pdray.schema import text_errors
from pdray.scoring.config import ScoreConfig
from pdray.scoring.scorers import make_scorer


class ScoringActor:
    """Loads the reward models once; ``__call__`` scores a shard's pairs (``progress(done,
    total)`` as the scorer's batches finish).

    Output rows: the scores contract (``id``, ``aspect``, ``chosen_len``, ``rejected_len``,
    ``gap_<k>``) plus ``_shard``, ``_error`` (null when scored), ``_tokens``, ``_padded``.
    A row that cannot be scored (missing text, a failing forward pass) gets its error, never
    vanishes.
    """

    def __init__(self, rm_dir: str, cfg_json: str, marker_dir: str):
        self.cfg = ScoreConfig.model_validate_json(cfg_json)
        if not self.cfg.gpus_per_actor:  # torch threads = the actor's CPUs (at least one)
            import torch

            torch.set_num_threads(max(1, round(self.cfg.cpus_per_actor or 1)))
        self.rm_set = RewardModelSet.load(rm_dir)
        self.scorer = make_scorer(self.rm_set, rm_dir, self.cfg)
        self.tok = self.scorer.tokenizer
        self.calls = 0
        self.marker = Path(marker_dir) / "_injected_failure"

    def _maybe_fail(self):
        n = self.cfg.fail_once_at_batch
        if n is not None and self.calls == n and not self.marker.exists():
            self.marker.write_text("killed once")
            os._exit(1)  # simulate a crashed node: the actor dies mid-run

    def __call__(self, batch: pa.Table, progress=None) -> pa.Table:
        self.calls += 1
        self._maybe_fail()
        n = batch.num_rows
        cols = {k: batch[k].to_pylist() for k in ("prompt", "chosen", "rejected")}
        errors = text_errors(batch)
        ok = [i for i in range(n) if errors[i] is None]
        gaps = {k: np.full(n, np.nan) for k in self.scorer.keys}
        stats = {"tokens": 0, "padded": 0}
        same = np.zeros(n, dtype=bool)
        lc, lr = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        if ok:
            sub = {k: [cols[k][i] for i in ok] for k in cols}
            try:
                rewards, stats = self.scorer.score(sub["prompt"], sub["chosen"], sub["rejected"],
                                                   progress=progress)
                for k, (rc, rr) in rewards.items():
                    gaps[k][ok] = rc - rr
                if "same_input" in stats:
                    same[ok] = stats["same_input"]
            except Exception as e:  # noqa: BLE001 - recorded per row, then retried one by one
                for i in ok:
                    try:
                        r1, _ = self.scorer.score([cols["prompt"][i]], [cols["chosen"][i]],
                                                  [cols["rejected"][i]])
                        for k, (rc, rr) in r1.items():
                            gaps[k][i] = rc[0] - rr[0]
                    except Exception as e1:  # noqa: BLE001
                        errors[i] = f"{type(e1).__name__}: {e1}"
                del e
            lc[ok] = response_token_lens(self.tok, sub["chosen"])
            lr[ok] = response_token_lens(self.tok, sub["rejected"])
        return scores_table(batch, self.scorer.keys, gaps, same, lc, lr, errors,
                            tokens=stats["tokens"] / max(len(ok), 1),
                            padded=stats["padded"] / max(len(ok), 1))

    def init_stats(self) -> dict:
        """What starting this actor's scorer cost: engines started and their seconds."""
        return {"engines": self.scorer.engines_started, "engine_seconds": self.scorer.engine_seconds}


def scores_table(batch: pa.Table, keys, gaps: dict, same, lc, lr, errors, *, tokens: float,
                 padded: float) -> pa.Table:
    """A shard's rows in the scores contract (``id``, ``aspect``, ``chosen_len``,
    ``rejected_len``, ``gap_<k>``, ``same_input``) plus the runner's ``_shard``, ``_error``
    (null when scored), ``_tokens`` and ``_padded`` (per-row shares of the shard's tokens).
    Shared by the scoring actors and the ``ray_llm`` pipeline (:mod:`pdray.scoring.llm`)."""
    n = batch.num_rows
    out = {"id": pa.array(batch["id"].to_pylist(), pa.string()), "aspect": batch["aspect"],
           "chosen_len": pa.array(lc), "rejected_len": pa.array(lr)}
    for k in keys:
        out[f"gap_{k}"] = pa.array(gaps[k], pa.float64())
    out["same_input"] = pa.array(same, pa.bool_())
    out["_shard"] = batch["_shard"]
    out["_error"] = pa.array(errors, pa.string())
    out["_tokens"] = pa.array(np.full(n, tokens))
    out["_padded"] = pa.array(np.full(n, padded))
    return pa.table(out)
