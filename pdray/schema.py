"""The canonical pair schema: the contract every pdray stage reads and writes.

One row is one preference pair ``z = (k, x, y_w, y_l)`` of an aggregated fine-grained dataset
(METHOD.md, "Data model"):

============================  =======================  ==========================================
column                        type                     meaning
============================  =======================  ==========================================
``id``                        string, unique           stable pair id (ties in selection break on it)
``aspect``                    string                   the sub-preference k that labelled the pair
``prompt``                    string                   x
``chosen``                    string                   y_w, preferred under ``aspect``
``rejected``                  string                   y_l
``chosen_ratings``            map<string, double>      optional ground truth: rating of y_w per aspect
``rejected_ratings``          map<string, double>      optional ground truth: rating of y_l per aspect
``chosen_overall``            double                   optional holistic rating of y_w
``rejected_overall``          double                   optional holistic rating of y_l
``source``                    string                   optional origin (dataset, file, model)
============================  =======================  ==========================================

Further columns (scores, PD, selection flags) may ride along and are preserved by readers and
writers. :func:`validate_pairs` checks a table against this contract and reports every bad row
with its file, row and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pdray.errors import DataError

RATINGS_TYPE = pa.map_(pa.string(), pa.float64())

REQUIRED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("aspect", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("chosen", pa.string(), nullable=False),
    pa.field("rejected", pa.string(), nullable=False),
)
OPTIONAL_FIELDS: tuple[pa.Field, ...] = (
    pa.field("chosen_ratings", RATINGS_TYPE),
    pa.field("rejected_ratings", RATINGS_TYPE),
    pa.field("chosen_overall", pa.float64()),
    pa.field("rejected_overall", pa.float64()),
    pa.field("source", pa.string()),
)
PAIR_SCHEMA = pa.schema(list(REQUIRED_FIELDS) + list(OPTIONAL_FIELDS))
REQUIRED_NAMES = tuple(f.name for f in REQUIRED_FIELDS)
TEXT_FIELDS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class RowProblem:
    """One bad row: where it is and why it is bad."""

    row: int
    field: str
    reason: str


def empty_pairs() -> pa.Table:
    return PAIR_SCHEMA.empty_table()


def pairs_from_rows(rows: list[dict], file: str | None = None,
                    row_ids: list[int] | None = None) -> pa.Table:
    """Build a canonical table from python dicts (ratings given as plain dicts).

    Columns are the union of every row's keys (a key missing from row 0 is not dropped); a value
    Arrow cannot convert raises :class:`DataError` naming ``file``, the row (``row_ids[i]``, or
    the list position) and the field. Check JSON rows with :class:`RowChecker` first to report
    every type problem the same way, row by row."""
    if not rows:
        return empty_pairs()
    cols: dict[str, list] = {f.name: [] for f in PAIR_SCHEMA}
    extra: dict[str, list] = {}
    for i, r in enumerate(rows):
        for name in cols:
            v = r.get(name)
            if name.endswith("_ratings") and isinstance(v, dict):
                v = list(v.items())
            cols[name].append(v)
        for k in r:
            if k not in cols:
                extra.setdefault(k, [None] * i)
        for k in extra:
            extra[k].append(r.get(k))
    arrays = {name: _array(vals, PAIR_SCHEMA.field(name).type, file, name, row_ids)
              for name, vals in cols.items()}
    present = {n: a for n, a in arrays.items()
               if n in REQUIRED_NAMES or a.null_count < len(a)}
    table = pa.table(present)
    for k, vals in extra.items():
        table = table.append_column(k, _array(vals, None, file, k, row_ids))
    return table


_CONVERT_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError, RecursionError)


def _array(vals: list, typ, file, name, row_ids) -> pa.Array:
    """``pa.array`` that names the first row it cannot convert (found by bisecting prefixes)."""
    try:
        return pa.array(vals, type=typ)
    except _CONVERT_ERRORS as e:
        err = e
    lo, hi = 0, len(vals) - 1  # the shortest failing prefix ends at the bad row
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            pa.array(vals[:mid + 1], type=typ)
            lo = mid + 1
        except _CONVERT_ERRORS as e:
            hi, err = mid, e
    reason = " ".join(str(err).split()) or type(err).__name__
    raise DataError(f"cannot convert {type_name(vals[lo])} value: {reason[:200]}", file=file,
                    row=row_ids[lo] if row_ids is not None else lo, field=name) from None


def type_name(v) -> str:
    """The JSON name of a python value's type."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "text", list: "list", dict: "object"}.get(type(v), type(v).__name__)


