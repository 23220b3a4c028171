"""``score_pairs``: stream pairs through reward-model actors with Ray Data; write the scores table.

The input is cut into shards of ``shard_rows`` pairs with deterministic names (index plus a hash
of their ids); each shard is one Ray Data block, scored by a pool of actors
(``map_batches(..., compute=ActorPoolStrategy)``), and committed atomically (staging file, then
rename) under ``OUTPUT/shards/``. A re-run skips committed shards; a killed actor is restarted
and its shard retried, so the table is the same as a clean run's. Rows that cannot be scored go
to ``OUTPUT/failures/`` with their error: rows in = rows scored + rows failed, always.

Resume trusts nothing by name alone. ``OUTPUT/plan.json`` (written before any shard) records the
inputs — the pairs' content hash, the reward-model set's fingerprint (:func:`rm_fingerprint`:
``rm_set.json`` plus every model folder's files, by content, not path) and the settings that
change a gap (backend, dtype, max_length) — and the plan (``shard_rows``, every shard's name and
row count). When the inputs differ from the recorded ones, every shard is rescored (one line says
what changed) and the old manifest is removed first, so it never describes new inputs over old
gaps. Shard files that are not in the current plan (another ``shard_rows``) and staging files are
deleted. A committed shard is kept only if it validates: readable Parquet, the required columns,
and its scored plus failed ids equal to the ids the plan puts in it (so the right row count and no
duplicates); a truncated or otherwise bad shard is deleted and rescored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pdray.errors import DataError, PdrayError
from pdray.io import file_hash, read_table, table_hash, write_json
from pdray.rm_set import RewardModelSet
from pdray.scoring.config import ScoreConfig
from pdray.selection.scores import read_scores

INTERNAL = ("_shard", "_error", "_tokens", "_padded")
PLAN = "plan.json"
PLAN_VERSION = 1


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
    (config, weights, tokenizer; hashed by :func:`pdray.pipeline.cache.file_fingerprint`), keyed
    by the folder's path relative to ``rm_dir`` (a copied set keeps its fingerprint)."""
    from pdray.pipeline.cache import file_fingerprint

    root = Path(rm_dir)
    rm_set = rm_set or RewardModelSet.load(root)
    out = {"rm_set.json": file_fingerprint(root / "rm_set.json")["hash"]}
    folders = {rm_set.model_dir(root, a) for a in rm_set.aspects}
    if rm_set.holistic_path:
        folders.add(rm_set.model_dir(root, "holistic"))
    for f in sorted(folders):
        fp = file_fingerprint(f)
        try:
            name = str(Path(f).resolve().relative_to(root.resolve()))
        except ValueError:
            name = str(f)
        out[name] = f"{fp['hash']}:{fp['size']}" if fp else None
    return out


def _inputs(table: pa.Table, rm_dir: str, rm_set: RewardModelSet, cfg: ScoreConfig) -> dict:
    return {"pairs": table_hash(table), "rm": rm_fingerprint(rm_dir, rm_set),
            "scoring": {"backend": cfg.backend, "dtype": cfg.dtype,
                        "max_length": cfg.max_length or rm_set.max_length}}


def _what_changed(old: dict, new: dict) -> str:
    parts = []
    if old.get("pairs") != new.get("pairs"):
        parts.append("pairs content")
    o, n = old.get("rm") or {}, new.get("rm") or {}
    if o != n:
        diff = sorted(k for k in set(o) | set(n) if o.get(k) != n.get(k))
        parts.append(f"reward-model set ({', '.join(diff)})")
    o, n = old.get("scoring") or {}, new.get("scoring") or {}
    if o != n:
        parts.append("scoring settings (" + ", ".join(
            f"{k} {o.get(k)} -> {n.get(k)}" for k in sorted(set(o) | set(n))
            if o.get(k) != n.get(k)) + ")")
    return "; ".join(parts) or "inputs"


