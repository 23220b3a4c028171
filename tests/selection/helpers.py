"""Test helpers shared by tests/selection and tests/report (no dependency on pdray.data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.schema import PAIR_SCHEMA, ratings_dict


def hand_scores(dlen2: int = 0) -> pa.Table:
    """The hand-worked example of test_math.py: aspects A, B, C; four pairs."""
    return pa.table({
        "id": ["z1", "z2", "z3", "z4"],
        "aspect": ["A", "B", "C", "A"],
        "chosen_len": [5, 5 + dlen2, 5, 5],
        "rejected_len": [5, 5, 5, 5],
        "gap_A": [5.0, 1.0, -3.0, 7.0],
        "gap_B": [2.0, 9.0, 1.0, -4.0],
        "gap_C": [-1.0, 0.5, 8.0, 2.0],
    })


def load_pku_pairs(path: str | Path) -> pa.Table:
    """PKU-SafeRLHF rows → canonical pairs: two per row, aspect ``helpfulness`` (chosen =
    ``better_response_id``) and ``harmlessness`` (chosen = ``safer_response_id``); each response
    is rated 1/0 per aspect (1 = the better / the safer one of the two)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            r = json.loads(line)
            resp = [r["response_0"], r["response_1"]]
            better, safer = int(r["better_response_id"]), int(r["safer_response_id"])

            def rating(i: int, better: int = better, safer: int = safer) -> dict:
                return {"helpfulness": float(i == better), "harmlessness": float(i == safer)}

            for aspect, w in (("helpfulness", better), ("harmlessness", safer)):
                rows.append({"id": f"pku-{n:04d}-{aspect[:4]}", "aspect": aspect,
                             "prompt": r["prompt"], "chosen": resp[w], "rejected": resp[1 - w],
                             "chosen_ratings": list(rating(w).items()),
                             "rejected_ratings": list(rating(1 - w).items()),
                             "source": "pku_saferlhf"})
    names = ["id", "aspect", "prompt", "chosen", "rejected", "chosen_ratings",
             "rejected_ratings", "source"]
    return pa.table({k: pa.array([r[k] for r in rows], PAIR_SCHEMA.field(k).type) for k in names})


def pku_scores(pairs: pa.Table, noise: float, seed: int = 0) -> pa.Table:
    """Scores whose gaps are the true rating gaps plus Gaussian noise (a stand-in for trained
    reward models whose quality ``noise`` controls)."""
    rng = np.random.default_rng(seed)
    cols = {"id": pairs["id"], "aspect": pairs["aspect"],
            "chosen_len": pa.array(np.full(pairs.num_rows, 10)),
            "rejected_len": pa.array(np.full(pairs.num_rows, 10))}
    cr, rr = pairs["chosen_ratings"].to_pylist(), pairs["rejected_ratings"].to_pylist()
    for a in ("harmlessness", "helpfulness"):
        g = [ratings_dict(c)[a] - ratings_dict(r)[a] for c, r in zip(cr, rr)]
        cols[f"gap_{a}"] = pa.array(np.asarray(g) + rng.normal(0, noise, pairs.num_rows))
    return pa.table(cols)


def agreement(table: pa.Table) -> np.ndarray:
    """Sign of mean-aspect-rating(chosen) − mean-aspect-rating(rejected), computed here by hand."""
    out = []
    for c, r in zip(table["chosen_ratings"].to_pylist(), table["rejected_ratings"].to_pylist()):
        c, r = ratings_dict(c), ratings_dict(r)
        out.append(np.sign(np.mean(list(c.values())) - np.mean(list(r.values()))))
    return np.asarray(out)
