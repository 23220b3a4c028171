"""``score.backend=ray_llm``: the scoring job as one Ray Data pipeline on Ray's LLM batch API.

    shard descriptors ─▶ EncodeShards (actor: reads a shard, writes its metadata, one row per
    input) ─▶ one ``ray.data.llm`` classify processor per model folder ─▶ the driver pairs the
    rows back by (shard, pair, side) and commits each shard as soon as its last row arrives

Every engine starts once for the whole job (one processor stage per model folder, its actors
held by Ray Data), so the job pays one engine start per folder and actor, never one per shard.
The inputs are pdray's own token ids (the training encoding of
:func:`pdray.scoring.backends.encode_pairs`, prompt cut from the left), so the processors'
chat-template, tokenize and detokenize stages are off; the per-request pooling parameter
``use_activation=False`` keeps the raw head logits; with last-token pooling prefix caching is on,
and a pair's chosen and rejected rows travel together, so their shared prompt is computed once
(mean pooling needs every token's state: vLLM serves it without prefix caching).

Rows are (pair, side, slot): a folder that serves several plan entries (``all_in_one``: one
folder, one system prompt per aspect) reads slot j's encoding; a folder with fewer entries gets a
one-token input for the slots it does not serve (its output is ignored), so every processor sees
every row. The shard layer is the runner's (:mod:`pdray.scoring.shards`): the same plan, the
same fingerprint checks, the same commit (:func:`pdray.scoring.runner.commit_shard`), so a job
killed anywhere resumes from its committed shards with identical output. The driver holds only
the shards in flight (their logits), never the table. Rows vLLM fails on are counted per pair
(``failures/``), as the HF path counts them.
"""

from __future__ import annotations

import math
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pdray.errors import PdrayError
from pdray.scoring.runner import RunStats, commit_shard, format_progress
from pdray.scoring.shards import PROGRESS_S, Staged, commit
from pdray.scoring.vllm_engine import RAW_LOGITS

META = "_meta"      # OUTPUT/_meta/<shard>.parquet: a shard's per-pair metadata while in flight
ERROR = "__inference_error__"


def folder_slots(plan) -> tuple[list[str], dict[str, list[int]], int]:
    """(model folders in plan order, folder → its plan entries, slots per pair side)."""
    folders: list[str] = []
    entries: dict[str, list[int]] = {}
    for p, (folder, *_rest) in enumerate(plan):
        if folder not in entries:
            folders.append(folder)
            entries[folder] = []
        entries[folder].append(p)
    return folders, entries, max(len(v) for v in entries.values())


def preprocess(f: int, row: dict) -> dict:
    """Processor input for folder ``f``: pdray's token ids, raw logits requested."""
    return {"tokenized_prompt": list(row[f"ids_{f}"]), "pooling_params": dict(RAW_LOGITS)}


def postprocess(f: int, carry: tuple[str, ...], row: dict) -> dict:
    """Processor output → the carried columns and folder ``f``'s head logits (float64)."""
    emb = row.get("embeddings")
    if emb is None:
        raise PdrayError(f"vLLM returned no logits for shard {row.get('_shard')} "
                         f"pair {row.get('_row')}")
    out = {c: row[c] for c in carry}
    out[f"logits_{f}"] = np.asarray(emb, dtype=np.float64).reshape(-1).tolist()
    return out


def carried(f: int, n_folders: int) -> tuple[str, ...]:
    """Columns a row keeps after folder ``f``'s processor: its key, the encodings still to be
    scored, the logits already computed."""
    return (("_shard", "_row", "_side", "_slot")
            + tuple(f"ids_{g}" for g in range(f + 1, n_folders))
            + tuple(f"logits_{g}" for g in range(f)))


