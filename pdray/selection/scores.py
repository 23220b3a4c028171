"""The scores contract (docs/CONTRACTS.md): read it, check it, and turn it into PD inputs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.errors import ConfigError, DataError
from pdray.io import read_table
from pdray.length_modes import LENGTH_MODES, LengthTerm

GAP_PREFIX = "gap_"
REQUIRED = ("id", "aspect", "chosen_len", "rejected_len")


def gap_aspects(scores: pa.Table) -> list[str]:
    """Aspects with a ``gap_<k>`` column, in column order."""
    return [c[len(GAP_PREFIX):] for c in scores.column_names if c.startswith(GAP_PREFIX)]


def validate_scores(scores: pa.Table, file: str | None = None, *,
                    require_pd_aspects: bool = True, own: list | None = None) -> list[str]:
    """Check the contract and return the PD aspects (the rows' own aspects, each with a gap).

    Errors name the file, row and field: a missing column, an aspect with no ``gap_<k>``
    column, NaN or infinite gaps or lengths, negative lengths, null ids or aspects. ``own``:
    the distinct values of the ``aspect`` column when the caller has them already (it saves a
    hash pass over the strings). Every check is one cheap pass (a null count, a sum, a
    minimum); the row of an offending value is looked up only when there is one.
    """
    for c in REQUIRED:
        if c not in scores.column_names:
            raise DataError(f"required scores column is missing (have: {', '.join(scores.column_names)})",
                            file=file, field=c)
    gaps = set(gap_aspects(scores))
    if scores["aspect"].null_count:
        i = pc.indices_nonzero(pc.is_null(scores["aspect"])).to_pylist()[0]
        raise DataError("null aspect", file=file, row=i, field="aspect")
    own = pc.unique(scores["aspect"]).to_pylist() if own is None else list(own)
    for a in sorted(own):
        if a not in gaps:
            i = pc.indices_nonzero(pc.equal(scores["aspect"], a)).to_pylist()[0]
            raise DataError(f"unknown aspect {a!r}: no gap_{a} column (gap columns: "
                            f"{', '.join('gap_' + g for g in sorted(gaps)) or 'none'})",
                            file=file, row=i, field="aspect")
    for col in [GAP_PREFIX + g for g in gaps] + ["chosen_len", "rejected_len"]:
        _check_finite(scores[col], file, col)
    for col in ("chosen_len", "rejected_len"):
        low = pc.min(scores[col]).as_py()
        if low is not None and low < 0:
            neg = pc.less(scores[col], 0)
            i = pc.indices_nonzero(neg.fill_null(False)).to_pylist()[0]
            raise DataError(f"negative token length {scores[col][i].as_py()}", file=file, row=i,
                            field=col)
    if scores["id"].null_count:
        i = pc.indices_nonzero(pc.is_null(scores["id"])).to_pylist()[0]
        raise DataError("null id", file=file, row=i, field="id")
    if require_pd_aspects and len(own) < 2:
        raise DataError(f"PD needs pairs of at least two aspects, found {sorted(own)}",
                        file=file, field="aspect")
    return sorted(own)


def _check_finite(arr, file, col) -> None:
    """A numeric column without nulls, NaN or ±inf. Integers can only be null; for floats a
    finite sum proves every value finite (NaN and ±inf propagate), and only a non-finite sum
    (or an overflowing one) pays for the elementwise look-up of the first bad row."""
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise DataError(f"expected numbers, got {arr.type}", file=file, field=col)
    if not arr.null_count:
        if pa.types.is_integer(arr.type):
            return
        total = pc.sum(arr).as_py()
        if total is None or np.isfinite(total):
            return
    bad = pc.invert(pc.is_finite(arr.cast(pa.float64()))).fill_null(True)
    idx = pc.indices_nonzero(bad).to_pylist()
    if idx:
        raise DataError(f"non-finite value {arr[idx[0]].as_py()!r} "
                        f"({len(idx)} such rows)", file=file, row=idx[0], field=col)


def columns(scores: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, own aspects, Δlen) as numpy arrays."""
    ids = scores["id"].to_numpy(zero_copy_only=False).astype(object)
    own = scores["aspect"].to_numpy(zero_copy_only=False).astype(object)
    dlen = (scores["chosen_len"].to_numpy(zero_copy_only=False).astype(np.float64)
            - scores["rejected_len"].to_numpy(zero_copy_only=False).astype(np.float64))
    return ids, own, dlen


def gap(scores: pa.Table, aspect: str) -> np.ndarray:
    return scores[GAP_PREFIX + aspect].to_numpy(zero_copy_only=False).astype(np.float64)


def read_scores(path) -> pa.Table:
    """A scores table from a Parquet file, or a ``pdray score`` output directory
    (``<dir>/shards/*.parquet``), or any directory of Parquet shards."""
    from pathlib import Path

    p = Path(str(path))
    if p.is_dir() and (p / "shards").is_dir():
        return read_table(p / "shards")
    return read_table(path)


def scores_manifest(path) -> dict:
    """The ``manifest.json`` beside a scores table (a ``pdray score`` directory or the file's
    folder), or {} when there is none."""
    import json
    from pathlib import Path

    if path is None:
        return {}
    p = Path(str(path))
    for cand in ((p / "manifest.json") if p.is_dir() else None, p.parent / "manifest.json"
                 if p.is_file() and p.parent.name != "shards" else None,
                 p.parent.parent / "manifest.json" if p.parent.name == "shards" else None):
        if cand is not None and cand.is_file():
            try:
                return json.loads(cand.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise DataError("unreadable scores manifest", file=str(cand)) from None
    return {}


def length_term(path, rho: float | None = None, length_debias: str | None = None
                ) -> LengthTerm:
    """The length term of Eq. 18 for the scores at ``path``: what the scores manifest records
    (the reward-model set they were made with, ``ScoreManifest.length``), unless ``rho`` /
    ``length_debias`` are given. A table without a manifest and no explicit setting gets no
    length term. One scores table → one selection, whichever verb reads it."""
    term = scores_manifest(path).get("length") or {}
    recorded = term.get("mode", term.get("length_debias"))  # (older manifests: length_debias)
    if recorded is not None and recorded not in LENGTH_MODES:
        raise DataError(f"unknown length mode {recorded!r} (known: {', '.join(LENGTH_MODES)})",
                        file=str(path), field="length")
    mode = length_debias or recorded or "none"
    if rho is None:  # the manifest's ρ belongs to the manifest's mode only
        rho = term.get("rho", 0.0) if mode == recorded else 0.0
    try:
        return LengthTerm.of(mode, rho)
    except ConfigError as e:
        raise DataError(str(e), file=str(path), field="length") from None


def rm_metrics_for(path) -> dict | None:
    """The quality metrics (``metrics.json``) of the reward-model set the scores at ``path``
    were made with, when its folder is still there."""
    import json
    from pathlib import Path

    rm_dir = scores_manifest(path).get("rm_dir")
    f = Path(rm_dir) / "metrics.json" if rm_dir else None
    if f is None or not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


LOGPROB_COLUMNS = ("lossdiff", "irm")
"""The model-dependent columns (``pdray lossdiff score``) that lossdiff_irm and pd_irm read."""


def read_logprob_scores(path) -> pa.Table:
    """The scores table from an output directory (``shards/``) or a Parquet file."""
    from pathlib import Path

    p = Path(str(path))
    t = read_table(p / "shards") if (p / "shards").is_dir() else read_table(path)
    for c in ("id", "lossdiff", "irm"):
        if c not in t.column_names:
            raise DataError(f"not a log-prob scores table (have: {', '.join(t.column_names)})",
                            file=str(path), field=c)
    return t


def join_logprob_scores(scores: pa.Table, logprobs: pa.Table, file: str | None = None,
                        held_out: pa.Array | None = None) -> pa.Table:
    """``scores`` with the ``lossdiff`` and ``irm`` columns of ``logprobs`` joined on ``id``.

    ``held_out``: the ids of the LossDiff validation pairs (they trained θ_val, so the second
    seed never scores or selects them); their rows leave the table (the caller counts them).
    Every other scored pair must have its log-prob scores: a pair whose log-probs failed (it is
    in the log-prob run's ``failures.parquet``) or was never scored fails with its id and the
    count, never a silent drop. Columns the gap scores already have are replaced.
    """
    for c in ("id", *LOGPROB_COLUMNS):
        if c not in logprobs.column_names:
            raise DataError(f"not a log-prob scores table (have: {', '.join(logprobs.column_names)})",
                            file=file, field=c)
    if held_out is not None and len(held_out):
        scores = scores.filter(pc.invert(pc.is_in(scores["id"],
                                                  value_set=held_out.cast(scores["id"].type))))
    idx = pc.index_in(scores["id"], value_set=logprobs["id"])
    if idx.null_count:
        i = pc.indices_nonzero(pc.is_null(idx)).to_pylist()[0]
        raise DataError(f"pair {scores['id'][i].as_py()!r} has no LossDiff/IRM scores "
                        f"({idx.null_count} of {scores.num_rows} pairs lack them; failed rows "
                        "are listed in the log-prob run's failures.parquet)",
                        file=file, row=i, field="id")
    out = scores.drop_columns([c for c in LOGPROB_COLUMNS if c in scores.column_names])
    for c in LOGPROB_COLUMNS:
        out = out.append_column(c, logprobs[c].take(idx))
    return out
