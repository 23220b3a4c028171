"""The data stage of the pipeline: D loaded (or generated), split, written as Parquet.

``run(cfg, inputs, out, echo) -> DataManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``data`` section
(:class:`pdray.data.config.DataStageConfig`); the stage reads no other stage. Its source file is
keyed by content (:func:`source_key`), so a source edited in place is reloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pdray.data.assemble import assemble
from pdray.data.config import DataStageConfig
from pdray.data.result import quarantine_table
from pdray.data.synthetic import synthetic_pairs
from pdray.errors import DataError, PdrayError
from pdray.fingerprint import file_fingerprint
from pdray.io import write_table
from pdray.manifest import StageManifest
from pdray.splits import hash_holdout


class DataManifest(StageManifest):
    pairs: str
    train: str
    test: str
    rows: int | None           # None: a verb's pairs file, streamed by the stage, not counted
    train_rows: int | None
    test_rows: int | None
    aspects: list[str]
    source: str
    format: str | None = None
    dropped: int = 0
    quarantined: int = 0
    quarantine: str | None = None
    achieved_conflict: float | None = None

    @classmethod
    def from_pairs(cls, path: str | Path, *, read: bool) -> DataManifest:
        """The manifest of a canonical pairs file given by path (all of it the training split):
        what a verb hands a stage. ``read``: the file is read and checked against the pairs
        contract here (a bad row is one line naming the file, row and field, before any work)
        and counted; otherwise the stage streams it (``pdray score``: never read whole) and
        checks it itself, and the counts and aspects are left unknown."""
        p = str(path)
        if not read:
            return cls(dir=str(Path(p).parent), pairs=p, train=p, test="", rows=None,
                       train_rows=None, test_rows=None, aspects=[], source=p)
        from pdray.data.loaders import read_pairs

        table = read_pairs(path)
        aspects = sorted(set(pc.unique(table["aspect"]).to_pylist()))
        return cls(dir=str(Path(p).parent), pairs=p, train=p, test="", rows=table.num_rows,
                   train_rows=table.num_rows, test_rows=0, aspects=aspects, source=p)


def split_holdout(table: pa.Table, fraction: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """Deterministic train/test split by a seeded hash of ``id`` (stable under row order)."""
    if fraction <= 0:
        return table, table.slice(0, 0)
    test = pa.array(hash_holdout(table["id"].to_pylist(), fraction, str(seed)))
    return table.filter(pc.invert(test)), table.filter(test)


def source_key(cfg: DataStageConfig) -> dict:
    """The source's content in the data stage's key.

    For a local or remote file (or a folder of files): its size, ``mtime_ns`` and content hash
    (:func:`file_fingerprint`: XXH3 of the whole file under 64 MiB, else of its edges and 16
    sampled blocks), so a source edited in place is reloaded. A hub id (no such file) is keyed
    by its name and ``data.options`` (pin a revision there).
    """
    if cfg.source == "synthetic":
        return {"source": None}
    fp = file_fingerprint(cfg.source)
    return {"source": dict(fp, file=cfg.source) if fp is not None else None}


def load_pairs(cfg: DataStageConfig) -> tuple[pa.Table, dict]:
    """The aggregated dataset D: synthetic, or any source through
    :func:`pdray.data.assemble.assemble` (the same build as ``pdray data build``)."""
    if cfg.source == "synthetic":
        kw = {} if cfg.conflict is None else {"conflict_rate": cfg.conflict}
        t = synthetic_pairs(cfg.n_pairs, aspects=cfg.aspects, length_effect=cfg.length_effect,
                            seed=cfg.seed, **kw)
        return t, {"source": "synthetic"}
    try:
        got = assemble(cfg, quarantine=bool(cfg.quarantine))
    except DataError as e:   # a bad row: say how to set such rows aside and go on
        if cfg.quarantine:    # already set: this error is not one a quarantine takes
            raise
        raise DataError(f"{e.reason} (set data.quarantine=FILE to set bad rows aside, "
                        f"counted, and go on)", file=e.file, row=e.row, field=e.field) from None
    info: dict[str, Any] = {"source": cfg.source, "format": cfg.format,
                            "dropped": len(got.load.dropped) if got.load.dropped is not None else 0}
    if cfg.quarantine:
        rows = got.load.quarantined
        write_table(quarantine_table(rows), cfg.quarantine)
        info.update(quarantined=len(rows), quarantine=str(Path(cfg.quarantine).resolve()))
    if got.build is not None:
        info["achieved_conflict"] = got.build.achieved_conflict
    return got.table, info


def run(cfg: DataStageConfig, inputs: dict, out: Path, echo) -> DataManifest:
    """Load D, split it, write ``pairs``, ``pairs_train`` and ``pairs_test`` (Parquet)."""
    before = source_key(cfg)
    table, info = load_pairs(cfg)
    if source_key(cfg) != before:
        raise PdrayError(f"[data] {cfg.source} changed while it was being read: run again")
    if cfg.limit:
        table = table.slice(0, cfg.limit)
    train, test = split_holdout(table, cfg.test_fraction, cfg.seed)
    write_table(table, out / "pairs.parquet")
    write_table(train, out / "pairs_train.parquet")
    write_table(test, out / "pairs_test.parquet")
    aspects = sorted(pc.unique(table["aspect"]).to_pylist())
    echo(f"[data] {table.num_rows} pairs, aspects {aspects}: "
         f"{train.num_rows} train / {test.num_rows} held out")
    if info.get("quarantined"):
        echo(f"[data] {info['quarantined']} bad row(s) set aside -> {info['quarantine']}")
    return DataManifest(dir=str(out), pairs=str(out / "pairs.parquet"),
                        train=str(out / "pairs_train.parquet"),
                        test=str(out / "pairs_test.parquet"), rows=table.num_rows,
                        train_rows=train.num_rows, test_rows=test.num_rows, aspects=aspects,
                        **info)
