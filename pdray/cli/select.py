"""``pdray select SCORES [--strategy S] [--budget λ] [--gamma γ] --output DIR [--data PAIRS]``.

Settings: ``--config`` YAML (a :class:`pdray.selection.config.SelectConfig`) < the options
given on the command line < ``key.sub=value`` overrides after SCORES.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.verbs import Input, Shortcut, stage_verb
from pdray.selection.config import default

MANIFEST_DEFAULT = "(default: the scores manifest's)"


def _given(inputs: dict) -> dict:
    """The settings of ``--option``, ``--weight`` and ``--report``."""
    from pdray.config import parse_override

    given: dict = {"report": True} if inputs["report"] else {}
    for flag, section in (("option", "options"), ("weight", "aspect_weights")):
        for text in inputs[flag] or []:
            k, v = parse_override(text)
            given.setdefault(section, {})[".".join(k)] = v
    return given


def _select(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.data.loaders import read_pairs
    from pdray.selection import select, write_selection
    from pdray.selection.scores import read_scores

    scores, data = inputs["scores"], inputs["data"]
    table = read_scores(scores)
    pairs = read_pairs(data) if data else None
    kw = cfg.select_kwargs(scores)
    res = select(table, cfg.strategy, pairs=pairs, source=str(scores), pairs_source=data, **kw)
    res.manifest["inputs"] = {"scores": str(scores), "pairs": data}
    write_selection(res, output)
    c = res.manifest["counts"]
    echo(f"{cfg.strategy}: selected {c['selected']} of {c['in']} pairs "
         f"({c['not_selected']} not selected, {c['dropped']} dropped) -> {output}")
    if res.manifest["q"]:
        echo("q_k: " + ", ".join(f"{k}={v:.4g}" for k, v in res.manifest["q"].items()))
    if res.manifest["info"].get("keep_rate") is not None:
        echo(f"keep rate: {res.manifest['info']['keep_rate']:.3f}")
    if cfg.report:
        from pdray.report import build_report

        page = build_report(table, {cfg.strategy: res}, Path(output) / "report", pairs=pairs,
                            gamma=cfg.gamma, rho=kw["rho"], length_debias=kw["length_debias"])
        echo(f"report: {page}")


def register(app: typer.Typer) -> None:
    stage_verb(
        app, "select", config="pdray.selection.config:SelectConfig", run=_select,
        settings=_given, overrides_last=True, one_line_errors=True,
        inputs=[Input("scores", "Scores table (.parquet) or a directory of Parquet shards."),
                Input("data", "Canonical pairs: write the full selected pairs (ready for DPO).",
                      option="--data", default=None),
                Input("option", "Strategy option key=value, e.g. low=0.2.", option="--option",
                      type=list[str], default=None),
                Input("weight", "Aspect weight aspect=w for PD (default 1).", option="--weight",
                      type=list[str], default=None),
                Input("report", "Also write an HTML report to OUTPUT/report.", option="--report",
                      type=bool, default=False)],
        shortcuts=[Shortcut("strategy", help="pd | random | high | mid | holistic | no_debias | "
                            "true_pd | band | lossdiff_irm | pd_irm | oracle | overall | all "
                            f"(default {default('strategy')})"),
                   Shortcut("budget", float), Shortcut("gamma", float),
                   Shortcut("rho", float, help=f"ρ per token, Eq. 18 {MANIFEST_DEFAULT}."),
                   Shortcut("length_debias", help=f"learned | penalty | poe | none "
                            f"{MANIFEST_DEFAULT}"),
                   Shortcut("seed", int)],
        help="Select pairs with one strategy; writes OUTPUT/selected.parquet and manifest.json.")
