"""A small append-only key/value cache in Parquet shards (generations and judgments).

``CACHE_DIR/<namespace>/part-*.parquet`` with a ``key`` column and string value columns. Each
``put`` writes one new shard atomically (so a crash loses nothing already written and two writers
never clobber each other); ``get_many`` reads all shards once and serves lookups from memory.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pdray.io import write_table


class ShardCache:
    def __init__(self, root: str | Path | None, namespace: str):
        self.dir = Path(root) / namespace if root else None
        self._mem: dict[str, dict] | None = None

    def _load(self) -> dict[str, dict]:
        if self._mem is None:
            self._mem = {}
            if self.dir and self.dir.exists():
                for f in sorted(self.dir.glob("part-*.parquet")):
                    for row in pq.read_table(f).to_pylist():
                        self._mem[row.pop("key")] = row
        return self._mem

    def get_many(self, keys) -> dict[str, dict]:
        mem = self._load()
        return {k: mem[k] for k in keys if k in mem}

    def put(self, rows: dict[str, dict]) -> None:
        if not rows:
            return
        self._load().update(rows)
        if self.dir is None:
            return
        table = pa.Table.from_pylist([{"key": k, **v} for k, v in rows.items()])
        write_table(table, self.dir / f"part-{uuid.uuid4().hex[:12]}.parquet")

    def __len__(self) -> int:
        return len(self._load())
