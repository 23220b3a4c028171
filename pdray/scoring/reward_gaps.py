"""``score_pairs``: stream pairs through reward-model actors with Ray Data; write the scores table.

The runner is :mod:`pdray.scoring.shards` (plan, input staging, resume checks) plus
:mod:`pdray.scoring.runner` (actor pool, progress), shared with the LossDiff log-prob scores.
The input (a local Parquet or JSONL file is streamed, never read whole by the driver) is cut into shards of
``shard_rows`` pairs with deterministic names (index plus a hash of their ids); a pool of actors
(``map_batches(..., compute=ActorPoolStrategy)``) scores each shard and commits it atomically
(staging file, then rename) under ``OUTPUT/shards/`` itself; the driver only plans and sums
small per-shard stats. A re-run skips committed shards; a killed actor is restarted and its
shard retried, so the table is the same as a clean run's. Rows that cannot be scored go to
``OUTPUT/failures/`` with their error: rows in = rows scored + rows failed, always.

Resume trusts nothing by name alone. ``OUTPUT/plan.json`` (written before any shard) records the
inputs — the pairs' content hash, the reward-model set's fingerprint (:func:`rm_fingerprint`:
``rm_set.json`` plus every model folder's files, by content, not path) and the settings that
change a gap (backend, dtype, max_length) — and the plan (``shard_rows``, every shard's name,
row count and ids digest). When the inputs differ from the recorded ones, every shard is
rescored (one line says what changed) and the old manifest is removed first, so it never
describes new inputs over old gaps. Shard files that are not in the current plan (another
``shard_rows``) and staging files are deleted. A committed shard is kept only if it validates:
readable Parquet, the required columns, and its scored plus failed ids equal to the ids the plan
puts in it (so the right row count and no duplicates); a truncated or otherwise bad shard is
deleted and rescored. Why this layer and not Ray Data's checkpointing: :mod:`pdray.scoring.shards`.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pdray.fingerprint import file_fingerprint, file_hash, folder_fingerprint
from pdray.io import read_table, write_json
from pdray.raysetup import init_ray, verbose_default
from pdray.rm.model_set import RewardModelSet
from pdray.scoring import shards as S
from pdray.scoring.config import ScoreConfig
from pdray.scoring.runner import actor_cpus, run_shards
from pdray.selection.scores import read_scores
from pdray.storage_check import check_shared_storage


@dataclass
class ScoreRun:
    output_dir: Path
    manifest: dict

    def table(self) -> pa.Table:
        return read_scores(self.output_dir)

    def failures(self) -> pa.Table:
        p = self.output_dir / "failures.parquet"
        return read_table(p) if p.exists() else pa.table({"id": pa.array([], pa.string())})


def rm_fingerprint(rm_dir: str | Path, rm_set: RewardModelSet | None = None) -> dict:
    """Content fingerprint of a reward-model set: ``rm_set.json`` and each model folder it uses
    (config, weights, tokenizer; hashed by :func:`pdray.fingerprint.file_fingerprint`), keyed
    by the folder's path relative to ``rm_dir`` (a copied set keeps its fingerprint)."""
    root = Path(rm_dir)
    rm_set = rm_set or RewardModelSet.load(root)
    out = {"rm_set.json": file_fingerprint(root / "rm_set.json")["hash"]}
    folders = {rm_set.model_dir(root, a) for a in rm_set.aspects}
    if rm_set.holistic_path:
        folders.add(rm_set.model_dir(root, "holistic"))
    out.update(folder_fingerprint({str(f): f for f in folders}, root=root))
    return out


def _inputs(pairs_hash: str, rm_dir: str, rm_set: RewardModelSet, cfg: ScoreConfig) -> dict:
    return {"pairs": pairs_hash, "rm": rm_fingerprint(rm_dir, rm_set),
            "scoring": {"backend": cfg.backend, "dtype": cfg.dtype,
                        "max_length": cfg.max_length or rm_set.max_length}}


def _required_columns(rm_set: RewardModelSet) -> list[str]:
    keys = list(rm_set.aspects) + (["holistic"] if rm_set.holistic_path else [])
    return ["id", "aspect", "chosen_len", "rejected_len"] + [f"gap_{k}" for k in keys]


