"""HelpSteer / HelpSteer2: one row per response with five 0–4 attribute ratings.

Returns one rated-response row per source row (prompts grouped by a hash of their text); pairs
are built by :func:`pdray.data.build.build_conflict_dataset`.
"""

from __future__ import annotations

import math

import pyarrow as pa

from pdray.data.result import RESPONSE_SCHEMA, LoadResult, RowIssues, require_text, stable_id
from pdray.data.source_rows import SourceRows

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def load_helpsteer(path: str, *, attributes: tuple[str, ...] = ATTRIBUTES, low: float = 0,
                   high: float = 4, quarantine: bool = False) -> LoadResult:
    """One rated-response row per source row, ratings checked to be numbers in [low, high]."""
    issues = RowIssues(str(path), quarantine)
    reader = SourceRows(path, issues)
    out = []
    for i, obj in reader:
        prompt = require_text(obj, "prompt", i, issues)
        response = require_text(obj, "response", i, issues)
        ratings, ok = {}, True
        for a in attributes:
            v = obj.get(a)
            if a not in obj:
                issues.bad(i, a, "missing field", obj)
                ok = False
                break
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                issues.bad(i, a, f"non-numeric rating {v!r}", obj)
                ok = False
                break
            if not low <= v <= high:
                issues.bad(i, a, f"rating {v} out of range [{low}, {high}]", obj)
                ok = False
                break
            ratings[a] = float(v)
        if prompt is None or response is None or not ok:
            continue
        out.append({"prompt_id": stable_id(prompt), "prompt": prompt, "response": response,
                    "ratings": list(ratings.items()), "overall": None, "source": "helpsteer2"})
    table = pa.Table.from_pylist(out, schema=RESPONSE_SCHEMA)
    return LoadResult(table, issues.dropped, issues.quarantined,
                      issues.counts(reader.n, len(out), responses_out=len(out),
                                    prompts=len(set(table["prompt_id"].to_pylist()))),
                      kind="responses")
