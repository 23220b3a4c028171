"""Source adapters: read rows of any supported file, dispatch to the format's loader.

Every loader turns a source into canonical pairs (:mod:`pdray.schema`) or, for the rating
sources, into one row per rated response (:data:`pdray.data.result.RESPONSE_SCHEMA`) for
:func:`pdray.data.build.build_conflict_dataset`. Bad input raises a one-line
:class:`~pdray.errors.DataError` naming file, row (0-based, over non-empty lines) and field, or
with ``quarantine=True`` is set aside and counted; ``rows_in = rows_out + quarantined + dropped``
always holds (:meth:`LoadResult.check_accounting`).
"""

from __future__ import annotations

import bisect
import json
import logging

import pyarrow as pa

from pdray.data.generic import load_generic
from pdray.data.helpsteer import load_helpsteer
from pdray.data.pku import load_pku_saferlhf
from pdray.data.result import LoadResult, RowIssues
from pdray.data.source_rows import SourceRows
from pdray.data.ultrafeedback import load_binarized, load_hh_rlhf, load_ultrafeedback_raw
from pdray.errors import ConfigError, DataError
from pdray.io import detect_format, read_table
from pdray.schema import (
    RowChecker,
    check_aspect_count,
    conform,
    pairs_from_rows,
    split_valid,
    validate_pairs,
)

log = logging.getLogger(__name__)

FORMATS = ("pairs", "ultrafeedback_raw", "ultrafeedback_binarized", "trl", "helpsteer2",
           "pku_saferlhf", "hh_rlhf", "generic")

def load_pairs(path: str, *, quarantine: bool = False, known_aspects: list[str] | None = None,
               min_aspects: int = 1) -> LoadResult:
    """A file already in the canonical pair schema. JSON rows are type-checked one by one
    (:class:`pdray.schema.RowChecker`) before Arrow conversion, then the table is checked as a
    whole (:func:`pdray.schema.find_problems`); Parquet columns must have the canonical types
    (a wrong column type is an error even with ``quarantine``). An empty file is an error."""
    path = str(path)
    ka = set(known_aspects) if known_aspects else None
    issues = RowIssues(path, quarantine)
    if detect_format(path) == "parquet":
        table, rows = read_table(path), None
        n_in = table.num_rows
    else:
        reader, checker = SourceRows(path, issues), RowChecker()
        objs, rows = [], []
        for i, obj in reader:
            problem = checker.check(i, obj)
            if problem:
                issues.bad(i, *problem, json.dumps(obj, ensure_ascii=False, default=str))
            else:
                objs.append(obj)
                rows.append(i)
        n_in = reader.n
        table = _to_table(objs, rows, issues)
    if n_in == 0:
        raise DataError("no rows (the file is empty)", file=path)
    if not quarantine:
        good = validate_pairs(table, path, known_aspects=ka, min_aspects=min_aspects)
    else:
        good, bad = split_valid(table, path, known_aspects=ka)
        for r in bad.to_pylist():
            src = rows[r["_row"]] if rows is not None else r["_row"]
            issues.bad(src, r["_field"], r["_error"], json.dumps(
                {k: v for k, v in r.items() if not k.startswith("_")}, ensure_ascii=False,
                default=str))
        if good.num_rows:  # none left: the caller reports that, with the quarantine count
            check_aspect_count(good, path, min_aspects)
    return LoadResult(good, [], issues.quarantined,
                      issues.counts(n_in, good.num_rows, pairs_out=good.num_rows)).check_accounting()


def read_pairs(path, *, validate: bool = True, min_aspects: int = 1) -> pa.Table:
    """Read a canonical pair table (Parquet or JSONL) and check it against the contract (row
    by row: :func:`load_pairs`); ``validate=False`` only gives the columns their canonical
    types."""
    if validate:
        return load_pairs(str(path), min_aspects=min_aspects).table
    return conform(read_table(path), str(path))


def _to_table(objs: list[dict], rows: list[int], issues: RowIssues) -> pa.Table:
    """Checked rows -> Arrow; a value Arrow still refuses (e.g. nested types that differ
    between rows) is raised, or its row quarantined and the rest converted again."""
    while True:
        try:
            return pairs_from_rows(objs, issues.file, rows)
        except DataError as e:
            if not issues.quarantine or e.row is None:
                raise
            k = bisect.bisect_left(rows, e.row)
            issues.bad(e.row, e.field, e.reason, json.dumps(objs[k], ensure_ascii=False,
                                                            default=str))
            del objs[k], rows[k]


def loader_for(fmt: str):
    """The loader function of format ``fmt``."""
    loaders = {"pairs": load_pairs, "ultrafeedback_raw": load_ultrafeedback_raw,
               "ultrafeedback_binarized": load_binarized, "trl": load_binarized,
               "helpsteer2": load_helpsteer, "pku_saferlhf": load_pku_saferlhf,
               "hh_rlhf": load_hh_rlhf, "generic": load_generic}
    if fmt not in loaders:
        raise ConfigError(f"unknown data format {fmt!r} (known: {', '.join(FORMATS)})")
    return loaders[fmt]


def load_source(path: str, fmt: str = "pairs", *, min_aspects: int = 1, **options) -> LoadResult:
    """Load ``path`` in format ``fmt`` (one of :data:`FORMATS`).

    Pair formats return canonical pairs; the rating sources (``ultrafeedback_raw``,
    ``helpsteer2``) return rated responses (``kind == "responses"``) to feed
    :func:`build_conflict_dataset`. Common options: ``quarantine`` (bool), ``known_aspects``
    (list; others are bad rows) and ``min_aspects`` (pair formats: fail when the output has
    fewer distinct aspects, e.g. 2 for Preference Divergence). The rest go to the loader.
    """
    loader = loader_for(fmt)
    if fmt == "pairs":
        options["min_aspects"] = min_aspects
    try:
        res = loader(path, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ConfigError(f"format {fmt!r}: {e}") from None
        raise
    res.check_accounting()
    if res.counts.get("rows_in", 1) == 0:
        raise DataError("no rows (the file is empty)", file=str(path))
    if res.kind == "pairs" and res.table.num_rows and min_aspects > 1:
        check_aspect_count(res.table, str(path), min_aspects)
    log.info("%s (%s): %s", path, fmt, res.counts)
    return res
