"""The report's examples: for the kept and the dropped side of one selection, the most
consensual and the most conflicting pairs, with their text shortened, each aspect's
normalised gap and the PD the selection ranked by."""

from __future__ import annotations

import html

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.selection.api import SelectionResult
from pdray.selection.pd import PDResult

SIDES = (("selected", "kept"), ("dropped", "dropped"))
KINDS = (("consensual", "most consensual (most negative PD)"),
         ("conflicting", "most conflicting (most positive PD)"))


def shorten(text: str | None, width: int = 200) -> str:
    """``text`` with runs of white space made one space, cut to ``width`` characters with an
    ellipsis when longer (plain text: escape it to show it)."""
    t = " ".join((text or "").split())
    return t if len(t) <= width else t[:width - 1].rstrip() + "…"


def main_selection(selections: dict) -> str | None:
    """The selection the examples come from: ``pd`` when present, else the first one."""
    return "pd" if "pd" in selections else next(iter(selections), None)


def pick_examples(scores: pa.Table, pdr: PDResult, selected_ids: list[str],
                  pairs: pa.Table | None = None, n: int = 5, width: int = 200) -> dict:
    """``{side: {kind: [row, …]}}`` for side ``selected``/``dropped`` and kind
    ``consensual`` (the ``n`` lowest PD, lowest first) / ``conflicting`` (the ``n`` highest,
    highest first). A row: ``id``, ``aspect``, ``pd``, ``gaps`` ({aspect: Δr̃_k}) and, with
    ``pairs``, ``prompt``/``chosen``/``rejected`` shortened to ``width`` characters. Ties in PD
    are broken by row order."""
    ids = scores["id"]
    kept = pc.is_in(ids, value_set=pa.array(selected_ids, ids.type)).to_numpy(
        zero_copy_only=False)
    own = scores["aspect"].to_pylist()
    id_list = ids.to_pylist()
    text = _texts(pairs, ids) if pairs is not None else None
    out: dict = {}
    for side, mask in (("selected", kept), ("dropped", ~kept)):
        rows = np.flatnonzero(mask)
        order = rows[np.argsort(pdr.pd[rows], kind="stable")]
        picks = {"consensual": order[:n], "conflicting": order[::-1][:n]}
        out[side] = {kind: [_row(i, id_list, own, pdr, text, width) for i in idx]
                     for kind, idx in picks.items()}
    return out


def _texts(pairs: pa.Table, ids) -> dict[str, list]:
    idx = pc.index_in(ids, value_set=pairs["id"])
    return {c: pairs[c].take(idx).to_pylist() for c in ("prompt", "chosen", "rejected")
            if c in pairs.column_names}


def _row(i: int, ids: list, own: list, pdr: PDResult, text: dict | None, width: int) -> dict:
    row = {"id": ids[i], "aspect": own[i], "pd": float(pdr.pd[i]),
           "gaps": {k: float(pdr.normalized[k][i]) for k in pdr.aspects}}
    for c, vals in (text or {}).items():
        row[c] = shorten(vals[i], width)
    return row


def examples_html(ex: dict, name: str, sel: SelectionResult, n_scored: int) -> str:
    """The examples section: one table per side and kind."""
    aspects = _aspects(ex)
    kept = len(sel.selected_ids)
    head = "".join(f"<th>Δr̃ {html.escape(k)}</th>" for k in aspects)
    has_text = any("prompt" in r for side in ex.values() for rows in side.values() for r in rows)
    text_head = ('<th class="text">prompt</th><th class="text">chosen</th>'
                 '<th class="text">rejected</th>' if has_text else "")
    parts = [(f"<h2>Examples: why pairs were kept or dropped</h2><p>From the "
             f"<b>{html.escape(name)}</b> selection, which kept {kept} of {n_scored} scored "
             f"pairs. Δr̃<sub>k</sub> is aspect k's reward gap r(chosen) − r(rejected) (after "
             f"the selection's length correction) divided by its scale q<sub>k</sub> and "
             f"clipped to [−1, 1]: positive means aspect k also prefers the chosen response. "
             f"PD is minus the sum of Δr̃ over the aspects other "
             f"than the pair's own label, so a pair every other aspect agrees with has a "
             f"negative PD (consensus) and a pair they all contradict a positive one "
             f"(conflict). Texts are cut to 200 characters.</p>")]
    if not has_text:
        parts.append("<p>No pairs table was given, so the texts are not shown "
                     "(pass the pairs with <code>--data</code>).</p>")
    for side, side_word in SIDES:
        for kind, kind_words in KINDS:
            rows = ex.get(side, {}).get(kind, [])
            if not rows:
                continue
            body = "".join(_tr(r, aspects, has_text) for r in rows)
            parts.append(f"<h3>{side_word.capitalize()} pairs: the {len(rows)} {kind_words}"
                         f"</h3><table class=\"examples\"><tr><th>PD</th>"
                         f"<th class=\"text\">label aspect</th>{head}{text_head}<th>id</th></tr>"
                         f"{body}</table>")
    return "".join(parts)


def _aspects(ex: dict) -> list[str]:
    for side in ex.values():
        for rows in side.values():
            if rows:
                return list(rows[0]["gaps"])
    return []


def _tr(r: dict, aspects: list[str], has_text: bool) -> str:
    gaps = "".join(f"<td>{r['gaps'][k]:+.3f}</td>" for k in aspects)
    text = "".join(f'<td class="text">{html.escape(r.get(c, ""))}</td>'
                   for c in ("prompt", "chosen", "rejected")) if has_text else ""
    return (f"<tr><td><b>{r['pd']:+.3f}</b></td>"
            f"<td class=\"text\">{html.escape(str(r['aspect']))}</td>"
            f"{gaps}{text}<td class=\"id\">{html.escape(str(r['id']))}</td></tr>")
