"""``pdray tune CONFIG.yaml``: Ray Tune sweeps over λ, γ, ρ, τ, aspect weights."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pdray.cli.common import OVERRIDES_ARG, PIPELINE_CONFIG, settings_epilog


def register(app: typer.Typer) -> None:
    @app.command("tune", cls=settings_epilog(
        PIPELINE_CONFIG, how="in the CONFIG YAML, or as key=value after it"))
    def tune_cmd(config: Path = typer.Argument(..., help="Pipeline YAML with a tune: section."),
                 overrides: Optional[list[str]] = OVERRIDES_ARG):
        """Sweep selection (and training) parameters; writes tune/results.csv,
        tune/best_config.yaml and tune/sensitivity.png under run.output_dir."""
        from pdray.config import load_config
        from pdray.pipeline import PipelineConfig
        from pdray.pipeline.tune import run_tune

        cfg = load_config(PipelineConfig, config, list(overrides or []))
        run_tune(cfg, echo=typer.echo)