class EncodeShards:
    """Ray Data callable class: a shard descriptor → one row per (ok pair, side, slot) with the
    token ids of every model folder; the shard's per-pair metadata (ids, aspects, response
    lengths, text errors, identical inputs) goes to ``OUTPUT/_meta/<shard>.parquet``."""

    def __init__(self, input_path: str, rm_dir: str, cfg_json: str, out: str):
        from transformers import AutoTokenizer

        from pdray.rm.model_set import RewardModelSet
        from pdray.scoring.backends import scoring_plan
        from pdray.scoring.config import ScoreConfig

        self.cfg = ScoreConfig.model_validate_json(cfg_json)
        self.rm_set = RewardModelSet.load(rm_dir)
        self.plan = scoring_plan(self.rm_set, rm_dir)
        self.folders, self.entries, self.slots = folder_slots(self.plan)
        self.toks = {f: AutoTokenizer.from_pretrained(f, trust_remote_code=self.cfg.trust_remote_code)
                     for f in self.folders}
        self.max_length = self.cfg.max_length or self.rm_set.max_length
        self.input = pq.ParquetFile(input_path)
        self.out = Path(out)

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = [self._shard(n, rg) for n, rg in zip(batch["name"].to_pylist(),
                                                     batch["row_group"].to_pylist())]
        return pa.concat_tables(tables)

    def _shard(self, name: str, rg: int) -> pa.Table:
        from pdray.models.formatting import response_token_lens
        from pdray.schema import text_errors
        from pdray.scoring.backends import encode_pairs

        pairs = self.input.read_row_group(rg)
        n = pairs.num_rows
        errors = text_errors(pairs)
        ok = [i for i in range(n) if errors[i] is None]
        cols = {k: [pairs[k][i].as_py() for i in ok] for k in ("prompt", "chosen", "rejected")}
        same = np.zeros(n, dtype=bool)
        lc, lr = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        enc, tokens = {}, np.zeros(n, dtype=np.int64)
        for p, (folder, _, system, _) in enumerate(self.plan):
            tc, tr, s = encode_pairs(self.toks[folder], cols["prompt"], cols["chosen"],
                                     cols["rejected"], system, self.max_length,
                                     self.rm_set.response_share)
            enc[p] = (tc, tr)
            same[ok] |= s
            tokens[ok] += [len(a) + len(b) for a, b in zip(tc, tr)]
        if ok:
            tok = self.toks[self.folders[0]]
            lc[ok] = response_token_lens(tok, cols["chosen"])
            lr[ok] = response_token_lens(tok, cols["rejected"])
        meta = pa.table({"id": pairs["id"], "aspect": pairs["aspect"], "chosen_len": lc,
                         "rejected_len": lr, "same_input": same, "tokens": tokens,
                         "_error": pa.array(errors, pa.string())})
        commit(meta, self.out / META / f"{name}.parquet")
        rows = {"_shard": [], "_row": [], "_side": [], "_slot": []}
        ids = {f: [] for f in range(len(self.folders))}
        for r, i in enumerate(ok):
            for side in (0, 1):
                for slot in range(self.slots):
                    rows["_shard"].append(name)
                    rows["_row"].append(i)
                    rows["_side"].append(side)
                    rows["_slot"].append(slot)
                    for f, folder in enumerate(self.folders):
                        mine = self.entries[folder]
                        ids[f].append(enc[mine[slot]][side][r] if slot < len(mine)
                                      else enc[mine[0]][side][r][:1])   # unused slot: 1 token
        table = {k: pa.array(v, pa.string() if k == "_shard" else pa.int32())
                 for k, v in rows.items()}
        for f, v in ids.items():
            table[f"ids_{f}"] = pa.array(v, pa.list_(pa.int32()))
        return pa.table(table)


