"""The closing table of a pipeline run: strategies × (kept, CP, conflict rate, Δlen, DPO accuracy).

CP (consensus precision) is the share of selected pairs whose label agrees with the holistic
(mean-of-aspects) preference, conflict rate the share that disagrees (METHOD.md Def. 3.3); pairs
whose holistic ratings tie count in neither. Δlen is the mean response-length gap
len(y_w) − len(y_l) in reward-model tokens, from the scores table.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.data.stats import conflict_flags
from pdray.io import read_table
from pdray.report.metrics import agreement_shares
from pdray.selection.scores import read_scores


def selection_row(strategy: str, selected: pa.Table, scores: pa.Table | None) -> dict:
    """CP, conflict and tie shares of the selected pairs (their holistic agreement,
    :func:`pdray.data.stats.conflict_flags`) and their mean Δlen."""
    n = selected.num_rows
    cp, conflict, ties = agreement_shares(conflict_flags(selected))
    row = {"strategy": strategy, "kept": n, "cp": cp, "conflict": conflict, "ties": ties}
    if scores is not None and n:
        lens = dict(zip(scores["id"].to_pylist(),
                        (np.asarray(scores["chosen_len"]) - np.asarray(scores["rejected_len"])).tolist()))
        d = [lens[i] for i in selected["id"].to_pylist() if i in lens]
        row["mean_dlen"] = float(np.mean(d)) if d else math.nan
    return row


def summarize(manifests: dict) -> list[dict]:
    """One row per selection (and per DPO-only strategy such as ``dmpo``) from the stages'
    typed manifests (each stage's ``stage.py``)."""
    sel = manifests["select"]
    scores = read_scores(manifests["score"].scores) if manifests.get("score") else None
    dpo = manifests["dpo"].metrics if manifests.get("dpo") else {}
    rows = []
    for strategy, d in sel.selections.items():
        selected = read_table(Path(d) / "selected.parquet")
        row = selection_row(strategy, selected, scores)
        held = (dpo.get(strategy) or {}).get("heldout") or {}
        row["dpo_acc"] = held.get("accuracy", math.nan)
        rows.append(row)
    for strategy in dpo:
        if strategy not in sel.selections:
            held = (dpo[strategy] or {}).get("heldout") or {}
            rows.append({"strategy": strategy, "kept": math.nan, "cp": math.nan,
                         "conflict": math.nan, "mean_dlen": math.nan,
                         "dpo_acc": held.get("accuracy", math.nan)})
    return rows


def format_summary(rows: list[dict]) -> str:
    cols = [("strategy", "strategy", "{}"), ("kept", "kept", "{:.0f}"), ("cp", "CP", "{:.3f}"),
            ("conflict", "conflict", "{:.3f}"), ("ties", "ties", "{:.3f}"),
            ("mean_dlen", "mean Δlen", "{:+.1f}"),
            ("dpo_acc", "DPO held-out acc", "{:.3f}")]

    def cell(row, key, fmt):
        v = row.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        return fmt.format(v)

    table = [[title for _, title, _ in cols]] + [[cell(r, k, f) for k, _, f in cols] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
