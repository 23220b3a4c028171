"""What a loader returns, and how it treats bad rows (fail with a location, or quarantine)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pdray.errors import DataError, PdrayError
from pdray.schema import aspect_problem, duplicate_id_reason, type_name

RESPONSE_SCHEMA = pa.schema([
    ("prompt_id", pa.string()), ("prompt", pa.string()), ("response", pa.string()),
    ("ratings", pa.map_(pa.string(), pa.float64())), ("overall", pa.float64()),
    ("source", pa.string()),
])

QUARANTINE_SCHEMA = pa.schema([("file", pa.string()), ("row", pa.int64()), ("field", pa.string()),
                               ("reason", pa.string()), ("raw", pa.string())])


def quarantine_table(records: list[dict]) -> pa.Table:
    """Quarantined rows (``LoadResult.quarantined``) as a table in :data:`QUARANTINE_SCHEMA`."""
    return pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA)


@dataclass
class LoadResult:
    """``table``: canonical pairs, or (rating sources) one row per rated response in
    :data:`RESPONSE_SCHEMA`; ``dropped``: rows left out, each with file, row, field and reason;
    ``quarantined``: bad rows kept aside (quarantine mode); ``counts``: rows read/out/dropped."""

    table: pa.Table
    dropped: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    kind: str = "pairs"  # or "responses"

    def check_accounting(self) -> LoadResult:
        """Assert rows in = rows out + quarantined + dropped (``counts``: ``rows_in``,
        ``rows_out``, ``quarantined``, ``dropped``, counted in source rows); returns self."""
        c = self.counts
        if c["rows_in"] != c["rows_out"] + c["quarantined"] + c["dropped"]:
            raise PdrayError(f"row accounting does not add up (a pdray bug): {c}")
        return self


class RowIssues:
    """Collects bad rows: raises at once (default) or quarantines them (``quarantine=True``).

    ``drop`` records a row that is left out for a stated, expected reason (e.g. an "N/A"
    rating); ``bad`` handles malformed input.
    """

    def __init__(self, file: str, quarantine: bool = False, *,
                 known_aspects: set[str] | list[str] | None = None):
        self.file, self.quarantine = file, quarantine
        self.known_aspects = set(known_aspects) if known_aspects else None
        self.dropped: list[dict] = []
        self.quarantined: list[dict] = []
        self._ids: dict[str, int] = {}   # id -> the source row that first gave it
        self._bad: dict[Any, int] = {}  # unit -> how many input units it stands for
        self._dropped: dict[Any, int] = {}

    def bad(self, row: int, field: str, reason: str, raw: Any = None, *, unit: Any = None,
            weight: int = 1) -> None:
        """Malformed input: raise a one-line :class:`DataError`, or quarantine the unit (the
        source row by default; ``weight`` = how many counted input units it holds)."""
        if not self.quarantine:
            raise DataError(reason, file=self.file, row=row, field=field)
        unit = row if unit is None else unit
        if unit in self._bad:
            return  # one quarantine record per unit (its first problem)
        self._bad[unit] = weight
        self.quarantined.append({"file": self.file, "row": row, "field": field, "reason": reason,
                                 "raw": None if raw is None else str(raw)[:2000]})

    def drop(self, row: int, field: str, reason: str, *, unit: Any = None) -> None:
        """Leave a unit out for a stated, expected reason (ties, "N/A" ratings)."""
        self._dropped[row if unit is None else unit] = 1
        self.dropped.append({"file": self.file, "row": row, "field": field, "reason": reason})

    def is_bad(self, unit: Any) -> bool:
        return unit in self._bad

    def check_pair(self, row: int, rec: dict, obj: Any = None, *, id_field: str = "id",
                   aspect_field: str = "aspect", identical: str = "bad") -> bool:
        """Checks of one output pair of source row ``row``: a safe and known aspect, chosen
        different from rejected (``identical="drop"``: left out and counted, for sources
        known to hold such pairs) and a unique id."""
        problem = aspect_problem(rec["aspect"])
        if problem:
            self.bad(row, aspect_field, problem, obj)
            return False
        if self.known_aspects is not None and rec["aspect"] not in self.known_aspects:
            self.bad(row, aspect_field, f"unknown aspect {rec['aspect']!r} (known: "
                     f"{', '.join(sorted(self.known_aspects))})", obj)
            return False
        if rec["chosen"] == rec["rejected"]:
            if identical == "drop":
                self.drop(row, "rejected", "identical responses")
            else:
                self.bad(row, "rejected", "identical to chosen (a pair needs two different "
                         "responses)", obj)
            return False
        if rec["id"] in self._ids:
            self.bad(row, id_field, duplicate_id_reason(rec["id"], self._ids[rec["id"]]), obj)
            return False
        self._ids[rec["id"]] = row
        return True

    def counts(self, rows_in: int, rows_out: int, **extra: int) -> dict[str, int]:
        """Counts in source rows: a row is out, quarantined or dropped (first reason wins)."""
        q = sum(self._bad.values())
        d = sum(w for u, w in self._dropped.items() if u not in self._bad)
        return {"rows_in": rows_in, "rows_out": rows_out, "quarantined": q, "dropped": d, **extra}


def require_text(obj: dict, key: str, row: int, issues: RowIssues, *, field: str | None = None,
                 **unit) -> str | None:
    """``obj[key]`` if it is non-empty text, else report (missing field / not text / empty)."""
    fld = field or key
    v = obj.get(key)
    if key not in obj:
        issues.bad(row, fld, "missing field", obj, **unit)
        return None
    if not isinstance(v, str):
        issues.bad(row, fld, f"expected text, got {type(v).__name__}", obj, **unit)
        return None
    if not v.strip():
        issues.bad(row, fld, "empty text", obj, **unit)
        return None
    return v


def stable_id(*parts: str, n: int = 12) -> str:
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:n]


def id_problem(value) -> str | None:
    """Why a source id cannot be a pair id (text or an integer, kept as its decimal text)."""
    if value is None or isinstance(value, str) or (isinstance(value, int)
                                                   and not isinstance(value, bool)):
        return None
    return f"expected text or an integer id, got {type_name(value)} {value!r:.40}"


def text_problem(value) -> str | None:
    """Why a source value is not text (aspects, sources: never turned into text by ``str``)."""
    if isinstance(value, str):
        return None
    return f"expected text, got {type_name(value)} {value!r:.40}"

