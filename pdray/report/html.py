"""The selection report: one HTML page a person reads (verdict, reward models, data, strategies,
captioned figures, examples, downstream DPO and eval) plus its PNGs and ``metrics.json``."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.io import write_json, write_text
from pdray.length_modes import LengthTerm
from pdray.report import plots
from pdray.report.datacounts import data_counts, data_html
from pdray.report.downstream import dpo_html, dpo_table, eval_html
from pdray.report.examples import examples_html, main_selection, pick_examples
from pdray.report.metrics import budget_table, selection_metrics, verdict
from pdray.selection import select
from pdray.selection.config import default
from pdray.selection.pd import PDResult
from pdray.selection.scores import columns


def build_report(scores: pa.Table, selections: dict, output_dir: str | Path, *,
                 ranked: PDResult, length: LengthTerm, gamma: float,
                 pairs: pa.Table | None = None, budgets: tuple = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
                 links: dict[str, str] | None = None, rm_metrics: dict | None = None,
                 data_manifest: dict | None = None, dpo_metrics: dict | None = None,
                 dpo_baseline: str | None = None, eval_results: dict | None = None,
                 n_examples: int = 5) -> Path:
    """Write ``index.html``, PNG plots and ``metrics.json`` to ``output_dir``; return the HTML path.

    ``ranked`` is the PD the selection used, per row of ``scores`` (the select stage's
    ``pd.parquet``, q_k and length term: :func:`pdray.selection.pd.recorded_pd`); ``length``
    and ``gamma`` its settings, which the budget curves select with. The report computes no
    PD of its own.

    The page opens with the verdict (:func:`pdray.report.metrics.verdict`): whether pd's
    consensus is above random's, and the reward-model quality gates (``rm_metrics``: the rm
    stage's ``metrics.json``) — held-out accuracy with its 95 % interval beside a length-only
    scorer, steps, final loss — with their warnings. Then the data counts (``data_manifest``:
    the data stage's manifest), the strategies, one captioned figure per plot (one per aspect
    for the reward gaps), ``n_examples`` kept and dropped pairs of each kind from the main
    selection, and — when they ran — the DPO runs (``dpo_metrics``: the dpo manifest's
    ``metrics``, ``dpo_baseline`` the row the others are compared with) and the pairwise eval
    (``eval_results``: the eval manifest's ``results``)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pdr = ranked
    has_truth = pairs is not None and "chosen_ratings" in pairs.column_names
    true_ids = None
    if has_truth:
        lam = next(iter(selections.values())).manifest.get("params", {}).get(
            "budget", default("budget")) if selections else default("budget")
        true_ids = select(scores, "true_pd", length=length, budget=lam, gamma=gamma,
                          pairs=pairs).selected_ids
    metrics = selection_metrics(scores, selections, pairs if has_truth else None, true_ids)
    metrics["q"] = pdr.q
    metrics["pd_mean"] = float(np.mean(pdr.pd))
    counts, edges = np.histogram(pdr.pd, bins=plots.PD_BINS)
    metrics["pd_histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    _, _, dl = columns(scores)
    metrics["pd_dlen_corr"] = (float(np.corrcoef(pdr.pd, dl)[0, 1])
                               if len(dl) > 2 and np.std(dl) > 0 and np.std(pdr.pd) > 0
                               else math.nan)
    metrics["data"] = data_counts(scores, pairs, data_manifest)
    metrics["same_input"] = metrics["data"].get("same_input", 0)
    if rm_metrics:
        metrics["reward_models"] = {"own": rm_metrics.get("own", {}),
                                    "warnings": rm_metrics.get("warnings", [])}
    metrics["verdict"] = verdict(metrics)
    main = main_selection(selections)
    ex_html = ""
    threshold = None
    if main is not None:
        sel = selections[main]
        ex = pick_examples(scores, pdr, sel.selected_ids, pairs, n=n_examples)
        metrics["examples"] = {"selection": main, **ex}
        ex_html = examples_html(ex, main, sel, scores.num_rows)
        if main == "pd" and ex["selected"]["conflicting"]:   # the largest PD kept
            threshold = ex["selected"]["conflicting"][0]["pd"]
    figs = [plots.pd_hist(pdr.pd, out / "pd_hist.png", threshold)]
    figs += plots.gap_figures(scores, out)
    if selections:
        figs.append(plots.dlen_box(scores, selections, out / "dlen.png"))
    strategies = ["pd", "random", "high", "mid"] + (["true_pd"] if has_truth else [])
    table = budget_table(scores, strategies, list(budgets), pairs=pairs if has_truth else None,
                         gamma=gamma, length=length)
    metrics["budget_curve"] = {"budgets": list(budgets), **table}
    measure = "cp" if has_truth else "mean_pd"
    figs.append(plots.budget_curve(list(budgets), table[measure], out / "budget_curve.png",
                                   measure=measure))
    figs.append(plots.budget_curve(list(budgets), table["mean_dlen"], out / "budget_dlen.png",
                                   measure="mean_dlen"))
    downstream = ""
    if dpo_metrics:
        dt = dpo_table(dpo_metrics, dpo_baseline)
        metrics["dpo"] = dt
        downstream += dpo_html(dt)
    if eval_results:
        metrics["eval"] = eval_results
        downstream += eval_html(eval_results)
    write_json(metrics, out / "metrics.json")
    page = out / "index.html"
    write_text(_html(metrics, figs, links or {}, ex_html, downstream), page)
    return page


def _rm_table(rm: dict | None) -> str:
    """The reward-model quality gates, per aspect."""
    if not rm or not rm.get("own"):
        return ""
    rows = []
    for k, v in rm["own"].items():
        lo, hi = (v.get("accuracy_ci95") or [math.nan, math.nan])[:2]
        rows.append(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v.get('heldout_accuracy'))}</td>"
                    f"<td>{_fmt(lo)}–{_fmt(hi)}</td><td>{_fmt(v.get('n'))}</td>"
                    f"<td>{_fmt(v.get('length_only_accuracy'))}</td><td>{_fmt(v.get('steps'))}</td>"
                    f"<td>{_fmt(v.get('final_loss'))}</td><td>{_fmt(v.get('zero_gap_share'))}</td>"
                    f"<td>{_fmt(v.get('margin_dlen_corr'))}</td></tr>")
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in rm.get("warnings", []))
    return ("<h2>Reward models</h2><table><tr><th>aspect</th><th>held-out acc</th><th>95% CI</th>"
            "<th>n</th><th>length-only acc</th><th>steps</th><th>final loss</th>"
            "<th>zero-gap share</th><th>margin~Δlen corr</th></tr>" + "".join(rows) + "</table>"
            + (f"<ul>{warn}</ul>" if warn else ""))


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.3f}"
    return html.escape(str(v))


