"""The report's data section: what the data stage kept, set aside and dropped, and the pairs
whose two sides cannot be told apart."""

from __future__ import annotations

import html

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MANIFEST_KEYS = ("rows", "train_rows", "test_rows", "dropped", "quarantined", "quarantine",
                 "source", "achieved_conflict")


def data_counts(scores: pa.Table, pairs: pa.Table | None = None,
                manifest: dict | None = None) -> dict:
    """Counts for the data section (pure):

    - from the data stage's manifest (when given): ``rows``, ``train_rows``, ``test_rows``,
      ``dropped`` (rows left out, each with its reason), ``quarantined`` (bad rows set aside)
      and the ``quarantine`` file, ``source``, ``achieved_conflict``;
    - ``scored``; ``same_input``: scored pairs whose chosen and rejected inputs were identical
      after truncation (the scores' ``same_input`` column; their gaps are 0 by construction);
    - from ``pairs``: ``identical_responses`` (chosen == rejected), ``prompts`` (distinct
      prompts) and ``shared_prompt_pairs`` (pairs whose prompt appears in another pair too).
    """
    out = {k: manifest[k] for k in MANIFEST_KEYS if manifest and manifest.get(k) is not None}
    out["scored"] = scores.num_rows
    if "same_input" in scores.column_names:
        out["same_input"] = int(np.sum(scores["same_input"].to_numpy(zero_copy_only=False)))
    if pairs is not None and {"chosen", "rejected"} <= set(pairs.column_names):
        out["identical_responses"] = int(pc.sum(pc.equal(pairs["chosen"],
                                                         pairs["rejected"])).as_py() or 0)
    if pairs is not None and "prompt" in pairs.column_names:
        vc = pc.value_counts(pairs["prompt"])
        counts = vc.field("counts")
        out["prompts"] = len(vc)
        out["shared_prompt_pairs"] = int(pc.sum(pc.filter(counts, pc.greater(counts, 1)))
                                         .as_py() or 0)
    return out


LABELS = (
    ("rows", "pairs in D"),
    ("train_rows", "training split (scored, selected from)"),
    ("test_rows", "held-out split"),
    ("scored", "scored pairs"),
    ("dropped", "source rows dropped (each with its reason)"),
    ("quarantined", "bad source rows quarantined (set aside, counted)"),
    ("same_input", "pairs with identical chosen/rejected inputs after truncation (gap 0)"),
    ("identical_responses", "pairs whose chosen and rejected texts are identical"),
    ("prompts", "distinct prompts"),
    ("shared_prompt_pairs", "pairs whose prompt is shared with another pair"),
)


def data_html(counts: dict) -> str:
    """The data section: one row per count known."""
    rows = "".join(f"<tr><td class=\"text\">{html.escape(label)}</td><td>{counts[k]}</td></tr>"
                   for k, label in LABELS if k in counts)
    notes = []
    if counts.get("quarantine"):
        notes.append(f"Quarantined rows: <code>{html.escape(str(counts['quarantine']))}</code>.")
    if counts.get("source"):
        notes.append(f"Source: <code>{html.escape(str(counts['source']))}</code>.")
    if counts.get("achieved_conflict") is not None:
        notes.append(f"Conflict rate of the built dataset: {counts['achieved_conflict']:.3f}.")
    note = f"<p>{' '.join(notes)}</p>" if notes else ""
    return f"<h2>Data</h2><table>{rows}</table>{note}"