class _InFlight:
    """A shard being assembled on the driver: its metadata, the logits received so far."""

    def __init__(self, out: Path, name: str, keys: list[str], slots: int):
        self.meta = pq.read_table(out / META / f"{name}.parquet")
        n = self.meta.num_rows
        self.ok = np.asarray([e is None for e in self.meta["_error"].to_pylist()])
        self.rewards = {k: np.full((2, n), np.nan) for k in keys}
        self.errors = self.meta["_error"].to_pylist()
        self.expected = int(self.ok.sum()) * 2 * slots
        self.received = 0
        self.tokens = float(self.meta["tokens"].to_numpy().sum())

    def table(self, name: str, keys: list[str]) -> pa.Table:
        from pdray.scoring.actor import scores_table

        n = self.meta.num_rows
        gaps = {k: self.rewards[k][0] - self.rewards[k][1] for k in keys}
        for i in range(n):
            if self.errors[i] is None and any(np.isnan(gaps[k][i]) for k in keys):
                self.errors[i] = "vLLM returned no reward for this pair"
        batch = self.meta.append_column("_shard", pa.array([name] * n, pa.string()))
        n_ok = max(int(self.ok.sum()), 1)
        return scores_table(batch, keys, gaps, self.meta["same_input"].to_numpy(),
                            self.meta["chosen_len"].to_numpy(), self.meta["rejected_len"].to_numpy(),
                            self.errors, tokens=self.tokens / n_ok, padded=self.tokens / n_ok)


def processor_kwargs(folder: str, cfg, max_length: int, *, cpu: bool, cpus: float,
                     threads: int, archs) -> dict:
    """Keyword arguments of ``vLLMEngineProcessorConfig`` for one reward-model folder. On CPU
    the engine actors ask for CPUs, not a GPU (a placement bundle of ``cpus``), with the
    environment of :func:`pdray.scoring.vllm_engine.engine_environment` for ``threads``."""
    from pdray.scoring.vllm_engine import engine_env, engine_kwargs

    engine = engine_kwargs(folder, cfg, max_length, cpu=cpu, archs=archs)
    engine.pop("model")
    kw = {"model_source": folder, "task_type": "classify", "engine_kwargs": engine,
          "batch_size": cfg.llm_batch_size, "concurrency": cfg.num_actors,
          "chat_template_stage": False, "tokenize_stage": False, "detokenize_stage": False,
          "should_continue_on_error": True}
    if cpu:
        kw["placement_group_config"] = {"bundles": [{"CPU": cpus}]}
        kw["runtime_env"] = {"env_vars": engine_env(threads)}
    return kw


