"""The closing table of a pipeline run: strategies × (kept, CP, conflict rate, Δlen, DPO results).

CP (consensus precision) is the share of selected pairs whose label agrees with the holistic
(mean-of-aspects) preference, conflict rate the share that disagrees (METHOD.md Def. 3.3); pairs
whose holistic ratings tie count in neither. Δlen is the mean response-length gap
len(y_w) − len(y_l) in reward-model tokens, from the scores table. The DPO columns are the
aligned policy's held-out accuracy against the consensus label (the one number a strategy is
judged by, :mod:`pdray.align.downstream`), against each pair's own label, and its mean generated
length (AL).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.align.downstream import headline
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
        row.update(dpo_columns((dpo.get(strategy) or {}).get("heldout") or {}))
        rows.append(row)
    for strategy in dpo:
        if strategy not in sel.selections:
            rows.append({"strategy": strategy, "kept": math.nan, "cp": math.nan,
                         "conflict": math.nan, "mean_dlen": math.nan,
                         **dpo_columns((dpo[strategy] or {}).get("heldout") or {})})
    return rows


def dpo_columns(held: dict) -> dict:
    """The DPO columns of a row from a policy's held-out metrics (``{}``: DPO did not run)."""
    if not held:
        return {"dpo_acc": math.nan}
    name, v, (lo, hi) = headline(held)
    return {"dpo_acc": v, "dpo_ci": f"{lo:.2f}–{hi:.2f}",
            "dpo_metric": "consensus" if name.startswith("consensus") else "own label",
            "dpo_own_acc": held.get("own_label_accuracy", held.get("accuracy", math.nan)),
            "dpo_al": held.get("mean_generated_length", math.nan)}


def format_summary(rows: list[dict]) -> str:
    cols = [("strategy", "strategy", "{}"), ("kept", "kept", "{:.0f}"), ("cp", "CP", "{:.3f}"),
            ("conflict", "conflict", "{:.3f}"), ("ties", "ties", "{:.3f}"),
            ("mean_dlen", "mean Δlen", "{:+.1f}")]
    if any(not math.isnan(r.get("dpo_acc", math.nan)) for r in rows):
        own = any(r.get("dpo_metric") == "own label" for r in rows)
        cols += [("dpo_acc", "DPO own-label acc" if own else "DPO consensus acc", "{:.3f}"),
                 ("dpo_ci", "95% CI", "{}"),
                 *([] if own else [("dpo_own_acc", "own-label acc", "{:.3f}")]),
                 ("dpo_al", "AL", "{:.1f}")]

    def cell(row, key, fmt):
        v = row.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        return fmt.format(v)

    table = [[title for _, title, _ in cols]] + [[cell(r, k, f) for k, _, f in cols] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