def _show(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class RowChecker:
    """Type checks of pair rows given as python objects (JSON), one row at a time, *before*
    Arrow conversion: required fields present and text, ratings objects of aspect -> number,
    overall scores numbers, ``source`` text, and each extra column one JSON type throughout
    (the first row that sets it wins). ``check`` returns ``(field, reason)`` or ``None``."""

    def __init__(self):
        self.kinds: dict[str, tuple[str, int]] = {}  # extra column -> (type, first row)

    def check(self, row: int, obj: dict) -> tuple[str, str] | None:
        for name in REQUIRED_NAMES:
            if name not in obj:
                return name, "missing field"
            v = obj[name]
            if not isinstance(v, str):
                return name, ("null" if v is None else
                              f"expected text, got {type_name(v)} {_show(v)}")
        for name in ("chosen_ratings", "rejected_ratings"):
            v = obj.get(name)
            if v is None:
                continue
            if not isinstance(v, dict):
                return name, f"expected an object of aspect -> number, got {type_name(v)} {_show(v)}"
            for k, x in v.items():
                if x is not None and not _is_number(x):
                    return name, (f"rating for aspect {k!r} must be a number, got "
                                  f"{type_name(x)} {_show(x)}")
        for name in ("chosen_overall", "rejected_overall"):
            v = obj.get(name)
            if v is not None and not _is_number(v):
                return name, f"expected a number, got {type_name(v)} {_show(v)}"
        v = obj.get("source")
        if v is not None and not isinstance(v, str):
            return "source", f"expected text, got {type_name(v)} {_show(v)}"
        for k, v in obj.items():
            if v is None or k in PAIR_SCHEMA.names:
                continue
            kind = type_name(v)
            seen = self.kinds.setdefault(k, (kind, row))
            if seen[0] != kind:
                return k, f"mixed types in one column: {kind} here, {seen[0]} in row {seen[1]}"
        return None


ASPECT_MAX_CHARS = 128


def aspect_problem(name) -> str | None:
    """Why ``name`` cannot be an aspect (aspects name files and folders), or ``None``."""
    if not isinstance(name, str) or not name.strip():
        return "empty aspect name"
    if ("/" in name or "\\" in name or name.startswith(".") or name != name.strip()
            or len(name) > ASPECT_MAX_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        return (f"unsafe aspect name {_show(name)} (aspects name files and folders: no '/', "
                f"'\\', control characters, leading '.' or surrounding spaces, at most "
                f"{ASPECT_MAX_CHARS} characters)")
    return None


def conform(table: pa.Table, file: str | None = None) -> pa.Table:
    """Cast known columns to their canonical types (e.g. structs of ratings to maps).

    Unknown columns pass through untouched. Raises :class:`DataError` for a missing required
    column or a column that cannot be cast.
    """
    for name in REQUIRED_NAMES:
        if name not in table.column_names:
            raise DataError("required column is missing "
                            f"(columns present: {', '.join(table.column_names) or 'none'})",
                            file=file, field=name)
    cols = []
    for name in table.column_names:
        col = table[name]
        if name in PAIR_SCHEMA.names:
            want = PAIR_SCHEMA.field(name).type
            if col.type != want:
                col = _cast(col, want, file, name)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _cast(col: pa.ChunkedArray, want: pa.DataType, file, name) -> pa.ChunkedArray:
    """Only lossless, meaning-preserving casts (e.g. int64 -> text is refused, not "0", "1")."""
    t = col.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return pa.chunked_array([pa.nulls(len(col), type=want)])
    ok, what = True, str(want)
    if pa.types.is_string(want):
        ok = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        what = "text"
    elif pa.types.is_floating(want):
        ok = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
        what = "numbers"
    elif pa.types.is_map(want):
        if pa.types.is_struct(t):
            ok = all(pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                     or pa.types.is_null(f.type) for f in t)
        else:
            ok = pa.types.is_map(t) and (pa.types.is_integer(t.item_type)
                                         or pa.types.is_floating(t.item_type))
        what = "an aspect -> number map"
    if not ok:
        valid = pc.indices_nonzero(pc.is_valid(col))
        row = valid[0].as_py() if len(valid) else None
        raise DataError(f"expected {what}, got a column of {col.type}", file=file, row=row,
                        field=name)
    if pa.types.is_map(want) and pa.types.is_struct(t):
        keys = [t.field(i).name for i in range(t.num_fields)]
        out = []
        for v in col.to_pylist():
            out.append(None if v is None else [(k, v[k]) for k in keys if v.get(k) is not None])
        return pa.chunked_array([pa.array(out, type=want)])
    try:
        return col.cast(want)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise DataError(f"cannot cast {col.type} to {want}: {e}", file=file, field=name) from None


def find_problems(table: pa.Table, known_aspects: set[str] | None = None) -> list[RowProblem]:
    """Every contract violation of a conformed table, in row order (vectorised where possible).

    Checks: null or empty id/aspect/texts, duplicate ids (:func:`repeated_ids`), chosen identical
    to rejected, unsafe aspect names (:func:`aspect_problem`), aspects outside ``known_aspects``
    (in the ``aspect`` column and as keys of the ratings maps: :func:`ratings_problem`),
    non-finite ratings.
    """
    problems: list[RowProblem] = []
    for name in REQUIRED_NAMES:
        col = table[name]
        bad = pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(
            col.fill_null(""))), 0))
        for i in pc.indices_nonzero(bad.fill_null(True)).to_pylist():
            problems.append(RowProblem(i, name, "null" if col[i].as_py() is None else "empty text"))
    for i, first, v in repeated_ids(table["id"]):
        problems.append(RowProblem(i, "id", duplicate_id_reason(v, first)))
    same = pc.equal(table["chosen"], table["rejected"]).fill_null(False)
    for i in pc.indices_nonzero(same).to_pylist():
        problems.append(RowProblem(i, "rejected", "identical to chosen (a pair needs two "
                                   "different responses)"))
    unsafe = {a: r for a in pc.unique(table["aspect"]).to_pylist()
              if a is not None and a.strip() and (r := aspect_problem(a))}
    if unsafe:
        mask = pc.is_in(table["aspect"], value_set=pa.array(sorted(unsafe), type=pa.string()))
        for i in pc.indices_nonzero(mask.fill_null(False)).to_pylist():
            problems.append(RowProblem(i, "aspect", unsafe[table["aspect"][i].as_py()]))
    if known_aspects is not None:
        mask = pc.invert(pc.is_in(table["aspect"], value_set=pa.array(sorted(known_aspects))))
        for i in pc.indices_nonzero(mask.fill_null(False)).to_pylist():
            problems.append(RowProblem(
                i, "aspect", f"unknown aspect {table['aspect'][i].as_py()!r} "
                f"(known: {', '.join(sorted(known_aspects))})"))
    for name in ("chosen_overall", "rejected_overall"):
        if name in table.column_names:
            vals = table[name]
            bad = pc.invert(pc.is_finite(vals)).fill_null(False)
            for i in pc.indices_nonzero(bad).to_pylist():
                problems.append(RowProblem(i, name, f"non-finite rating {vals[i].as_py()!r}"))
    for name in ("chosen_ratings", "rejected_ratings"):
        if name in table.column_names:
            for i, m in enumerate(table[name].to_pylist()):
                reason = ratings_problem(m, known_aspects)
                if reason:
                    problems.append(RowProblem(i, name, reason))
    problems.sort(key=lambda p: p.row)
    return problems