def _required_columns(rm_set: RewardModelSet) -> list[str]:
    keys = list(rm_set.aspects) + (["holistic"] if rm_set.holistic_path else [])
    return ["id", "aspect", "chosen_len", "rejected_len"] + [f"gap_{k}" for k in keys]


def _validate_shard(out: Path, name: str, ids: list, required: list[str]) -> str | None:
    """None when the committed shard ``name`` is trustworthy, else why not."""
    try:
        good = pq.read_table(out / "shards" / f"{name}.parquet")
    except Exception as e:  # noqa: BLE001 - any unreadable file is a bad shard
        return f"unreadable Parquet: {type(e).__name__}"
    missing = [c for c in required if c not in good.column_names]
    if missing:
        return f"missing column(s) {', '.join(missing)}"
    fpath = out / "failures" / f"{name}.parquet"
    try:
        failed = pq.read_table(fpath, columns=["id"]) if fpath.exists() else None
    except Exception as e:  # noqa: BLE001
        return f"unreadable failures file: {type(e).__name__}"
    if failed is None:
        return "its failures file is missing"
    got = good["id"].to_pylist() + failed["id"].to_pylist()
    if len(got) != len(ids):
        return f"{len(got)} rows where the plan has {len(ids)}"
    if len(set(good["id"].to_pylist())) != good.num_rows:
        return "duplicate ids"
    if sorted(map(str, got)) != sorted(map(str, ids)):
        return "its ids differ from the plan's"
    return None


