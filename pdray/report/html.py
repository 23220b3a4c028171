"""The selection report: PNG plots (matplotlib) and one HTML page plus ``metrics.json``."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.io import write_json, write_text
from pdray.report.metrics import budget_table, selection_metrics, verdict
from pdray.selection import compute_pd, select
from pdray.selection.api import gaps_for_pd
from pdray.selection.config import default
from pdray.selection.scores import columns, gap_aspects


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pd_hist(pd: np.ndarray, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(pd, bins=40, color="#4C72B0", alpha=0.85)
    ax.axvline(float(np.mean(pd)), color="k", ls="--", label=f"mean {np.mean(pd):.3f}")
    ax.set_xlabel("PD(z)  (negative = consensus)")
    ax.set_ylabel("pairs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_gap_hists(scores: pa.Table, path: Path) -> Path:
    """Per aspect k: Δr̂_k on its own pairs vs on the other aspects' pairs (paper Fig. B.4)."""
    plt = _plt()
    aspects = gap_aspects(scores)
    own = np.asarray(scores["aspect"].to_pylist(), dtype=object)
    fig, axes = plt.subplots(1, len(aspects), figsize=(3.6 * len(aspects), 3), squeeze=False)
    for ax, k in zip(axes[0], aspects):
        g = scores[f"gap_{k}"].to_numpy().astype(float)
        ax.hist(g[own == k], bins=30, alpha=0.6, label=f"D_{k}", density=True)
        ax.hist(g[own != k], bins=30, alpha=0.6, label="other aspects", density=True)
        ax.set_title(f"Δr̂ of {k}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_dlen(scores: pa.Table, selections: dict, path: Path) -> Path:
    """Δlen distribution of each selection (paper Fig. B.7)."""
    plt = _plt()
    dlen = dict(zip(scores["id"].to_pylist(), (np.asarray(scores["chosen_len"], float)
                                              - np.asarray(scores["rejected_len"], float))))
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    data = [[dlen[i] for i in s.selected_ids if i in dlen] for s in selections.values()]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(selections) + 1), list(selections), rotation=30, fontsize=8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("Δlen = len(y_w) − len(y_l) (tokens)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curve(budgets: list[float], curve: dict, path: Path,
               ylabel: str = "consensus precision") -> Path:
    """One line per strategy over the budget λ."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for s, ys in curve.items():
        ax.plot(budgets, ys, marker="o", label=s)
    ax.set_xlabel("budget λ")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def build_report(scores: pa.Table, selections: dict, output_dir: str | Path, *,
                 pairs: pa.Table | None = None, gamma: float = default("gamma"), rho: float = 0.0,
                 length_debias: str = "penalty", budgets: tuple = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
                 links: dict[str, str] | None = None, rm_metrics: dict | None = None) -> Path:
    """Write ``index.html``, PNG plots and ``metrics.json`` to ``output_dir``; return the HTML path.

    The page opens with the verdict (:func:`pdray.report.metrics.verdict`): whether pd's
    consensus is above random's, and the reward-model quality gates (``rm_metrics``: the rm
    stage's ``metrics.json``) — held-out accuracy with its 95 % interval beside a length-only
    scorer, steps, final loss — with their warnings."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the PD that selected: with learned reward models, after the same ρ̂_k fit as select()
    pdr = compute_pd(gaps_for_pd(scores, length_debias)[0], gamma=gamma, rho=rho,
                     length_debias=length_debias)
    has_truth = pairs is not None and "chosen_ratings" in pairs.column_names
    true_ids = None
    if has_truth:
        lam = next(iter(selections.values())).manifest.get("params", {}).get(
            "budget", default("budget")) if selections else default("budget")
        true_ids = select(scores, "true_pd", budget=lam, gamma=gamma, pairs=pairs).selected_ids
    metrics = selection_metrics(scores, selections, pairs if has_truth else None, true_ids)
    metrics["q"] = pdr.q
    metrics["pd_mean"] = float(np.mean(pdr.pd))
    _, _, dl = columns(scores)
    metrics["pd_dlen_corr"] = (float(np.corrcoef(pdr.pd, dl)[0, 1])
                               if len(dl) > 2 and np.std(dl) > 0 and np.std(pdr.pd) > 0
                               else math.nan)
    metrics["same_input"] = (int(np.sum(np.asarray(scores["same_input"])))
                             if "same_input" in scores.column_names else 0)
    if rm_metrics:
        metrics["reward_models"] = {"own": rm_metrics.get("own", {}),
                                    "warnings": rm_metrics.get("warnings", [])}
    metrics["verdict"] = verdict(metrics)
    imgs = [plot_pd_hist(pdr.pd, out / "pd_hist.png"), plot_gap_hists(scores, out / "gaps.png"),
            plot_dlen(scores, selections, out / "dlen.png")] if selections else [
        plot_pd_hist(pdr.pd, out / "pd_hist.png"), plot_gap_hists(scores, out / "gaps.png")]
    strategies = ["pd", "random", "high", "mid"] + (["true_pd"] if has_truth else [])
    table = budget_table(scores, strategies, list(budgets), pairs=pairs if has_truth else None,
                         gamma=gamma, rho=rho, length_debias=length_debias)
    metrics["budget_curve"] = {"budgets": list(budgets), **table}
    if has_truth:
        imgs.append(plot_curve(list(budgets), table["cp"], out / "budget_curve.png"))
    else:
        imgs.append(plot_curve(list(budgets), table["mean_pd"], out / "budget_curve.png",
                               ylabel="mean PD of the selection"))
    imgs.append(plot_curve(list(budgets), table["mean_dlen"], out / "budget_dlen.png",
                           ylabel="mean Δlen of the selection (tokens)"))
    write_json(metrics, out / "metrics.json")
    page = out / "index.html"
    write_text(_html(metrics, imgs, links or {}), page)
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


