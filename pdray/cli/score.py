"""``pdray score PAIRS --rm RM_DIR --output SCORES_DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pdray.cli.common import CONFIG_OPTION, OVERRIDES_ARG, stage_config


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score_cmd(pairs: str = typer.Argument(..., help="Canonical pairs (.parquet/.jsonl)."),
                  rm: Optional[str] = typer.Option(None, "--rm", help="Reward-model set "
                                                   "(pdray rm train); --kind reward."),
                  kind: str = typer.Option("reward", help="reward (cross pseudo-rewards) | "
                                           "logprob (LossDiff-IRM scores)"),
                  policy: Optional[str] = typer.Option(None, help="--kind logprob: policy θ"),
                  reference: Optional[str] = typer.Option(None, help="--kind logprob: π_ref"),
                  aux: Optional[str] = typer.Option(None, help="--kind logprob: θ_val"),
                  output: Path = typer.Option(..., "--output", "-o"),
                  backend: Optional[str] = typer.Option(None, help="hf | vllm"),
                  num_actors: Optional[int] = typer.Option(None),
                  batch_tokens: Optional[int] = typer.Option(None),
                  verbose: bool = typer.Option(False, "--verbose", help="Ray's own worker "
                                               "log lines and bars on the terminal (default: "
                                               "OUTPUT/logs/)"),
                  config: Optional[Path] = CONFIG_OPTION,
                  overrides: Optional[list[str]] = OVERRIDES_ARG):
        """Cross pseudo-rewards: every pair through every aspect's reward model (Ray Data);
        writes the scores table (OUTPUT/shards/*.parquet), failures and a manifest. A Parquet
        input is streamed (never read whole); a progress line (rows, rows/s, ETA) at least
        every 30 s. Re-running skips finished shards whose inputs are unchanged."""
        from pdray.errors import ConfigError
        from pdray.io import check_output
        from pdray.raysetup import init_ray
        from pdray.scoring import ScoreConfig, score_pairs

        if kind == "logprob":
            from pdray.lossdiff import LossDiffConfig
            from pdray.lossdiff.pipeline import score_logprobs

            if not (policy and reference and aux):
                raise ConfigError("--kind logprob needs --policy, --reference and --aux "
                                  "(see pdray lossdiff warmup)")
            lcfg = stage_config(LossDiffConfig, config, overrides)
            init_ray(quiet=not verbose)
            score_logprobs(pairs, policy, reference, aux, str(output), lcfg,
                           echo=typer.echo, verbose=verbose)
            return
        if kind != "reward":
            raise ConfigError(f"--kind must be reward or logprob, got {kind!r}")
        if not rm:
            raise ConfigError("--kind reward needs --rm RM_DIR")

        extra = [f"{k}={v}" for k, v in (("backend", backend), ("num_actors", num_actors),
                                        ("batch_tokens", batch_tokens)) if v is not None]
        cfg = stage_config(ScoreConfig, config, list(overrides or []) + extra)
        check_output(output, folder=True)   # before Ray starts
        init_ray(quiet=not verbose)
        score_pairs(pairs, rm, str(output), cfg, echo=typer.echo, verbose=verbose)
