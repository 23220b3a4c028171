"""UltraFeedback (raw and binarized), TRL-format pairs and HH-RLHF transcripts.

Raw UltraFeedback rows: ``instruction``, ``completions[]`` each with ``response``,
``annotations.<aspect>.Rating`` (strings "1".."5", sometimes "N/A") and ``overall_score``.
A completion whose rating is "N/A" or missing is skipped and counted (METHOD.md), never kept; a
rating that is some other non-number or lies outside [1, 5] is malformed input.
Binarized / TRL rows: ``prompt``, ``chosen``, ``rejected`` as strings or chat-message lists;
HH-RLHF rows: ``chosen``/``rejected`` full "\\n\\nHuman: … \\n\\nAssistant: …" transcripts.
"""

from __future__ import annotations

import math

import pyarrow as pa

from pdray.data.result import (
    RESPONSE_SCHEMA,
    LoadResult,
    RowIssues,
    id_problem,
    require_text,
    stable_id,
    text_problem,
)
from pdray.data.source_rows import SourceRows
from pdray.schema import pairs_from_rows

UF_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")
MISSING_RATINGS = ("N/A", "NA", "", None)


def load_ultrafeedback_raw(path: str, *, aspects: tuple[str, ...] = UF_ASPECTS,
                           low: float = 1, high: float = 5, quarantine: bool = False) -> LoadResult:
    """One rated-response row per usable completion. Accounting is per completion:
    ``rows_in`` = completions read (+1 per row without a completion list or unreadable)."""
    issues = RowIssues(str(path), quarantine)
    reader = SourceRows(path, issues)
    out, units, n_yield = [], 0, 0
    for i, obj in reader:
        n_yield += 1
        comps = obj.get("completions")
        if not isinstance(comps, list) or not comps:
            units += 1
            issues.bad(i, "completions", "missing, empty or not a list", obj)
            continue
        units += len(comps)
        prompt = require_text(obj, "instruction", i, issues, weight=len(comps))
        if prompt is None:
            continue
        pid = stable_id(prompt)
        for j, c in enumerate(comps):
            fld, unit = f"completions[{j}]", (i, j)
            if not isinstance(c, dict):
                issues.bad(i, fld, "expected an object", c, unit=unit)
                continue
            resp = require_text(c, "response", i, issues, field=f"{fld}.response", unit=unit)
            if resp is None:
                continue
            ann = c.get("annotations")
            ann = ann if isinstance(ann, dict) else {}
            ratings = {}
            for a in aspects:
                f = f"{fld}.annotations.{a}.Rating"
                raw = ann[a].get("Rating") if isinstance(ann.get(a), dict) else None
                if raw in MISSING_RATINGS:
                    issues.drop(i, f, f"missing rating {raw!r}" if raw is None
                                else f"non-numeric rating {raw!r}", unit=unit)
                    break
                try:
                    v = float(raw)
                except (TypeError, ValueError):
                    issues.bad(i, f, f"non-numeric rating {raw!r}", c, unit=unit)
                    break
                if not (math.isfinite(v) and low <= v <= high):
                    issues.bad(i, f, f"rating {raw!r} out of range [{low:g}, {high:g}]", c, unit=unit)
                    break
                ratings[a] = v
            else:
                overall = c.get("overall_score")
                try:
                    overall = float(overall) if overall is not None else None
                except (TypeError, ValueError):
                    issues.bad(i, f"{fld}.overall_score", f"non-numeric score {overall!r}", c,
                               unit=unit)
                    continue
                if c.get("model") is not None and text_problem(c["model"]):
                    issues.bad(i, f"{fld}.model", text_problem(c["model"]), c, unit=unit)
                    continue
                out.append({"prompt_id": pid, "prompt": prompt, "response": resp,
                            "ratings": list(ratings.items()), "overall": overall,
                            "source": c.get("model") or "ultrafeedback"})
    table = pa.Table.from_pylist(out, schema=RESPONSE_SCHEMA)
    counts = issues.counts(units + (reader.n - n_yield), len(out), source_rows=reader.n,
                           responses_out=len(out),
                           prompts=len(set(table["prompt_id"].to_pylist())))
    return LoadResult(table, issues.dropped, issues.quarantined, counts, kind="responses")


def split_messages(value, row: int, field: str, issues: RowIssues,
                   obj: dict | None = None) -> tuple[str | None, str | None]:
    """A chat-message list -> (conversation before the last assistant turn, its content)."""
    if isinstance(value, str):
        return None, value
    if not isinstance(value, list) or not value:
        issues.bad(row, field, "missing field" if value is None else
                   "expected text or a non-empty list of chat messages", obj or value)
        return None, None
    last = value[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        issues.bad(row, field, "the last chat message must be the assistant's", obj or value)
        return None, None
    turns = value[:-1]
    if len(turns) == 1 and isinstance(turns[0], dict):
        prefix = turns[0].get("content", "")
    else:
        prefix = "\n\n".join(f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}"
                             for m in turns if isinstance(m, dict))
    return prefix or None, last.get("content", "")


