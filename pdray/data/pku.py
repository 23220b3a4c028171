"""PKU-SafeRLHF: two aspects labelled on the same pair (helpfulness and harmlessness).

Source rows: ``prompt``, ``response_0``, ``response_1``, ``better_response_id`` (helpfulness
label) and ``safer_response_id`` (harmlessness label). Each source row gives one canonical pair
per aspect (``aspect_assignment="both"``) or one pair under a seeded random aspect (``"split"``,
for a genuinely partitioned D_k). Ground truth: per aspect, rating 1 for the preferred response
and 0 for the other, so the mean-of-aspects ties exactly where the two labels disagree.
"""

from __future__ import annotations

import random

from pdray.data.result import LoadResult, RowIssues, require_text, stable_id
from pdray.data.source_rows import SourceRows
from pdray.errors import ConfigError
from pdray.schema import pairs_from_rows

ASPECTS = {"helpfulness": "better_response_id", "harmlessness": "safer_response_id"}


def load_pku_saferlhf(path: str, *, aspect_assignment: str = "both", seed: int = 0,
                      quarantine: bool = False) -> LoadResult:
    """Canonical pairs with ids ``pku-<row>-<hash>:<aspect>``; ``counts`` are per source row
    (``rows_out`` rows gave ``pairs_out`` pairs) plus ``aspect_disagreements`` (rows whose
    helpfulness and harmlessness labels differ)."""
    if aspect_assignment not in ("both", "split"):
        raise ConfigError(f"aspect_assignment must be 'both' or 'split', got {aspect_assignment!r}")
    issues = RowIssues(str(path), quarantine)
    rng = random.Random(seed)
    out, rows_out, disagree = [], 0, 0
    reader = SourceRows(path, issues)
    for i, obj in reader:
        prompt = require_text(obj, "prompt", i, issues)
        r0 = require_text(obj, "response_0", i, issues)
        r1 = require_text(obj, "response_1", i, issues)
        labels = {}
        for aspect, key in ASPECTS.items():
            v = obj.get(key)
            if v not in (0, 1) or isinstance(v, bool):
                issues.bad(i, key, f"expected 0 or 1, got {v!r}", obj)
                labels = None
                break
            labels[aspect] = v
        if prompt is None or r0 is None or r1 is None or labels is None:
            continue
        if r0 == r1:
            issues.bad(i, "response_1", "identical to response_0 (a pair needs two different "
                       "responses)", obj)
            continue
        rows_out += 1
        disagree += labels["helpfulness"] != labels["harmlessness"]
        base = f"pku-{i:06d}-{stable_id(prompt, r0, r1, n=8)}"
        resp = (r0, r1)
        ratings = [{a: float(labels[a] == j) for a in ASPECTS} for j in (0, 1)]
        aspects = list(ASPECTS) if aspect_assignment == "both" else [rng.choice(list(ASPECTS))]
        for aspect in aspects:
            w = labels[aspect]
            out.append({"id": f"{base}:{aspect}", "aspect": aspect, "prompt": prompt,
                        "chosen": resp[w], "rejected": resp[1 - w],
                        "chosen_ratings": ratings[w], "rejected_ratings": ratings[1 - w],
                        "source": "pku_saferlhf"})
    table = pairs_from_rows(out)
    return LoadResult(table, issues.dropped, issues.quarantined,
                      issues.counts(reader.n, rows_out, pairs_out=len(out),
                                    aspect_disagreements=disagree))