def score_pairs(pairs: pa.Table | str, rm_dir: str, output_dir: str,
                cfg: ScoreConfig | None = None, *, echo=print,
                verbose: bool | None = None) -> ScoreRun:
    """Score every pair under every model of the set at ``rm_dir`` into ``output_dir``.

    ``pairs``: a table, or a path (a local Parquet file is streamed batch by batch, a JSONL
    file line by line; a folder of shards or a remote file is read whole). ``verbose``: Ray's worker output and Ray Data's bars on the terminal (default: the
    ``PDRAY_VERBOSE`` environment variable); otherwise worker output goes to ``OUTPUT/logs/``.
    """

    cfg = cfg or ScoreConfig()
    verbose = verbose_default() if verbose is None else verbose
    rm_dir = str(Path(rm_dir).resolve())
    rm_set = RewardModelSet.load(rm_dir)
    rm_set.check_files(rm_dir)   # one line naming the folder, before any actor starts
    if cfg.backend in ("vllm", "ray_llm"):   # one line before any work, not an actor traceback
        from pdray.scoring.vllm_engine import preflight

        preflight(rm_set, rm_dir, cfg.backend)
    out = Path(output_dir).resolve()
    S.prepare_output(out)
    staged = S.stage_input(pairs, out, cfg.shard_rows)   # bad input: one line, before Ray starts
    init_ray(quiet=not verbose)
    check_shared_storage(out, key="the scores folder")   # actors on other nodes write there
    inputs = _inputs(staged.content_hash, rm_dir, rm_set, cfg)
    done = S.reconcile(out, staged, inputs, cfg.shard_rows, _required_columns(rm_set),
                       S.what_changed, echo, "score")
    names = [e["name"] for e in staged.plan]
    pending = [n for n in names if n not in done]
    if pending:  # the manifest describes a finished table only
        (out / "manifest.json").unlink(missing_ok=True)
        (out / "failures.parquet").unlink(missing_ok=True)
    if cfg.stop_after_shards is not None:
        pending = pending[: cfg.stop_after_shards]
    echo(f"[score] {staged.num_rows} pairs in {len(names)} shards: {len(names) - len(pending)} "
         f"already scored, {len(pending)} to score with {cfg.num_actors} {cfg.backend} actor(s) "
         f"× {len(rm_set.aspects)} aspect(s)")
    if pending and cfg.backend != "ray_llm":   # ray_llm sizes its engine actors itself
        cfg = cfg.model_copy(update={"cpus_per_actor": actor_cpus(cfg.cpus_per_actor,
                                                                  cfg.num_actors)})
    if cfg.backend == "ray_llm":   # one Ray Data pipeline; its engines live for the whole job
        from pdray.scoring.llm import score_ray_llm

        stats = score_ray_llm(staged, pending, out, rm_set=rm_set, rm_dir=rm_dir, cfg=cfg,
                              echo=echo, verbose=verbose)
    else:
        stats = run_shards(staged, pending, out, scorer_path="pdray.scoring.actor.ScoringActor",
                           scorer_args=(rm_dir, cfg.model_dump_json(), str(out)),
                           num_actors=cfg.num_actors, num_cpus=cfg.cpus_per_actor,
                           num_gpus=cfg.gpus_per_actor, max_restarts=cfg.max_restarts,
                           tag="score", echo=echo, verbose=verbose)
    if stats.engines and cfg.backend == "ray_llm":   # engines start inside the pipeline
        echo(f"[score] {stats.engines} vLLM engine(s): first scores after "
             f"{stats.engine_seconds:.1f}s (engine start and the first blocks), done in "
             f"{stats.seconds:.1f}s")
    elif stats.engines:
        echo(f"[score] {stats.engines} vLLM engine(s) started in {stats.engine_seconds:.1f}s, "
             f"then scored for {max(stats.seconds - stats.engine_seconds, 0.0):.1f}s")
    if cfg.stop_after_shards is not None and len(names) > len(done) + len(pending):
        echo("[score] stopped early (stop_after_shards): re-run to finish")
        return ScoreRun(out, {"complete": False})
    manifest = _finish(out, staged, rm_dir, rm_set, cfg, stats, echo, inputs)
    staged.path.unlink(missing_ok=True)
    return ScoreRun(out, manifest)


def _finish(out, staged, rm_dir, rm_set, cfg, stats, echo, inputs) -> dict:
    names = [e["name"] for e in staged.plan]
    n_in = staged.num_rows
    n_ok, n_bad, same, _ = S.finish_checks(out, names, n_in, "score", "same_input")
    gap_cols = [c for c in pq.read_schema(out / "shards" / f"{names[0]}.parquet").names
                if c.startswith("gap_")] if names else []
    seconds = stats.seconds
    pad_share = 1 - stats.tokens / stats.padded if stats.padded else 0.0
    src = staged.src
    manifest = {
        "rows_in": n_in, "rows_scored": n_ok, "rows_failed": n_bad,
        "shards": names, "aspects": rm_set.aspects, "gap_columns": gap_cols,
        "rm_dir": rm_dir, "rm_set": json.loads((Path(rm_dir) / "rm_set.json").read_text()).get("mode"),
        # the length term of Eq. 18 travels with the gaps: every entry point selects with it
        "length": rm_set.length.model_dump(mode="json"),
        "same_input": same,
        "pairs_hash": inputs["pairs"], "pairs_file": src, "rm_fingerprint": inputs["rm"],
        "shard_rows": cfg.shard_rows,
        "pairs_file_hash": file_hash(src) if src and Path(src).is_file() else None,
        "config": cfg.model_dump(mode="json"),
        "run": {"seconds": round(seconds, 3),
                "pairs_per_s": stats.scored / seconds if seconds > 0 else None,
                "tokens_per_s": stats.tokens / seconds if seconds > 0 else None,
                "padding_share": pad_share, "newly_scored": stats.scored,
                "engines_started": stats.engines,
                "engine_seconds": round(stats.engine_seconds, 3),
                "host": platform.node()},
    }
    write_json(manifest, out / "manifest.json")
    if same:
        echo(f"[score] warning: {same} of {n_ok} pairs have identical chosen "
             f"and rejected inputs after truncation to {cfg.max_length or rm_set.max_length} "
             f"tokens (gap 0 by construction; column same_input): raise rm.max_length or "
             f"lower rm.response_share")
    echo(f"[score] {n_ok} scored, {n_bad} failed of {n_in}; "
         f"{manifest['run']['pairs_per_s'] or 0:.1f} pairs/s, padding {pad_share:.1%}")
    return manifest
