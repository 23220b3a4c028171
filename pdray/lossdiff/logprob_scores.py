"""The LossDiff-IRM pipeline (METHOD.md, "Second seed"): warm-up → log-prob scores → band.

``score_logprobs`` streams pairs through :class:`~pdray.lossdiff.logprob_actor.LogProbActor`
on the scoring stage's runner (:mod:`pdray.scoring.shards`, :mod:`pdray.scoring.runner`): Ray
Data actors (``map_batches(compute=ActorPoolStrategy)``) score shards of ``shard_rows`` pairs
and commit them atomically under ``OUTPUT/shards/`` themselves; a re-run skips finished shards
whose inputs (pairs content, model fingerprints, settings) are unchanged. Rows that cannot be
scored go to ``OUTPUT/failures.parquet`` with their error: rows in = rows scored + rows failed,
always.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pdray.errors import PdrayError
from pdray.fingerprint import folder_fingerprint
from pdray.io import write_json
from pdray.length_modes import NO_LENGTH
from pdray.lossdiff.config import LossDiffConfig
from pdray.lossdiff.math import LOGP_COLUMNS
from pdray.lossdiff.warmup import WarmupResult, split_validation, warmup
from pdray.raysetup import init_ray, verbose_default
from pdray.scoring import shards as S
from pdray.scoring.runner import actor_cpus, run_shards
from pdray.selection import SelectionResult, select
from pdray.selection.config import LOSSDIFF_KEEP
from pdray.selection.scores import read_logprob_scores

SCORE_COLUMNS = ("id", "aspect", *LOGP_COLUMNS, "lossdiff", "irm")

__all__ = [
    "SCORE_COLUMNS",
    "LossDiffSelection",
    "WarmupResult",
    "lossdiff_irm_selection",
    "read_logprob_scores",
    "score_logprobs",
    "split_validation",
    "warmup",
]


def score_logprobs(pairs: pa.Table | str, policy_dir: str, ref_dir: str, aux_dir: str,
                   output_dir: str | Path, cfg: LossDiffConfig | None = None, *,
                   echo=print, verbose: bool | None = None) -> pa.Table:
    """Per pair: log π(y_w|x), log π(y_l|x) under policy, reference and auxiliary models, and
    LossDiff / IRM (docs/CONTRACTS.md, "Model-dependent scores"). Returns the scores table.

    Runs on the scoring stage's streaming runner (:mod:`pdray.scoring.shards`): ``pairs`` may
    be a table or a path (a local Parquet or JSONL file is streamed); resume checks the pairs' content hash,
    the three model folders' fingerprints and the settings that change a score (``plan.json``).
    """
    cfg = cfg or LossDiffConfig()
    paths = {"policy": str(Path(policy_dir).resolve()), "ref": str(Path(ref_dir).resolve()),
             "aux": str(Path(aux_dir).resolve())}
    for name, p in paths.items():
        if not Path(p).is_dir():
            raise PdrayError(f"{name} model folder {p} does not exist")
    verbose = verbose_default() if verbose is None else verbose
    init_ray(quiet=not verbose)
    out = Path(output_dir).resolve()
    S.prepare_output(out)
    staged = S.stage_input(pairs, out, cfg.shard_rows)
    inputs = {"pairs": staged.content_hash,
              "models": {k: folder_fingerprint({k: p})[k] for k, p in paths.items()},
              "settings": {"beta": cfg.beta, "max_length": cfg.max_length, "dtype": cfg.dtype}}
    required = list(SCORE_COLUMNS)
    done = S.reconcile(out, staged, inputs, cfg.shard_rows, required, S.what_changed, echo,
                       "lossdiff")
    names = [e["name"] for e in staged.plan]
    pending = [n for n in names if n not in done]
    if pending:
        (out / "manifest.json").unlink(missing_ok=True)
    echo(f"[lossdiff] {staged.num_rows} pairs in {len(names)} shards: {len(names) - len(pending)} "
         f"done, {len(pending)} to score with {cfg.num_actors} actor(s) × 3 models")
    if pending:
        cfg = cfg.model_copy(update={"cpus_per_actor": actor_cpus(cfg.cpus_per_actor,
                                                                  cfg.num_actors)})
    stats = run_shards(staged, pending, out, scorer_path="pdray.lossdiff.logprob_actor.LogProbActor",
                       scorer_args=(paths, cfg.model_dump_json()), num_actors=cfg.num_actors,
                       num_cpus=cfg.cpus_per_actor, num_gpus=cfg.gpus_per_actor,
                       max_restarts=cfg.max_restarts, tag="lossdiff", echo=echo, verbose=verbose)
    n_ok, n_bad, _, failures = S.finish_checks(out, names, staged.num_rows, "lossdiff")
    if not failures.num_rows:
        pq.write_table(failures, out / "failures.parquet")
    staged.path.unlink(missing_ok=True)
    write_json({"kind": "logprob", "rows_in": staged.num_rows, "rows_scored": n_ok,
                "rows_failed": n_bad, "models": paths, "beta": cfg.beta,
                "pairs_hash": staged.content_hash, "model_fingerprints": inputs["models"],
                "shards": names, "columns": list(SCORE_COLUMNS),
                "config": json.loads(cfg.model_dump_json()),
                "run": {"seconds": round(stats.seconds, 3),
                        "newly_scored": stats.scored + stats.failed}},
               out / "manifest.json")
    echo(f"[lossdiff] {n_ok} scored, {n_bad} failed of {staged.num_rows} "
         f"in {stats.seconds:.1f}s")
    return read_logprob_scores(out).select(list(SCORE_COLUMNS))


@dataclass
class LossDiffSelection:
    """A ``lossdiff_irm`` selection: the selection core's result (``result``: the table with
    ``lossdiff`` and ``irm`` columns, and the manifest ``write_selection`` writes), plus the
    row mask and band bounds the report plots."""

    selected_ids: list[str]
    keep_rate: float
    mask: np.ndarray
    bounds: dict = field(default_factory=dict)
    result: SelectionResult | None = None


def lossdiff_irm_selection(scores: pa.Table, low: float | None = None,
                           high: float | None = None, *, keep_rate: float = LOSSDIFF_KEEP,
                           pairs: pa.Table | None = None) -> LossDiffSelection:
    """Step 4 of "Second seed": the pairs inside [P_low, P_high] of LossDiff AND of IRM — the
    ``lossdiff_irm`` selector of :mod:`pdray.selection` (one implementation; without
    ``low``/``high`` the band that keeps ``keep_rate``), with its mask and band bounds for the
    report. Ids come back sorted; ``keep_rate`` = |kept| / |scores|. With ``pairs`` the result
    carries the full selected pairs (ready for DPO)."""
    res = select(scores, "lossdiff_irm", length=NO_LENGTH, low=low, high=high,
                 keep_rate=keep_rate, pairs=pairs)
    idx = pc.index_in(res.table["id"], value_set=scores["id"])
    table = res.table
    for c in ("lossdiff", "irm"):
        if c in table.column_names:
            table = table.drop_columns([c])
        table = table.append_column(c, scores[c].take(idx))
    res = SelectionResult(res.strategy, table, res.manifest)
    ids = res.selected_ids
    mask = np.asarray(pc.is_in(scores["id"], value_set=res.table["id"]))
    rate = float(mask.mean()) if len(mask) else 0.0
    return LossDiffSelection(sorted(ids), rate, mask, res.manifest["info"]["bounds"], res)
