"""The report's downstream section: the DPO runs' held-out metrics (one row per strategy) and
the pairwise-eval results, from the dpo and eval stages' manifests."""

from __future__ import annotations

import html
import math

BASELINES = ("overall", "all", "random")
"""The baseline row of the DPO table when none is named: the first of these present."""

# (column, keys: the first present gives the value, title, where: "heldout" or "run"
# (metrics[s] itself), legacy). Newer manifests carry the consensus_* keys and
# own_label_accuracy (= accuracy); older ones accuracy, conflicting / non_conflicting (own-label
# accuracy on the conflict / agreeing pairs: shown only when no run has a consensus accuracy)
# and mean_sample_tokens.
DPO_COLUMNS = (
    ("consensus_accuracy", ("consensus_accuracy",), "consensus acc", "heldout", False),
    ("consensus_ci", ("consensus_ci",), "95% CI", "heldout", False),
    ("n_consensus", ("n_consensus",), "pairs with a consensus label", "heldout", False),
    ("consensus_pairs_accuracy", ("consensus_pairs_accuracy",),
     "consensus acc on agreeing pairs", "heldout", False),
    ("conflict_pairs_accuracy", ("conflict_pairs_accuracy",), "consensus acc on conflict pairs",
     "heldout", False),
    ("own_label_accuracy", ("own_label_accuracy", "accuracy"), "own-label acc", "heldout", False),
    ("n", ("n",), "held-out pairs", "heldout", False),
    ("non_conflicting", ("non_conflicting",), "own-label acc on agreeing pairs", "heldout", True),
    ("conflicting", ("conflicting",), "own-label acc on conflict pairs", "heldout", True),
    ("mean_generated_length", ("mean_generated_length", "mean_sample_tokens"),
     "mean generated length (tokens)", "heldout", False),
    ("steps", ("steps",), "steps", "run", False),
    ("train_loss", ("train_loss",), "train loss", "run", False),
)
HEADLINE = ("consensus_accuracy", "own_label_accuracy")
"""The accuracy compared with the baseline's (the first column present)."""


def pick_baseline(strategies, baseline: str | None = None) -> str | None:
    """``baseline`` when it is one of ``strategies``, else the first of :data:`BASELINES`
    present (``None`` when none is)."""
    names = list(strategies)
    if baseline is not None:
        return baseline if baseline in names else None
    return next((b for b in BASELINES if b in names), None)


def _value(m: dict, keys: tuple, where: str):
    src = (m.get("heldout") or {}) if where == "heldout" else m
    return next((src[k] for k in keys if src.get(k) is not None), None)


def dpo_table(metrics: dict, baseline: str | None = None) -> dict:
    """``{"columns": [(column, title)], "rows": [{"strategy", "baseline", "values", "delta"}],
    "baseline": name | None, "headline": column | None}`` (pure): one row per strategy of the
    dpo manifest's ``metrics``, the baseline first; only the columns some strategy has (see
    :data:`DPO_COLUMNS`); ``delta``: the headline accuracy minus the baseline's (``None`` where
    either is missing)."""
    base = pick_baseline(metrics, baseline)
    spec = {c: (keys, w) for c, keys, _, w, _ in DPO_COLUMNS}
    has = {c for c, (keys, w) in spec.items()
           if any(_value(m or {}, keys, w) is not None for m in metrics.values())}
    cols = [(c, t) for c, _, t, _, legacy in DPO_COLUMNS
            if c in has and not (legacy and "consensus_accuracy" in has)]
    headline = next((c for c in HEADLINE if c in has), None)

    def head(s):
        v = _value(metrics.get(s) or {}, *spec[headline]) if headline else None
        return v if isinstance(v, (int, float)) and not math.isnan(v) else None

    order = ([base] if base else []) + [s for s in metrics if s != base]
    rows = []
    for s in order:
        m = metrics.get(s) or {}
        h, b = head(s), head(base) if base else None
        rows.append({"strategy": s, "baseline": s == base,
                     "values": {c: _value(m, *spec[c]) for c, _ in cols},
                     "delta": h - b if h is not None and b is not None and s != base else None})
    return {"columns": cols, "rows": rows, "baseline": base, "headline": headline}


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return f"{_cell(v[0])}–{_cell(v[1])}"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return html.escape(str(v))


def dpo_html(table: dict) -> str:
    """The DPO table; the baseline row marked."""
    if not table["rows"]:
        return ""
    head_key = table["headline"]
    head_title = dict(table["columns"]).get(head_key, "")
    th = "".join(f"<th>{html.escape(t)}</th>" for _, t in table["columns"])
    delta_th = (f"<th>Δ {html.escape(head_title)} vs baseline</th>"
                if table["baseline"] and head_key else "")
    body = []
    for r in table["rows"]:
        name = html.escape(r["strategy"]) + (" <b>(baseline)</b>" if r["baseline"] else "")
        cells = "".join(f"<td>{_cell(r['values'][k])}</td>" for k, _ in table["columns"])
        d = "—" if r["delta"] is None else f"{r['delta']:+.3f}"
        delta = f"<td>{d}</td>" if delta_th else ""
        cls = ' class="baseline"' if r["baseline"] else ""
        body.append(f"<tr{cls}><td class=\"text\">{name}</td>{cells}{delta}</tr>")
    base = table["baseline"]
    intro = ("<p>One DPO policy trained on each strategy's pairs, scored on the held-out split "
             "by its implicit reward (the share of held-out pairs it ranks the way the label "
             "does)" + (f"; the <b>{html.escape(base)}</b> row is the baseline the others are "
                        f"compared with" if base else "") + ". — : not recorded by this run.</p>")
    return (f"<h2>Downstream: DPO</h2>{intro}<table><tr><th class=\"text\">strategy</th>"
            f"{th}{delta_th}</tr>"
            + "".join(body) + "</table>")


def eval_html(results: dict | None) -> str:
    """The pairwise-eval results (the eval stage's ``results``): per model and prompt set the
    wins, losses and ties against the baseline, the win score, and the model's average win
    score AW."""
    if not results:
        return ""
    rows = []
    for model, r in results.items():
        sets = r.get("sets") or {"—": {}}
        for i, (name, s) in enumerate(sets.items()):
            aw = _cell(r.get("AW")) if i == 0 else ""
            rows.append(f"<tr><td class=\"text\">{html.escape(model) if i == 0 else ''}</td>"
                        f"<td class=\"text\">{html.escape(str(r.get('baseline') or '—'))}</td>"
                        f"<td class=\"text\">{html.escape(name)}</td><td>{_cell(s.get('n'))}</td>"
                        f"<td>{_cell(s.get('win'))}</td><td>{_cell(s.get('loss'))}</td>"
                        f"<td>{_cell(s.get('tie'))}</td><td>{_cell(s.get('win_score'))}</td>"
                        f"<td>{aw}</td></tr>")
    return ("<h2>Downstream: pairwise evaluation</h2><p>Each policy's answers judged against "
            "the baseline's, both orders: win score = (wins − losses) / n + 1 (1: even, above 1: "
            "better than the baseline), AW its average over the prompt sets.</p><table><tr>"
            "<th>model</th><th>against</th><th>set</th><th>n</th><th>win</th><th>loss</th>"
            "<th>tie</th><th>win score</th><th>AW</th></tr>"
            + "".join(rows) + "</table>")
