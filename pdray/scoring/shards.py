"""The one streaming, sharded scoring runner (reward gaps and LossDiff log-probs alike).

Shape: the driver *plans*, the actors *score and write*, the driver *collects small stats*.

1. :func:`stage_input` streams the pairs (a Parquet file batch by batch, a JSONL file line by
   line, or an in-memory table) once: it checks the required columns and that no id repeats
   (:func:`pdray.schema.check_unique_ids`: the file and both rows), hashes the content
   (:func:`pdray.fingerprint.table_hash` of fixed 4,096-row chunks, so the hash does not depend
   on ``shard_rows``) and writes the pairs to ``OUTPUT/_input.parquet`` with one row group per
   shard. The driver holds one shard at a time (and, for the id check, the id column).
2. :func:`reconcile` checks ``OUTPUT/plan.json`` against the inputs (content hash and what the
   caller adds: reward-model fingerprints, settings) and validates committed shards; see
   :mod:`pdray.scoring.reward_gaps` for the rules.
3. A Ray Data dataset of shard descriptors (one block each) goes through a pool of
   :class:`ShardWorker` actors (``map_batches(compute=ActorPoolStrategy)``): a worker reads its
   row group, scores it with the stage's scorer class, and commits ``failures/<shard>.parquet``
   then ``shards/<shard>.parquet`` itself (staging file, then rename). It returns one stats row.
4. A :class:`Progress` actor counts rows; the driver prints rows done, rows/s and ETA at least
   every ``PROGRESS_S`` seconds while the actors work.

Why not Ray Data's checkpointing (``DataContext.checkpoint_config``, Ray 2.60): its checkpoint
is the set of ids written (``IdColumnCheckpointManager`` loads the id column of its checkpoint
files and filters the read by it), so it has no notion of the inputs that produced a row: other
pairs content or other reward models under the same ids would be skipped, and an output file
lost after its ids were checkpointed is not rescored. Those are the
checks ``tests/stale`` asserts. Measured here (benchmarks/RESULTS.md, 2026-12-01), read_parquet
→ map_batches(ActorPoolStrategy) → write_parquet with a checkpoint on 200 rows: on a 2-CPU local
Ray the resumed run (checkpoint-filter actor pool + scorer pool + write tasks) did not finish in
8 minutes; with 4 logical CPUs it resumed (100 → 200 rows), and after one output file was
deleted the re-run wrote 0 rows: the table stayed at 100 of 200 rows with no error. So the
runner keeps its own shard layer (shard files validated against the plan) and Ray Data does the
streaming, the actor pool and the restarts.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pdray.errors import DataError, PdrayError
from pdray.fingerprint import table_hash
from pdray.io import detect_format, iter_json_rows, read_table, write_json
from pdray.schema import PAIR_SCHEMA, check_unique_ids, pairs_from_rows

PAIR_COLUMNS = ["id", "aspect", "prompt", "chosen", "rejected"]
PLAN = "plan.json"
PLAN_VERSION = 2
INPUT = "_input.parquet"
HASH_ROWS = 4096      # content-hash chunk (independent of shard_rows)
PROGRESS_S = 30.0     # at most this many seconds between progress lines


@dataclass
class Staged:
    """The pairs as the runner sees them: a row-group-per-shard Parquet file and its plan."""
    path: Path
    plan: list[dict]          # [{"name", "rows", "ids"}]: ids = sha256 of the sorted ids
    content_hash: str
    num_rows: int
    src: str | None = None


def _shard_name(i: int, ids: list) -> str:
    h = hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()[:10]
    return f"part-{i:05d}-{h}"


def ids_digest(ids) -> str:
    """Order-free digest of a shard's ids (scored and failed rows are stored apart)."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()[:16]


def _batches(pairs, columns: list[str]):
    """(batches of ``columns``, source path or None) without reading a Parquet file whole."""
    if isinstance(pairs, pa.Table):
        missing = [c for c in columns if c not in pairs.column_names]
        if missing:
            raise DataError("required column is missing", field=missing[0])
        return pairs.select(columns).to_batches(max_chunksize=HASH_ROWS), None
    src = str(pairs)
    if src.endswith(".parquet") and Path(src).is_file():
        try:
            f = pq.ParquetFile(src)
        except Exception as e:  # noqa: BLE001 - any unreadable file is one clear error
            raise DataError(f"not a readable Parquet file ({type(e).__name__})", file=src) from None
        names = f.schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError("required column is missing", file=src, field=missing[0])
        return f.iter_batches(batch_size=HASH_ROWS, columns=columns), src
    if detect_format(src) == "jsonl":
        return _json_batches(src, columns), src
    table = read_table(src)  # a folder of Parquet shards, or a remote file: read whole
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError("required column is missing", file=src, field=missing[0])
    return table.select(columns).to_batches(max_chunksize=HASH_ROWS), src