def split_transcript(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH-RLHF: split two "\\n\\nHuman: … \\n\\nAssistant: …" transcripts at the last assistant
    turn of their shared prefix -> (prompt, chosen response, rejected response)."""
    marker = "\n\nAssistant:"
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    cut = chosen.rfind(marker, 0, n)
    if cut < 0:
        return "", chosen.strip(), rejected.strip()
    cut += len(marker)
    return chosen[:cut].strip(), chosen[cut:].strip(), rejected[cut:].strip()


def _score(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def load_binarized(path: str, *, aspect: str = "overall", aspect_column: str | None = "aspect",
                   id_column: str | None = "id", split_prefix: bool | None = None,
                   known_aspects: list[str] | None = None, quarantine: bool = False,
                   source: str = "ultrafeedback_binarized") -> LoadResult:
    """Binarized UltraFeedback / TRL pairs. Scores from ``score_chosen``/``score_rejected`` or
    ``metadata.rating_chosen``/``rating_rejected`` become ``chosen_overall``/``rejected_overall``;
    the aspect comes from ``aspect_column`` when present, else the constant ``aspect``.
    ``split_prefix``: split HH-RLHF-style transcripts at their shared prefix (``None``: when a
    row has no prompt and its chosen text starts with "\\n\\nHuman:")."""
    issues = RowIssues(str(path), quarantine, known_aspects=known_aspects)
    reader = SourceRows(path, issues)
    out = []
    for i, obj in reader:
        if split_prefix or (split_prefix is None and not obj.get("prompt")
                            and str(obj.get("chosen", "")).startswith("\n\nHuman:")):
            c = require_text(obj, "chosen", i, issues)
            r = require_text(obj, "rejected", i, issues) if c is not None else None
            if c is None or r is None:
                continue
            prompt, chosen, rejected = split_transcript(c, r)
            if not prompt:
                issues.bad(i, "chosen", "cannot split the transcript into prompt and responses", obj)
                continue
            if not chosen or not rejected or chosen == rejected:
                # a known upstream defect (empty final turn): left out with its reason, counted
                issues.drop(i, "chosen" if not chosen else "rejected",
                            "identical responses" if chosen == rejected else
                            "empty final assistant turn")
                continue
        else:
            p_c, chosen = split_messages(obj.get("chosen"), i, "chosen", issues, obj)
            if chosen is None:
                continue
            _, rejected = split_messages(obj.get("rejected"), i, "rejected", issues, obj)
            if rejected is None:
                continue
            prompt = obj.get("prompt")
            if isinstance(prompt, list):
                prompt = "\n\n".join(m.get("content", "") for m in prompt if isinstance(m, dict))
            prompt = prompt if isinstance(prompt, str) and prompt.strip() else p_c
        row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        bad = next((k for k, v in row.items() if not isinstance(v, str) or not v.strip()), None)
        if bad is not None:
            issues.bad(i, bad, "missing field" if row[bad] is None else "empty text", obj)
            continue
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        sc = obj.get("score_chosen", meta.get("rating_chosen"))
        sr = obj.get("score_rejected", meta.get("rating_rejected"))
        for name, v in (("score_chosen", sc), ("score_rejected", sr)):
            if v is not None and (_score(v) is None or not math.isfinite(v)):
                issues.bad(i, name, f"non-numeric score {v!r}", obj)
        if issues.is_bad(i):
            continue
        a = obj.get(aspect_column) if aspect_column and obj.get(aspect_column) else aspect
        rid = obj.get(id_column) if id_column and obj.get(id_column) is not None else (
            f"{source}-{i:07d}-{stable_id(prompt, chosen, rejected, n=8)}")
        problem = next(((f, p) for f, p in ((aspect_column or "aspect", text_problem(a)),
                                            (id_column or "id", id_problem(rid)),
                                            ("metadata.source", meta.get("source") is not None
                                             and text_problem(meta["source"])))
                        if p), None)
        if problem:
            issues.bad(i, *problem, obj)
            continue
        rec = {"id": str(rid), "aspect": str(a), **row, "chosen_overall": _score(sc),
               "rejected_overall": _score(sr), "source": meta.get("source") or source}
        if issues.check_pair(i, rec, obj, id_field=id_column or "id",
                             aspect_field=aspect_column or "aspect", identical="drop"):
            out.append(rec)
    table = pairs_from_rows(out)
    return LoadResult(table, issues.dropped, issues.quarantined,
                      issues.counts(reader.n, len(out), pairs_out=len(out)))


def load_hh_rlhf(path: str, *, aspect: str = "harmlessness", quarantine: bool = False,
                 **options) -> LoadResult:
    """HH-RLHF transcripts: :func:`load_binarized` with ``split_prefix=True``."""
    return load_binarized(path, aspect=aspect, split_prefix=True, quarantine=quarantine,
                          source="hh_rlhf", **options)
