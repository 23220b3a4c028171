"""``pdray demo``: the embedded default pipeline (synthetic data, tiny models, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pdray.cli.common import OVERRIDES_ARG, PIPELINE_CONFIG, pipeline_echo, settings_epilog
from pdray.errors import PdrayError


def register(app: typer.Typer) -> None:
    @app.command("demo", cls=settings_epilog(
        PIPELINE_CONFIG, how="key=value overrides of the preset"))
    def demo_cmd(preset: str = typer.Option("demo", help="'demo' (synthetic, tiny models) or "
                                            "'pku' (PKU-SafeRLHF, MiniLM + SmolLM2)."),
                 data: Optional[Path] = typer.Option(None, help="pku: path to "
                                                     "pku_saferlhf_500.jsonl"),
                 output: Optional[Path] = typer.Option(None, help="Output directory."),
                 overrides: Optional[list[str]] = OVERRIDES_ARG):
        """Run the whole pipeline on an embedded default in a few minutes and print the
        strategies × (CP, conflict, Δlen, DPO held-out accuracy) table and the report path."""
        from pdray.config import load_config
        from pdray.pipeline import PipelineConfig, run_pipeline
        from pdray.pipeline.presets import preset as load_preset

        extra = []
        if preset == "pku":
            path = data or Path("../shared/data/preference/pku_saferlhf_500.jsonl")
            if not path.exists():
                raise PdrayError(f"{path}: PKU-SafeRLHF file not found; pass --data PATH")
            extra.append(f"data.source={path}")
        if output:
            extra.append(f"run.output_dir={output}")
        cfg = load_config(PipelineConfig, None, extra + list(overrides or []),
                          base=load_preset(preset))
        with pipeline_echo(cfg.run.output_dir) as echo:
            res = run_pipeline(cfg, echo=echo)
            rm = res.manifests.get("rm")
            for line in rm_quality_lines(rm.dir if rm else None):
                echo(line)
            if res.report_html:
                echo(f"report: {res.report_html}")


def rm_quality_lines(rm_dir: str | None) -> list[str]:
    """The reward models' held-out accuracy (95 % CI, length-only beside it) and warnings, to
    print beside the pipeline's table (the per-model lines of the rm stage are detail, in
    OUTPUT/pdray.log; a cached rm stage prints no warning of its own): PD is only as good as
    these models."""
    import json

    if not rm_dir or not (Path(rm_dir) / "metrics.json").is_file():
        return []
    m = json.loads((Path(rm_dir) / "metrics.json").read_text(encoding="utf-8"))
    lines = ["reward models (held-out pairs):"]
    for k, v in (m.get("own") or {}).items():
        lo, hi = [float("nan") if x is None else x
                  for x in (v.get("accuracy_ci95") or (None, None))]
        lines.append(f"  {k:24s} accuracy {v['heldout_accuracy']:.3f} (95% CI {lo:.2f}–{hi:.2f}, "
                     f"n={v['n']}), length-only {v.get('length_only_accuracy', float('nan')):.3f}")
    lines += [f"  warning: {w}" for w in m.get("warnings", [])]
    return lines