def _json_batches(src: str, columns: list[str]):
    """JSONL pairs as batches of ``HASH_ROWS`` rows, read line by line
    (:func:`pdray.io.iter_json_rows`): the driver holds one batch, never the file. ``columns``
    are canonical pair columns (:data:`pdray.schema.PAIR_SCHEMA`), so every batch has their
    canonical types and the rows, types and errors (naming file, row and field) are those of
    ``read_table(src)``: the content hash equals that of the same pairs in Parquet. A required
    column no row has is null in every row (each row then fails to score, counted), as in a
    whole read."""
    unknown = [c for c in columns if c not in PAIR_SCHEMA.names]
    if unknown:
        raise DataError("streamed JSONL can only give canonical pair columns", file=src,
                        field=unknown[0])
    rows, row_ids = [], []

    def batch() -> pa.RecordBatch:
        t = pairs_from_rows(rows, src, row_ids)
        for c in columns:   # an optional column no row of this batch has
            if c not in t.column_names:
                t = t.append_column(PAIR_SCHEMA.field(c), pa.nulls(t.num_rows,
                                                                    PAIR_SCHEMA.field(c).type))
        return t.select(columns).combine_chunks().to_batches()[0]

    for i, obj in iter_json_rows(src):
        rows.append(obj)
        row_ids.append(i)
        if len(rows) == HASH_ROWS:
            yield batch()
            rows, row_ids = [], []
    if rows:
        yield batch()


def stage_input(pairs, out: Path, shard_rows: int, columns: list[str] = PAIR_COLUMNS) -> Staged:
    """One streaming pass over the pairs: validate, hash, cut into shards (see module doc)."""
    import xxhash

    batches, src = _batches(pairs, columns)
    path = out / INPUT
    tmp = out / f".staging-{INPUT}-{uuid.uuid4().hex[:6]}"
    outer = xxhash.xxh3_128()
    plan: list[dict] = []
    hbuf: list[pa.RecordBatch] = []
    sbuf: list[pa.RecordBatch] = []
    hrows = srows = total = 0
    writer = None
    schema = None

    def flush_shard():
        nonlocal sbuf, srows, writer
        t = pa.Table.from_batches(sbuf, schema=schema).combine_chunks()
        ids = t["id"].to_pylist()
        plan.append({"name": _shard_name(len(plan), ids), "rows": t.num_rows,
                     "ids": ids_digest(ids)})
        writer.write_table(t, row_group_size=max(t.num_rows, 1))
        sbuf, srows = [], 0

    def flush_hash():
        nonlocal hbuf, hrows
        outer.update(table_hash(pa.Table.from_batches(hbuf, schema=schema)).encode())
        hbuf, hrows = [], 0

    try:
        for b in batches:
            if schema is None:
                schema = b.schema
                writer = pq.ParquetWriter(tmp, schema)
            else:
                b = b.cast(schema) if b.schema != schema else b
            pos = 0
            while pos < b.num_rows:  # cut at both the hash-chunk and the shard boundaries
                take = min(b.num_rows - pos, HASH_ROWS - hrows, shard_rows - srows)
                piece = b.slice(pos, take)
                hbuf.append(piece)
                sbuf.append(piece)
                hrows, srows, pos, total = hrows + take, srows + take, pos + take, total + take
                if hrows == HASH_ROWS:
                    flush_hash()
                if srows == shard_rows:
                    flush_shard()
        if schema is None:
            raise DataError("no pairs to score", file=src)
        if hrows:
            flush_hash()
        if srows:
            flush_shard()
        writer.close()
        check_unique_ids(pq.read_table(tmp, columns=["id"])["id"], src)  # rows = input rows
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return Staged(path, plan, outer.hexdigest(), total, src)


def _remove(p: Path) -> None:
    p.unlink(missing_ok=True)