def _html(metrics: dict, imgs: list[Path], links: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{_fmt(m.get('kept'))}</td><td>{_fmt(m.get('cp', math.nan))}"
        f"</td><td>{_fmt(m.get('conflict', math.nan))}</td><td>{_fmt(m.get('ties', math.nan))}"
        f"</td><td>{_fmt(m.get('mean_dlen'))}</td></tr>"
        for n, m in [("all of D", metrics["all"])] + list(metrics["strategies"].items()))
    ov = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
                 for k, v in metrics["overlap"].items())
    q = ", ".join(f"q_{html.escape(k)} = {v:.4g}" for k, v in metrics["q"].items())
    ceiling = (f"<p>CP ceiling (true PD): {_fmt(metrics['true_pd_ceiling_cp'])}</p>"
               if "true_pd_ceiling_cp" in metrics else "")
    link = "".join(f'<li><a href="{html.escape(v)}">{html.escape(k)}</a></li>' for k, v in links.items())
    figs = "".join(f'<figure><img src="{p.name}"><figcaption>{p.stem}</figcaption></figure>'
                   for p in imgs)
    verdict_html = "".join(f"<p><b>{html.escape(v)}</b></p>" for v in metrics.get("verdict", []))
    rm_html = _rm_table(metrics.get("reward_models"))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>pdray selection report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}figure{{display:inline-block;margin:8px}}
img{{max-width:520px}}</style></head><body>
<h1>pdray selection report</h1>
{verdict_html}{rm_html}
<p>Normalisation (Eq. 13): {q}. Mean PD {metrics['pd_mean']:.3f}; PD~Δlen correlation
{_fmt(metrics.get('pd_dlen_corr'))}; pairs with identical inputs after truncation:
{metrics.get('same_input', 0)}.</p>
<h2>Strategies</h2><table><tr><th>strategy</th><th>kept</th><th>CP</th><th>conflict</th><th>ties</th>
<th>mean Δlen</th></tr>{rows}</table>{ceiling}
<h2>Overlap (Jaccard)</h2><table>{ov}</table>
<h2>Plots</h2>{figs}
{'<h2>Stage manifests</h2><ul>' + link + '</ul>' if link else ''}
<p>metrics: <a href="metrics.json">metrics.json</a></p></body></html>"""
