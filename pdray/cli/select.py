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


def stage_inputs(cfg, inputs: dict) -> dict:
    """The select stage's input manifests from a verb's paths: the scores folder or table
    (with the length term the scores record, or ``rho``/``length_debias`` when set) and, with
    ``--data``, the pairs (checked against the pairs contract here, in one line)."""
    from pdray.data.stage import DataManifest
    from pdray.scoring.stage import ScoreManifest

    scores, data = inputs["scores"], inputs["data"]
    return {"data": DataManifest.from_pairs(data, read=True) if data else None,
            "score": ScoreManifest.from_path(scores, cfg.length(scores)), "lossdiff": None}


def _select(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.selection import SelectionResult, stage

    given = stage_inputs(cfg, inputs)
    ran = stage.run(cfg.stage_config(), given, output, lambda *_: None, flat=True)
    res = SelectionResult.load(output)
    c = res.manifest["counts"]
    echo(f"{cfg.strategy}: selected {c['selected']} of {c['in']} pairs "
         f"({c['not_selected']} not selected, {c['dropped']} dropped) -> {output}")
    if res.manifest["q"]:
        echo("q_k: " + ", ".join(f"{k}={v:.4g}" for k, v in res.manifest["q"].items()))
    if res.manifest["info"].get("keep_rate") is not None:
        echo(f"keep rate: {res.manifest['info']['keep_rate']:.3f}")
    if cfg.report:
        from pdray.report import stage as report

        page = report.run(cfg.stage_config(), {**given, "select": ran},
                          Path(output) / "report", lambda *_: None).html
        echo(f"report: {page}")


def register(app: typer.Typer) -> None:
    stage_verb(
        app, "select", config="pdray.selection.config:SelectConfig", run=_select,
        settings=_given, one_line_errors=True,
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