def commit(table: pa.Table, path: Path) -> None:
    """Write atomically: a staging file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".staging-{path.name}-{uuid.uuid4().hex[:6]}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def validate_shard(out: Path, entry: dict, required: list[str]) -> str | None:
    """None when the committed shard is trustworthy, else why not."""
    name = entry["name"]
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
    if len(got) != entry["rows"]:
        return f"{len(got)} rows where the plan has {entry['rows']}"
    if len(set(good["id"].to_pylist())) != good.num_rows:
        return "duplicate ids"
    if ids_digest(got) != entry["ids"]:
        return "its ids differ from the plan's"
    return None


def reconcile(out: Path, staged: Staged, inputs: dict, shard_rows: int, required: list[str],
              what_changed, echo, tag: str) -> set[str]:
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
        why = (what_changed(prev.get("inputs") or {}, inputs) + " changed since it was scored"
               if prev and prev.get("version") == PLAN_VERSION
               else "no readable plan.json to check the shards against")
        echo(f"[{tag}] {out}: {why}: rescoring all {len(staged.plan)} shards")
        for p in committed + sorted(fails.glob("*.parquet")):
            _remove(p)
        committed = []
    names = {e["name"] for e in staged.plan}
    stale = [p for d in (shards, fails) for p in d.iterdir()
             if p.is_file() and (p.name.startswith(".staging-") or p.stem not in names)]
    if stale:
        echo(f"[{tag}] removing {len(stale)} stale file(s) not in the current plan "
             f"(shard_rows={shard_rows})")
        for p in stale:
            _remove(p)
    record = {"version": PLAN_VERSION, "inputs": inputs, "shard_rows": shard_rows,
              "shards": staged.plan}
    if prev != record:
        write_json(record, out / PLAN)
    done = set()
    present = {p.stem for p in shards.glob("part-*.parquet")}
    for e in staged.plan:
        if e["name"] not in present:
            continue
        why = validate_shard(out, e, required)
        if why is None:
            done.add(e["name"])
        else:
            echo(f"[{tag}] shard {e['name']} is not valid ({why}): rescoring it")
            _remove(shards / f"{e['name']}.parquet")
            _remove(fails / f"{e['name']}.parquet")
    return done


LABELS = {"pairs": "pairs content", "rm": "reward-model set", "models": "models",
          "scoring": "scoring settings", "settings": "scoring settings"}


def what_changed(old: dict, new: dict) -> str:
    """One phrase per input that differs: ``pairs content``, ``reward-model set (folders)``,
    ``scoring settings (key old -> new)``."""
    parts = []
    for key in sorted(set(old) | set(new), key=lambda k: (k != "pairs", k)):
        o, n = old.get(key), new.get(key)
        if o == n:
            continue
        label = LABELS.get(key, key)
        if not isinstance(o, dict) and not isinstance(n, dict):
            parts.append(label)
            continue
        o, n = o or {}, n or {}
        diff = sorted(k for k in set(o) | set(n) if o.get(k) != n.get(k))
        if key in ("scoring", "settings"):
            parts.append(f"{label} (" + ", ".join(f"{k} {o.get(k)} -> {n.get(k)}"
                                                  for k in diff) + ")")
        else:
            parts.append(f"{label} ({', '.join(diff)})")
    return "; ".join(parts) or "inputs"


def prepare_output(out: Path) -> None:
    (out / "shards").mkdir(parents=True, exist_ok=True)
    (out / "failures").mkdir(parents=True, exist_ok=True)


def finish_checks(out: Path, names: list[str], rows_in: int, tag: str,
                  sum_column: str | None = None) -> tuple[int, int, int, pa.Table]:
    """Counts of the finished table; writes ``failures.parquet`` (or removes a stale one); raises
    when rows in ≠ rows scored + rows failed or an id is scored twice. Returns
    (rows scored, rows failed, sum of ``sum_column``, failures)."""
    n_ok, distinct, flagged = count_scored(out, names, sum_column)
    failures = collect_failures(out, names)
    if failures.num_rows:
        commit(failures, out / "failures.parquet")
    else:
        _remove(out / "failures.parquet")
    if rows_in != n_ok + failures.num_rows:
        raise PdrayError(f"[{tag}] rows in ({rows_in}) != scored ({n_ok}) + failed "
                         f"({failures.num_rows})")
    if distinct != n_ok:
        raise PdrayError(f"[{tag}] {out / 'shards'}: duplicate ids in the scores table")
    for p in (out / "shards").glob(".staging-*"):
        _remove(p)
    return n_ok, failures.num_rows, flagged, failures


def collect_failures(out: Path, names: list[str]) -> pa.Table:
    """The failures of every shard in ``names`` (small: ids and errors only)."""
    parts = [pq.read_table(out / "failures" / f"{n}.parquet") for n in names]
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return pa.table({"id": pa.array([], pa.string()), "aspect": pa.array([], pa.string()),
                         "error": pa.array([], pa.string())})
    return pa.concat_tables(parts)


def count_scored(out: Path, names: list[str], sum_column: str | None = None) -> tuple[int, int, int]:
    """(rows, distinct ids, sum of a boolean column) over the committed shards, reading only the
    ``id`` (and ``sum_column``) columns."""
    n = 0
    total = 0
    ids = []
    for name in names:
        p = out / "shards" / f"{name}.parquet"
        cols = ["id"] + ([sum_column] if sum_column and sum_column in
                         pq.read_schema(p).names else [])
        t = pq.read_table(p, columns=cols)
        n += t.num_rows
        ids.append(t["id"].cast(pa.string()))
        if len(cols) > 1:
            total += int(pc.sum(t[sum_column]).as_py() or 0)
    distinct = pc.count_distinct(pa.chunked_array([c for a in ids for c in a.chunks],
                                                  type=pa.string())).as_py() if ids else 0
    return n, distinct, total
