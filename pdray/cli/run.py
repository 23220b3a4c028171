"""``pdray run CONFIG.yaml [key=value ...]``: the whole pipeline, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pdray.cli.common import OVERRIDES_ARG, PIPELINE_CONFIG, pipeline_echo, settings_epilog
from pdray.cli.demo import rm_quality_lines
from pdray.config import load_config


def register(app: typer.Typer) -> None:
    @app.command("run", cls=settings_epilog(
        PIPELINE_CONFIG, how="in the CONFIG YAML, or as key=value after it"))
    def run_cmd(config: Path = typer.Argument(..., help="Pipeline YAML (see jobs/configs/)."),
                overrides: Optional[list[str]] = OVERRIDES_ARG,
                upto: Optional[str] = typer.Option(None, help="Stop after this stage."),
                ray_address: Optional[str] = typer.Option(None, help="'auto' to join a cluster.")):
        """Run data -> rm -> score -> select -> dpo -> eval -> report; finished stages are
        skipped on a re-run, an interrupted run resumes."""
        from pdray.pipeline import PipelineConfig, run_pipeline

        extra = [f"run.ray_address={ray_address}"] if ray_address else []
        cfg = load_config(PipelineConfig, config, extra + list(overrides or []))   # key=value wins
        with pipeline_echo(cfg.run.output_dir) as echo:
            res = run_pipeline(cfg, echo=echo, upto=upto)
            rm = res.manifests.get("rm")
            for line in rm_quality_lines(rm.dir if rm else None):
                echo(line)
