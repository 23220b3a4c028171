"""Rows of a source file, one ``(row, dict)`` at a time, for every format's loader.

JSONL / JSONL.gz / JSON arrays go through :func:`pdray.io.iter_json_rows` (bad lines reported or
quarantined with their row); Parquet files and folders are read batch by batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pdray.data.result import RowIssues
from pdray.errors import DataError, os_reason
from pdray.io import detect_format, iter_json_rows, read_table, resolve

log = logging.getLogger("pdray.data.loaders")
PROGRESS_EVERY = 100_000


class SourceRows:
    """Iterate ``(row, dict)`` over a JSONL / JSONL.gz / JSON-array / Parquet file.

    Unreadable rows (non-UTF-8 bytes, broken JSON, too deep, lone surrogates, not an object;
    :func:`pdray.io.iter_json_rows`) go through ``issues``
    (raise, or quarantine and skip). ``n`` counts every row seen, bad ones included. Logs
    progress every :data:`PROGRESS_EVERY` rows.
    """

    def __init__(self, path: str, issues: RowIssues):
        self.path, self.issues, self.n = str(path), issues, 0

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        t0 = time.perf_counter()
        for i, obj in self._raw():
            self.n = i + 1
            if self.n % PROGRESS_EVERY == 0:
                dt = time.perf_counter() - t0
                log.info("%s: %d rows read (%.0f rows/s)", self.path, self.n, self.n / max(dt, 1e-9))
            if obj is not None:
                yield i, obj

    def _raw(self) -> Iterator[tuple[int, dict | None]]:
        if detect_format(self.path) != "parquet":
            yield from iter_json_rows(self.path, on_bad=self.issues.bad)
            return
        fs, inner = resolve(self.path)
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            raise DataError("file does not exist", file=self.path)
        if info.type == pafs.FileType.Directory:
            batches = read_table(self.path).to_batches(max_chunksize=10_000)
        else:
            try:
                batches = pq.ParquetFile(fs.open_input_file(inner)).iter_batches(batch_size=10_000)
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"not a readable Parquet file: {os_reason(e)}",
                                file=self.path) from None
        i = 0
        for batch in batches:
            for obj in batch.to_pylist():
                yield i, obj
                i += 1