def _figure(f: plots.Figure, n: int) -> str:
    return (f'<figure><img src="{html.escape(f.path.name)}" alt="{html.escape(f.title)}">'
            f"<figcaption><b>Figure {n}. {html.escape(f.title)}.</b> {html.escape(f.caption)}"
            f"</figcaption></figure>")


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}
table{border-collapse:collapse;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right;vertical-align:top}
td.text,th.text{text-align:left}td.id{font-family:monospace;font-size:0.8em}
table.examples td.text{max-width:260px;font-size:0.85em}
tr.baseline{background:#f3f3f3}
figure{margin:1.5em 0}img{width:100%;max-width:880px}
figcaption{max-width:880px;font-size:0.92em;color:#333}"""


def _html(metrics: dict, figs: list[plots.Figure], links: dict, examples: str,
          downstream: str) -> str:
    rows = "".join(
        f"<tr><td class=\"text\">{html.escape(n)}</td><td>{_fmt(m.get('kept'))}</td>"
        f"<td>{_fmt(m.get('cp', math.nan))}</td><td>{_fmt(m.get('conflict', math.nan))}</td>"
        f"<td>{_fmt(m.get('ties', math.nan))}</td><td>{_fmt(m.get('mean_dlen'))}</td></tr>"
        for n, m in [("all of D", metrics["all"])] + list(metrics["strategies"].items()))
    ov = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
                 for k, v in metrics["overlap"].items())
    q = ", ".join(f"q_{html.escape(k)} = {v:.4g}" for k, v in metrics["q"].items())
    ceiling = (f"<p>CP ceiling (true PD): {_fmt(metrics['true_pd_ceiling_cp'])}</p>"
               if "true_pd_ceiling_cp" in metrics else "")
    link = "".join(f'<li><a href="{html.escape(v)}">{html.escape(k)}</a></li>'
                   for k, v in links.items())
    figures = "".join(_figure(f, i + 1) for i, f in enumerate(figs))
    verdict_html = "".join(f"<p><b>{html.escape(v)}</b></p>" for v in metrics.get("verdict", []))
    rm_html = _rm_table(metrics.get("reward_models"))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>pdray selection report</title>
<style>{STYLE}</style></head><body>
<h1>pdray selection report</h1>
{verdict_html}{rm_html}
{data_html(metrics["data"])}
<p>Normalisation (Eq. 13): {q}. Mean PD {metrics['pd_mean']:.3f}; PD~Δlen correlation
{_fmt(metrics.get('pd_dlen_corr'))}; pairs with identical inputs after truncation:
{metrics.get('same_input', 0)}.</p>
<h2>Strategies</h2><p>Per strategy: pairs kept; CP, the share whose label agrees with the mean of
the aspects' ratings; conflict, the share it contradicts; ties, the share where the aspects
cancel (CP + conflict + ties = 1; — without ground-truth ratings); mean Δlen in tokens.</p>
<table><tr><th>strategy</th><th>kept</th><th>CP</th><th>conflict</th><th>ties</th>
<th>mean Δlen</th></tr>{rows}</table>{ceiling}
<h2>Overlap (Jaccard)</h2><table>{ov}</table>
<h2>Figures</h2>{figures}
{examples}
{downstream}
{'<h2>Stage manifests</h2><ul>' + link + '</ul>' if link else ''}
<p>metrics: <a href="metrics.json">metrics.json</a></p></body></html>"""