def _remove(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass


def _reconcile(out: Path, plan, inputs: dict, cfg: ScoreConfig, rm_set: RewardModelSet,
               echo) -> set[str]:
    """Bring OUTPUT in line with the current plan and inputs; return the trusted shard names."""
    shards, fails = out / "shards", out / "failures"
    committed = sorted(shards.glob("part-*.parquet"))
    prev = None
    if (out / PLAN).is_file():
        try:
            prev = json.loads((out / PLAN).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            prev = None
    if committed and (prev is None or prev.get("version") != PLAN_VERSION
                      or prev.get("inputs") != inputs):
        why = (_what_changed(prev.get("inputs") or {}, inputs) + " changed since it was scored"
               if prev and prev.get("version") == PLAN_VERSION
               else "no readable plan.json to check the shards against")
        echo(f"[score] {out}: {why}: rescoring all {len(plan)} shards")
        for p in committed + sorted(fails.glob("*.parquet")):
            _remove(p)
        committed = []
    names = {n for n, _ in plan}
    stale = [p for d in (shards, fails) for p in d.iterdir()
             if p.is_file() and (p.name.startswith(".staging-") or p.stem not in names)]
    if stale:
        echo(f"[score] removing {len(stale)} stale file(s) not in the current plan "
             f"(shard_rows={cfg.shard_rows})")
        for p in stale:
            _remove(p)
    record = {"version": PLAN_VERSION, "inputs": inputs, "shard_rows": cfg.shard_rows,
              "shards": [{"name": n, "rows": t.num_rows} for n, t in plan]}
    if prev != record:
        write_json(record, out / PLAN)
    required = _required_columns(rm_set)
    done = set()
    present = {p.stem for p in shards.glob("part-*.parquet")}
    for n, t in plan:
        if n not in present:
            continue
        why = _validate_shard(out, n, t["id"].to_pylist(), required)
        if why is None:
            done.add(n)
        else:
            echo(f"[score] shard {n} is not valid ({why}): rescoring it")
            _remove(shards / f"{n}.parquet")
            _remove(fails / f"{n}.parquet")
    return done


def shard_plan(pairs: pa.Table, shard_rows: int) -> list[tuple[str, pa.Table]]:
    """Deterministic (name, rows) shards: part-<index>-<hash of the ids>."""
    out = []
    for i, start in enumerate(range(0, pairs.num_rows, shard_rows)):
        t = pairs.slice(start, shard_rows)
        h = hashlib.sha256("\n".join(map(str, t["id"].to_pylist())).encode()).hexdigest()[:10]
        out.append((f"part-{i:05d}-{h}", t))
    return out


def _commit(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".staging-{path.name}-{uuid.uuid4().hex[:6]}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def score_pairs(pairs: pa.Table | str, rm_dir: str, output_dir: str,
                cfg: ScoreConfig | None = None, *, echo=print) -> ScoreRun:
    import ray
    import ray.data

    from pdray.raysetup import init_ray
    from pdray.scoring.actor import ScoringActor

    cfg = cfg or ScoreConfig()
    init_ray()
    src = str(pairs) if isinstance(pairs, (str, os.PathLike)) else None
    table = read_table(pairs) if src else pairs
    for c in ("id", "aspect", "prompt", "chosen", "rejected"):
        if c not in table.column_names:
            raise DataError("required column is missing", file=src, field=c)
    rm_dir = str(Path(rm_dir).resolve())
    rm_set = RewardModelSet.load(rm_dir)
    out = Path(output_dir).resolve()
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / "failures").mkdir(parents=True, exist_ok=True)
    table = table.select(["id", "aspect", "prompt", "chosen", "rejected"])
    plan = shard_plan(table, cfg.shard_rows)
    inputs = _inputs(table, rm_dir, rm_set, cfg)
    done = _reconcile(out, plan, inputs, cfg, rm_set, echo)
    pending = [(n, t) for n, t in plan if n not in done]
    if pending:  # the manifest describes a finished table only
        _remove(out / "manifest.json")
        _remove(out / "failures.parquet")
    if cfg.stop_after_shards is not None:
        pending = pending[: cfg.stop_after_shards]
    echo(f"[score] {table.num_rows} pairs in {len(plan)} shards: {len(plan) - len(pending)} "
         f"already scored, {len(pending)} to score with {cfg.num_actors} {cfg.backend} actor(s) "
         f"× {len(rm_set.aspects)} aspect(s)")
    t0 = time.perf_counter()
    stats = {"tokens": 0.0, "padded": 0.0, "scored": 0, "failed": 0}
    if pending:
        blocks = [t.append_column("_shard", pa.array([n] * t.num_rows, pa.string()))
                  for n, t in pending]
        ds = ray.data.from_arrow(blocks)
        if not cfg.cpus_per_actor:
            total = float(ray.cluster_resources().get("CPU", 1.0))
            cfg = cfg.model_copy(update={"cpus_per_actor": max(1.0, math.floor(total / cfg.num_actors))})
        scored = ds.map_batches(
            ScoringActor, batch_size=None, batch_format="pyarrow",
            fn_constructor_args=(rm_dir, cfg.model_dump_json(), str(out)),
            compute=ray.data.ActorPoolStrategy(size=cfg.num_actors),
            num_cpus=cfg.cpus_per_actor, num_gpus=cfg.gpus_per_actor or None,
            max_restarts=cfg.max_restarts, max_task_retries=-1)
        expected = {n: t.num_rows for n, t in pending}
        buffers: dict[str, list[pa.Table]] = {}
        for batch in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
            for name in pc.unique(batch["_shard"]).to_pylist():
                part = batch.filter(pc.equal(batch["_shard"], name))
                buffers.setdefault(name, []).append(part)
                got = sum(p.num_rows for p in buffers[name])
                if got == expected[name]:
                    _write_shard(out, name, pa.concat_tables(buffers.pop(name)), stats)
                    echo(f"[score] shard {name} committed ({got} pairs; "
                         f"{stats['scored'] / max(time.perf_counter() - t0, 1e-9):.1f} pairs/s)")
        if buffers:
            raise PdrayError(f"[score] incomplete shards after the run: {sorted(buffers)}")
    if cfg.stop_after_shards is not None and len(plan) > len(done) + len(pending):
        echo("[score] stopped early (stop_after_shards): re-run to finish")
        return ScoreRun(out, {"complete": False})
    return ScoreRun(out, _finish(out, plan, table, rm_dir, rm_set, cfg, stats,
                                 time.perf_counter() - t0, src, echo, inputs))


def _write_shard(out: Path, name: str, t: pa.Table, stats: dict) -> None:
    err = t["_error"]
    bad = pc.invert(pc.is_null(err))
    failed = t.filter(bad).select(["id", "aspect", "_error"]).rename_columns(["id", "aspect", "error"])
    good = t.filter(pc.is_null(err))
    stats["tokens"] += float(pc.sum(good["_tokens"]).as_py() or 0)
    stats["padded"] += float(pc.sum(good["_padded"]).as_py() or 0)
    stats["scored"] += good.num_rows
    stats["failed"] += failed.num_rows
    good = good.drop_columns([c for c in INTERNAL if c in good.column_names])
    _commit(failed, out / "failures" / f"{name}.parquet")
    _commit(good, out / "shards" / f"{name}.parquet")  # committed last: marks the shard done


def _finish(out, plan, table, rm_dir, rm_set, cfg, stats, seconds, src, echo, inputs) -> dict:
    names = [n for n, _ in plan]
    parts = [pq.read_table(out / "shards" / f"{n}.parquet") for n in names]
    scores = (pa.concat_tables(parts, promote_options="default") if parts
              else read_table(out / "shards"))
    fails = [read_table(out / "failures" / f"{n}.parquet") for n in names]
    fails = [f for f in fails if f.num_rows]
    failures = pa.concat_tables(fails) if fails else pa.table({"id": pa.array([], pa.string())})
    if failures.num_rows:
        pq.write_table(failures, out / "failures.parquet")
    else:
        _remove(out / "failures.parquet")
    n_in, n_ok, n_bad = table.num_rows, scores.num_rows, failures.num_rows
    if n_in != n_ok + n_bad:
        raise PdrayError(f"[score] rows in ({n_in}) != scored ({n_ok}) + failed ({n_bad})")
    if pc.count_distinct(scores["id"]).as_py() != n_ok:
        raise PdrayError(f"[score] {out / 'shards'}: duplicate ids in the scores table")
    pad_share = 1 - stats["tokens"] / stats["padded"] if stats["padded"] else 0.0
    manifest = {
        "rows_in": n_in, "rows_scored": n_ok, "rows_failed": n_bad,
        "shards": [n for n, _ in plan], "aspects": rm_set.aspects,
        "gap_columns": [c for c in scores.column_names if c.startswith("gap_")],
        "rm_dir": rm_dir, "rm_set": json.loads((Path(rm_dir) / "rm_set.json").read_text()).get("mode"),
        # the length term of Eq. 18 travels with the gaps: every entry point selects with it
        "length": {"length_debias": rm_set.length_debias, "rho": rm_set.rho},
        "same_input": (int(pc.sum(scores["same_input"]).as_py() or 0)
                       if "same_input" in scores.column_names else 0),
        "pairs_hash": inputs["pairs"], "pairs_file": src, "rm_fingerprint": inputs["rm"],
        "shard_rows": cfg.shard_rows,
        "pairs_file_hash": file_hash(src) if src and Path(src).is_file() else None,
        "config": cfg.model_dump(mode="json"),
        "run": {"seconds": round(seconds, 3),
                "pairs_per_s": stats["scored"] / seconds if seconds > 0 else None,
                "tokens_per_s": stats["tokens"] / seconds if seconds > 0 else None,
                "padding_share": pad_share, "newly_scored": stats["scored"],
                "host": platform.node()},
    }
    write_json(manifest, out / "manifest.json")
    if manifest["same_input"]:
        echo(f"[score] warning: {manifest['same_input']} of {n_ok} pairs have identical chosen "
             f"and rejected inputs after truncation to {cfg.max_length or rm_set.max_length} "
             f"tokens (gap 0 by construction; column same_input): raise rm.max_length or "
             f"lower rm.response_share")
    echo(f"[score] {n_ok} scored, {n_bad} failed of {n_in}; "
         f"{manifest['run']['pairs_per_s'] or 0:.1f} pairs/s, padding {pad_share:.1%}")
    return manifest