def score_ray_llm(staged: Staged, pending: list[str], out: Path, *, rm_set, rm_dir: str, cfg,
                  echo, verbose: bool = False, progress_s: float = PROGRESS_S) -> RunStats:
    """Score the ``pending`` shards through one Ray Data pipeline (module docstring)."""
    import ray
    import ray.data
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    from pdray.raysetup import quiet_ray_data
    from pdray.scoring.backends import scoring_plan
    from pdray.scoring.vllm_engine import on_cpu, vllm_architectures

    stats = RunStats()
    if not pending:
        return stats
    # vLLM importable and every folder servable: checked by score_pairs' preflight
    quiet_ray_data(verbose)
    plan = scoring_plan(rm_set, rm_dir)
    folders, entries, slots = folder_slots(plan)
    archs = vllm_architectures()
    cpu = on_cpu()
    total_cpus = float(ray.cluster_resources().get("CPU", 1.0))
    engines = len(folders) * cfg.num_actors
    # logical CPUs of an engine actor: the cluster's, less the encoder's 0.25 and the row maps'
    cpus = cfg.cpus_per_actor or max(0.1, math.floor(10 * (total_cpus - 0.5) / engines) / 10)
    threads = max(1, math.floor(total_cpus / len(folders)))
    max_length = cfg.max_length or rm_set.max_length
    index = {e["name"]: i for i, e in enumerate(staged.plan)}
    rows_of = {e["name"]: e["rows"] for e in staged.plan}
    total = sum(rows_of[n] for n in pending)
    keys = [k for *_, heads in plan for k, _ in heads]
    items = [{"name": n, "row_group": index[n]} for n in pending]
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        EncodeShards, batch_size=1, batch_format="pyarrow",
        fn_constructor_args=(str(staged.path), rm_dir, cfg.model_dump_json(), str(out)),
        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.25)
    for f, folder in enumerate(folders):
        conf = vLLMEngineProcessorConfig(**processor_kwargs(
            folder, cfg, max_length, cpu=cpu, cpus=cpus, threads=threads, archs=archs))
        ds = build_processor(conf, preprocess=partial(preprocess, f),
                             postprocess=partial(postprocess, f, carried(f, len(folders))),
                             # light row maps: a whole CPU each would starve the engines
                             preprocess_map_kwargs={"num_cpus": 0.05},
                             postprocess_map_kwargs={"num_cpus": 0.05})(ds)
    echo(f"[score] ray_llm: {len(folders)} vLLM engine(s) × {cfg.num_actors} "
         f"({'CPU' if cpu else 'GPU'}), {slots} input(s) per pair side")
    t0 = time.perf_counter()
    first = None
    flight: dict[str, _InFlight] = {}
    done_rows = 0

    def finish(name: str) -> None:
        nonlocal done_rows
        sh = flight.pop(name)
        r = commit_shard(sh.table(name, keys), out, name)
        stats.add(r)
        done_rows += rows_of[name]
        (out / META / f"{name}.parquet").unlink(missing_ok=True)

    stop = threading.Event()

    def tick():   # a progress line at least every progress_s, rows or not
        while not stop.wait(progress_s):
            echo(format_progress("score", done_rows, total, time.perf_counter() - t0))

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            if first is None:
                first = time.perf_counter() - t0
                stats.engine_seconds, stats.engines = first, engines
                echo(f"[score] engines up: first scores after {first:.0f}s")
            _absorb(batch, flight, out, keys, plan, folders, entries, slots, finish)
    finally:
        stop.set()
        ticker.join(timeout=5)
    for name in pending:      # shards with no scorable pair never send a row
        if name not in flight and (out / META / f"{name}.parquet").exists():
            flight[name] = _InFlight(out, name, keys, slots)
        if name in flight and flight[name].received >= flight[name].expected:
            finish(name)
    stats.seconds = time.perf_counter() - t0
    missing = sorted(set(pending) - {p.stem for p in (out / "shards").glob("*.parquet")})
    if missing:
        raise PdrayError(f"[score] shards not scored after the run: {missing[:5]}")
    echo(format_progress("score", done_rows, total, stats.seconds))
    return stats


def _absorb(batch: pa.Table, flight: dict, out: Path, keys, plan, folders, entries, slots,
            finish) -> None:
    """Put a batch of processor rows into their shards' logits; commit the shards it completes."""
    cols = batch.column_names
    shard = batch["_shard"].to_pylist()
    row = batch["_row"].to_pylist()
    side = batch["_side"].to_pylist()
    slot = batch["_slot"].to_pylist()
    err = batch[ERROR].to_pylist() if ERROR in cols else [""] * batch.num_rows
    logits = {f: batch[f"logits_{f}"].to_pylist() if f"logits_{f}" in cols
              else [None] * batch.num_rows for f in range(len(folders))}
    touched = set()
    for i, name in enumerate(shard):
        sh = flight.get(name)
        if sh is None:
            sh = flight[name] = _InFlight(out, name, keys, slots)
        sh.received += 1
        touched.add(name)
        if err[i]:
            if sh.errors[row[i]] is None:
                sh.errors[row[i]] = f"vLLM: {err[i]}"
            continue
        for f, folder in enumerate(folders):
            mine = entries[folder]
            if slot[i] >= len(mine) or logits[f][i] is None:
                continue
            _, _, _, heads = plan[mine[slot[i]]]
            for k, h in heads:
                sh.rewards[k][side[i], row[i]] = logits[f][i][h]
    for name in touched:
        if flight[name].received >= flight[name].expected:
            finish(name)