def ratings_problem(ratings, known_aspects: set[str] | None = None) -> str | None:
    """Why one ``chosen_ratings`` / ``rejected_ratings`` cell (a list of (aspect, rating) pairs or
    a dict) is bad, or ``None``: an aspect rated twice, an unsafe aspect name
    (:func:`aspect_problem`), an aspect outside ``known_aspects``, a non-finite rating."""
    seen: set[str] = set()
    for k, v in (ratings.items() if isinstance(ratings, dict) else ratings or []):
        if k in seen:
            return f"aspect {k!r} rated twice"
        seen.add(k)
        unsafe = aspect_problem(k)
        if unsafe:
            return unsafe
        if known_aspects is not None and k not in known_aspects:
            return f"unknown aspect {k!r} (known: {', '.join(sorted(known_aspects))})"
        if v is None or not math.isfinite(v):
            return f"non-finite rating for aspect {k!r}: {v!r}"
    return None


def repeated_ids(ids: pa.Array | pa.ChunkedArray) -> list[tuple[int, int, object]]:
    """Every repeat of an id, in row order: ``(row, the id's first row, id)``; ``[]`` when the
    (non-null) ids are unique, found with one vectorised distinct count. The one duplicate-id
    check of every reader of pairs (validation, quarantine, the scoring runner's staging)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not len(ids) or pc.count_distinct(ids, mode="all").as_py() == len(ids):
        return []
    counts = pc.value_counts(ids)
    dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    dup = dup.filter(pc.is_valid(dup))   # null ids are reported as "null", not as repeats
    if not len(dup):
        return []
    rows = pc.indices_nonzero(pc.is_in(ids, value_set=dup).fill_null(False))
    first: dict = {}
    out = []
    for i, v in zip(rows.to_pylist(), ids.take(rows).to_pylist()):
        if v in first:
            out.append((i, first[v], v))
        else:
            first[v] = i
    return out


def duplicate_id_reason(value, first_row: int, repeats: int = 1) -> str:
    """The reason of a repeated id (the error's row is the repeat; this names the first)."""
    more = f"; {repeats} repeated rows in all" if repeats > 1 else ""
    return f"duplicate id {value!r} (first at row {first_row}{more})"


def check_unique_ids(ids: pa.Array | pa.ChunkedArray, file: str | None = None) -> None:
    """Raise :class:`DataError` naming ``file``, the first repeat's row and the row it repeats."""
    reps = repeated_ids(ids)
    if reps:
        row, first, v = reps[0]
        raise DataError(duplicate_id_reason(v, first, len(reps)), file=file, row=row, field="id")


def validate_pairs(table: pa.Table, file: str | None = None, *,
                   known_aspects: set[str] | None = None, min_aspects: int = 1) -> pa.Table:
    """Conform ``table`` to the pair schema and raise on the first bad row (file, row, field)."""
    table = conform(table, file)
    problems = find_problems(table, known_aspects)
    if problems:
        extra = f" ({len(problems) - 1} more problems)" if len(problems) > 1 else ""
        p = problems[0]
        raise DataError(p.reason + extra, file=file, row=p.row, field=p.field)
    check_aspect_count(table, file, min_aspects)
    return table


def check_aspect_count(table: pa.Table, file: str | None, min_aspects: int) -> None:
    n = len(pc.unique(table["aspect"])) if table.num_rows else 0
    if n < min_aspects:
        raise DataError(f"found {n} aspect(s) but at least {min_aspects} are needed "
                        "(Preference Divergence compares each pair against the other aspects)",
                        file=file, field="aspect")


def split_valid(table: pa.Table, file: str | None = None, *,
                known_aspects: set[str] | None = None) -> tuple[pa.Table, pa.Table]:
    """Quarantine mode: return (good rows, bad rows with ``_row``, ``_field``, ``_error`` columns)."""
    table = conform(table, file)
    problems = find_problems(table, known_aspects)
    first: dict[int, RowProblem] = {}
    for p in problems:
        first.setdefault(p.row, p)
    bad_idx = sorted(first)
    keep = pa.array([i not in first for i in range(table.num_rows)], type=pa.bool_())
    good = table.filter(keep)
    bad = table.take(pa.array(bad_idx, type=pa.int64()))
    bad = bad.append_column("_row", pa.array(bad_idx, type=pa.int64()))
    bad = bad.append_column("_field", pa.array([first[i].field for i in bad_idx], type=pa.string()))
    bad = bad.append_column("_error", pa.array([first[i].reason for i in bad_idx], type=pa.string()))
    return good, bad


def ratings_dict(value) -> dict[str, float] | None:
    """Turn a map cell (list of (key, value) pairs, or a dict) into a plain dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        return dict(value)
    return {k: v for k, v in value}


def text_errors(batch: pa.Table, fields=("prompt", "chosen", "rejected")) -> list[str | None]:
    """Per row, why it cannot be scored (the first null or blank text field), else None — the
    one check the scoring and log-prob actors apply before a row reaches a model."""
    cols = {k: batch[k].to_pylist() for k in fields}
    errors: list[str | None] = [None] * batch.num_rows
    for i in range(batch.num_rows):
        for k in fields:
            v = cols[k][i]
            if not isinstance(v, str) or not v.strip():
                errors[i] = f"field '{k}': {'null' if v is None else 'empty text'}"
                break
    return errors
