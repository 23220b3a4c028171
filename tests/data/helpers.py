"""Rows written in the raw UltraFeedback format (no raw rows are available offline)."""

import json

import numpy as np

UF = ["helpfulness", "honesty", "instruction_following", "truthfulness"]


def uf_raw_row(instr: str, ratings_list: list[list[str]]) -> dict:
    comps = []
    for j, rs in enumerate(ratings_list):
        nums = [float(x) for x in rs if x.isdigit()]
        comps.append({"model": f"m{j}", "response": f"answer {j} to {instr}",
                      "overall_score": float(np.mean(nums)) if nums else 0.0,
                      "annotations": {a: {"Rating": r, "Rationale": "..."} for a, r in zip(UF, rs)}})
    return {"instruction": instr, "completions": comps}


def with_fields(row: dict, **kw) -> dict:
    """A copy of ``row`` with fields set; a field given as ``KeyError`` is removed."""
    out = dict(row)
    for k, v in kw.items():
        if v is KeyError:
            out.pop(k)
        else:
            out[k] = v
    return out


def write_jsonl(path, rows) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def accounted(res) -> bool:
    c = res.counts
    return c["rows_in"] == c["rows_out"] + c["quarantined"] + c["dropped"]
