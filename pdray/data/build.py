"""Build a conflict-controlled aggregated dataset from multi-aspect ratings (METHOD.md,
"Building the UltraFeedback conflict datasets"; paper Sec. 5.1, App. B.1).

1. Pair generation: per prompt, the response with the highest mean aspect rating is paired with
   one other response drawn at random (seeded).
2. Aspect assignment: each pair gets one aspect k with a non-tied rating; chosen/rejected follow
   k's ratings. A pair tied under every aspect is dropped and counted.
3. Conflict level: a pair is in conflict (Def. 3.3) when k's label disagrees with the holistic
   preference (mean of aspect ratings, or ``overall``). Pairs that can be assigned either way
   are assigned so that the share in conflict hits the target; when the data cannot reach it,
   the achieved share is the closest feasible one and ``feasible`` says so.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pdray.data.stats import disagreement_matrix
from pdray.errors import ConfigError, DataError
from pdray.schema import pairs_from_rows, ratings_dict

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    table: pa.Table
    target_conflict: float | None
    achieved_conflict: float
    feasible: bool
    feasible_range: tuple[float, float]
    per_aspect: dict[str, int]
    disagreement: dict[str, dict[str, float]]
    dropped: list[dict] = field(default_factory=list)

    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"pairs": self.table.num_rows, **self.counts, "target_conflict": self.target_conflict,
                "achieved_conflict": round(self.achieved_conflict, 4), "feasible": self.feasible,
                "feasible_range": [round(x, 4) for x in self.feasible_range],
                "per_aspect": self.per_aspect, "dropped": len(self.dropped)}


def build_conflict_dataset(responses: pa.Table, target_conflict: float | None = 0.2, *,
                           seed: int = 0, holistic: str = "mean",
                           aspects: list[str] | None = None) -> BuildResult:
    """``responses``: one row per rated response (``prompt_id``, ``prompt``, ``response``,
    ``ratings`` map, ``overall``), as the rating-source loaders return.

    ``target_conflict``: wanted share of pairs in conflict (``None``: no control, aspects
    assigned for balance only). ``holistic``: "mean" (mean of the aspect ratings, the paper's
    choice) or "overall" (the source's overall score). ``aspects``: the aspects to use (default:
    those every response of a prompt carries); at least two are needed. Every prompt ends up as
    one pair or one entry of ``dropped`` with its reason (``counts``: prompts_in = pairs +
    dropped).
    """
    if holistic not in ("mean", "overall"):
        raise ConfigError(f"holistic must be 'mean' or 'overall', got {holistic!r}")
    if target_conflict is not None and not 0 <= target_conflict <= 1:
        raise ConfigError(f"target_conflict must be in [0, 1], got {target_conflict}")
    for col in ("prompt_id", "prompt", "response", "ratings"):
        if col not in responses.column_names:
            raise DataError("required column is missing (rated responses, as the "
                            "ultrafeedback_raw/helpsteer2 loaders return)", field=col)
    rng = random.Random(seed)
    groups: dict[str, list[dict]] = defaultdict(list)
    all_aspects: set[str] = set()
    for r in responses.to_pylist():
        r["ratings"] = ratings_dict(r["ratings"]) or {}
        all_aspects |= set(r["ratings"])
        groups[r["prompt_id"]].append(r)
    usable = set(aspects) if aspects else all_aspects
    if len(usable) < 2:
        raise DataError(f"found {len(usable)} aspect(s) {sorted(usable)} but at least 2 are "
                        "needed (conflict and Preference Divergence compare aspects)",
                        field="ratings")
    if aspects and not set(aspects) <= all_aspects:
        raise DataError(f"unknown aspect(s) {sorted(set(aspects) - all_aspects)} (rated: "
                        f"{', '.join(sorted(all_aspects))})", field="ratings")
    dropped: list[dict] = []
    cands = []  # (pid, best, other, agree_aspects, conflict_aspects)
    for pid in sorted(groups):
        rs = groups[pid]
        asp = sorted(set.intersection(usable, *[set(r["ratings"]) for r in rs]))
        if len(rs) < 2:
            dropped.append({"prompt_id": pid, "prompt": rs[0]["prompt"][:80],
                            "reason": "fewer than two rated responses"})
            continue
        if len(asp) < 2:
            dropped.append({"prompt_id": pid, "prompt": rs[0]["prompt"][:80],
                            "reason": "fewer than two aspects rated on "
                            "every response"})
            continue
        if holistic == "overall" and any(r.get("overall") is None for r in rs):
            raise DataError("holistic='overall' needs an overall score on every response",
                            row=None, field=f"overall (prompt_id {pid})")
        means = [np.mean([r["ratings"][a] for a in asp]) for r in rs]
        b = int(np.argmax(means))
        others = [j for j in range(len(rs)) if j != b]
        o = rng.choice(others)
        best, other = rs[b], rs[o]
        if holistic == "overall":
            h = np.sign(best["overall"] - other["overall"])
        else:
            h = np.sign(means[b] - means[o])
        agree, conflict = [], []
        for a in asp:
            s = np.sign(best["ratings"][a] - other["ratings"][a])
            if s == 0:
                continue
            (agree if (h == 0 or s == h) else conflict).append(a)
        if not agree and not conflict:
            dropped.append({"prompt_id": pid, "prompt": rs[0]["prompt"][:80],
                            "reason": "tied under every aspect"})
            continue
        cands.append((pid, best, other, agree, conflict, asp))
    n = len(cands)
    must_c = sum(1 for c in cands if not c[3])
    flexible = [i for i, c in enumerate(cands) if c[3] and c[4]]
    lo, hi = (must_c / n, (must_c + len(flexible)) / n) if n else (0.0, 0.0)
    if target_conflict is None:
        n_conf_flex = None
    else:
        want = round(target_conflict * n)
        n_conf_flex = min(max(want - must_c, 0), len(flexible))
    order = flexible[:]
    rng.shuffle(order)
    conflict_set = set(order[:n_conf_flex]) if n_conf_flex is not None else set()
    counts: dict[str, int] = defaultdict(int)
    rows = []
    for i, (pid, best, other, agree, conflict, asp) in enumerate(cands):
        if n_conf_flex is None:
            pool = agree + conflict
        else:
            pool = conflict if (not agree or i in conflict_set) else agree
        k = min(pool, key=lambda a: (counts[a], rng.random()))  # balance aspect counts
        counts[k] += 1
        w, l = (best, other) if best["ratings"][k] > other["ratings"][k] else (other, best)
        rows.append({"id": f"{pid}:{k}", "aspect": k, "prompt": best["prompt"],
                     "chosen": w["response"], "rejected": l["response"],
                     "chosen_ratings": {a: w["ratings"][a] for a in asp},
                     "rejected_ratings": {a: l["ratings"][a] for a in asp},
                     "chosen_overall": w.get("overall"), "rejected_overall": l.get("overall"),
                     "source": w.get("source")})
    table = pairs_from_rows(rows)
    n_conf = sum(1 for i, c in enumerate(cands)
                 if (not c[3]) or (n_conf_flex is not None and i in conflict_set)
                 or (n_conf_flex is None and rows[i]["aspect"] in c[4]))
    achieved = n_conf / n if n else 0.0
    feasible = target_conflict is None or abs(achieved - target_conflict) <= 0.01 + 0.5 / max(n, 1)
    log.info("built %d pairs from %d prompts (%d dropped); conflict %.4f (target %s)",
             len(rows), len(groups), len(dropped), achieved, target_conflict)
    return BuildResult(table, target_conflict, achieved, feasible, (lo, hi), dict(counts),
                       disagreement_matrix(table) if rows else {}, dropped,
                       {"prompts_in": len(groups), "pairs_out": len(rows),
                        "prompts_dropped": len(dropped)})
