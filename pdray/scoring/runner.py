"""Execution half of the streaming runner: shard workers on a Ray Data actor pool, progress.

See :mod:`pdray.scoring.shards` for the plan, the staging of the input and the resume rules.
A stage plugs in its scorer class (``__init__(*args)``, ``__call__(pa.Table, progress=None) ->
pa.Table`` with an ``_error`` column, null when the row was scored); :class:`ShardWorker` wraps
it, reads its shard's row group, hands the *whole* shard to one call (so the scorer buckets the
shard's pairs by length: less padding than fixed sub-chunks), commits the shard's files and
reports rows to :class:`Progress`. The scorer reports its own progress through
``progress(done, total)`` in any unit (batches, tokens, model passes); the worker turns it into
rows of the shard and tops it up to the shard's rows when the call returns (a scorer that never
calls it still counts, one shard at a time). The driver only receives one stats row per shard.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pdray.errors import PdrayError
from pdray.raysetup import quiet_ray_data, stderr_to
from pdray.scoring.shards import PROGRESS_S, Staged, commit


class Progress:
    """A tiny Ray actor: rows done so far (summed over workers)."""

    def __init__(self):
        self.rows = 0
        self.starts = 0

    def started(self) -> int:
        """Count one scoring-actor start (first starts and restarts alike); return the count."""
        self.starts += 1
        return self.starts

    def add(self, n: int) -> None:
        self.rows += int(n)

    def get(self) -> int:
        return self.rows


def format_progress(tag: str, done: int, total: int, seconds: float) -> str:
    """``[tag] done/total rows (pct), rate rows/s, ETA`` — one progress line."""
    rate = done / seconds if seconds > 0 else 0.0
    left = max(total - done, 0)
    eta = f"{left / rate:.0f}s" if rate > 0 else "?"
    pct = 100.0 * done / total if total else 100.0
    return f"[{tag}] {min(done, total)}/{total} rows ({pct:.0f}%), {rate:.1f} rows/s, ETA {eta}"


def _redirect_output(log_dir: str | None) -> None:
    """Send this worker process's stdout/stderr (Python and C level) to a file in log_dir."""
    if not log_dir:
        return
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(log_dir) / f"worker-{os.getpid()}.log",
                 os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def shard_progress(counter, rows: int):
    """``progress(done, total)`` for a scorer working on a shard of ``rows`` rows: adds the rows
    the fraction ``done/total`` newly covers to the :class:`Progress` actor (never more than
    ``rows`` in all; nothing without an actor)."""
    sent = [0]

    def progress(done: float, total: float) -> None:
        k = rows if total <= 0 else min(rows, int(rows * done // total))
        if k > sent[0]:
            if counter is not None:
                counter.add.remote(k - sent[0])
            sent[0] = k

    return progress


RESTARTS_USED = "scoring actor restarts used up"


class ShardWorker:
    """Ray Data callable class: one block = one shard descriptor; scores and commits it.

    ``max_starts``: actor starts allowed in all (``num_actors + max_restarts``). Ray Data
    restarts a dead actor without limit; the start beyond this one refuses to build its scorer,
    and the run ends in one line (:data:`RESTARTS_USED`) instead of crashing forever."""

    def __init__(self, scorer_path: str, scorer_args: tuple, input_path: str, out: str,
                 progress=None, log_dir: str | None = None, max_starts: int | None = None):
        _redirect_output(log_dir)
        if progress is not None and max_starts is not None:
            import ray

            if ray.get(progress.started.remote()) > max_starts:
                raise PdrayError(f"{RESTARTS_USED}: the scoring actors died "
                                 f"{max_starts} time(s) in all; the worker logs say why")
        mod, _, name = scorer_path.rpartition(".")
        self.scorer = getattr(importlib.import_module(mod), name)(*scorer_args)
        self.input = pq.ParquetFile(input_path)
        self.out = Path(out)
        self.progress = progress
        self.init_reported = False

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = []
        for name, rg in zip(batch["name"].to_pylist(), batch["row_group"].to_pylist()):
            rows.append(self._shard(name, rg))
        return pa.Table.from_pylist(rows)

    def _shard(self, name: str, rg: int) -> dict:
        t0 = time.perf_counter()
        pairs = self.input.read_row_group(rg)
        pairs = pairs.append_column("_shard", pa.array([name] * pairs.num_rows, pa.string()))
        report = shard_progress(self.progress, pairs.num_rows)
        t = self.scorer(pairs, progress=report)
        report(1, 1)   # the whole shard, whatever the scorer reported
        stats = commit_shard(t, self.out, name)
        stats["seconds"] = time.perf_counter() - t0
        init = getattr(self.scorer, "init_stats", dict)()   # reported once per actor
        self.init_reported, first = True, not self.init_reported
        stats["engines"] = int(init.get("engines", 0)) if first else 0
        stats["engine_seconds"] = float(init.get("engine_seconds", 0.0)) if first else 0.0
        return stats


def commit_shard(t: pa.Table, out: Path, name: str) -> dict:
    """Commit a scored shard (rows with ``_error`` null) and its failures (the others, with
    their error) under ``out``; return its stats row. The shard file is written last: its
    presence marks the shard done."""
    err = t["_error"]
    bad = pc.invert(pc.is_null(err))
    failed = t.filter(bad).select(["id", "aspect", "_error"]).rename_columns(
        ["id", "aspect", "error"])
    good = t.filter(pc.is_null(err))
    stats = {"name": name, "scored": good.num_rows, "failed": failed.num_rows,
             "tokens": float(pc.sum(good["_tokens"]).as_py() or 0)
             if "_tokens" in good.column_names else 0.0,
             "padded": float(pc.sum(good["_padded"]).as_py() or 0)
             if "_padded" in good.column_names else 0.0,
             "seconds": 0.0}
    good = good.drop_columns([c for c in good.column_names if c.startswith("_")])
    commit(failed, Path(out) / "failures" / f"{name}.parquet")
    commit(good, Path(out) / "shards" / f"{name}.parquet")  # last: marks the shard done
    return stats


@dataclass
class RunStats:
    scored: int = 0
    failed: int = 0
    tokens: float = 0.0
    padded: float = 0.0
    seconds: float = 0.0
    engines: int = 0              # engines started (vLLM backends), over all actors
    engine_seconds: float = 0.0   # the slowest actor's engine start

    def add(self, r: dict) -> None:
        """Sum one shard's stats row into the run's."""
        self.scored += int(r["scored"])
        self.failed += int(r["failed"])
        self.tokens += float(r["tokens"])
        self.padded += float(r["padded"])
        self.engines += int(r.get("engines", 0))
        self.engine_seconds = max(self.engine_seconds, float(r.get("engine_seconds", 0.0)))


def run_shards(staged: Staged, pending: list[str], out: Path, *, scorer_path: str,
               scorer_args: tuple, num_actors: int, num_cpus: float | None,
               num_gpus: float | None, max_restarts: int, tag: str, echo,
               verbose: bool = False, progress_s: float = PROGRESS_S) -> RunStats:
    """Score the ``pending`` shards on an actor pool; return the summed stats."""
    import ray
    import ray.data

    stats = RunStats()
    if not pending:
        return stats
    quiet_ray_data(verbose)
    index = {e["name"]: i for i, e in enumerate(staged.plan)}
    rows = {e["name"]: e["rows"] for e in staged.plan}
    total = sum(rows[n] for n in pending)
    items = [{"name": n, "row_group": index[n]} for n in pending]
    counter = ray.remote(num_cpus=0)(Progress).remote()
    log_dir = None if verbose else str(out / "logs")
    ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        ShardWorker, batch_size=None, batch_format="pyarrow",
        fn_constructor_args=(scorer_path, scorer_args, str(staged.path), str(out), counter,
                             log_dir, num_actors + max_restarts),
        # one call at a time per actor (max_concurrency 1), run on the actor's own thread, where
        # the scorer was built and set its torch threads, not on Ray Data's extra UDF thread
        compute=ray.data.ActorPoolStrategy(size=num_actors, enable_true_multi_threading=True),
        # Ray Data restarts dead actors and retries their shard (its defaults); ShardWorker
        # caps the restarts at max_restarts (Ray 2.64 drops map_batches' max_restarts)
        num_cpus=num_cpus, num_gpus=num_gpus or None)
    if log_dir:
        echo(f"[{tag}] worker logs: {log_dir}")
    t0 = time.perf_counter()
    stop = threading.Event()

    def report():
        while not stop.wait(progress_s):
            try:
                done = ray.get(counter.get.remote(), timeout=10)
            except Exception:  # noqa: BLE001, S112 - a missed tick is not an error
                continue
            echo(format_progress(tag, done, total, time.perf_counter() - t0))

    ticker = threading.Thread(target=report, daemon=True)
    ticker.start()
    seen = set()
    try:
        # quiet: the driver's stderr while the pool runs (Ray's core-worker lines about Ray
        # Data's actors, Ray Data's own error logs) goes to the logs folder
        with stderr_to(Path(log_dir) / "driver.err" if log_dir else None):
            for r in ds.iter_rows():
                seen.add(r["name"])
                stats.add(r)
    except Exception as e:
        if RESTARTS_USED not in str(e):
            raise
        raise PdrayError(f"[{tag}] {RESTARTS_USED} (max_restarts={max_restarts}): see "
                         f"{log_dir or 'the Ray worker logs'}; committed shards are kept, "
                         f"a re-run resumes") from None
    finally:
        stop.set()
        ticker.join(timeout=5)
        ray.kill(counter)
    stats.seconds = time.perf_counter() - t0
    missing = sorted(set(pending) - seen)
    if missing:
        raise PdrayError(f"[{tag}] shards not scored after the run: {missing[:5]}")
    return stats   # the caller's summary line (rows scored and failed, rate) ends the run


def actor_cpus(cpus_per_actor: float | None, num_actors: int) -> float:
    """Ray CPUs (and so torch threads) of each scoring actor: as set, else the cluster's CPUs
    shared by the ``num_actors`` actors (at least 1), so one actor on a laptop gets every core."""
    if cpus_per_actor:
        return cpus_per_actor
    import ray

    total = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1.0, float(math.floor(total / num_actors)))
