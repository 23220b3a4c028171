"""``pdray dpo PAIRS --model M --output DIR [--loss dpo|dmpo] [key=value ...]``."""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import CONFIG_OPTION, OVERRIDES_ARG, settings_epilog, stage_config


def register(app: typer.Typer) -> None:
    @app.command("dpo", cls=settings_epilog("pdray.align.config:DPOConfig"))
    def dpo_cmd(pairs: str = typer.Argument(..., help="Pairs, e.g. SEL/selected.parquet."),
                output: Path = typer.Option(..., "--output", "-o"),
                model: str | None = typer.Option(None, help="HF folder/hub id, tiny, smollm2."),
                loss: str | None = typer.Option(None, help="dpo | dmpo"),
                preset: str | None = typer.Option(None, help="paper | tiny"),
                eval_pairs: str | None = typer.Option(None, "--eval", help="Held-out pairs: "
                                                         "report implicit-reward accuracy."),
                config: Path | None = CONFIG_OPTION,
                overrides: list[str] | None = OVERRIDES_ARG):
        """DPO (or DMPO, reading the pairs' pd column) with TRL under Ray Train; saves a plain
        HF model folder and a manifest. Overrides: num_workers=2, deepspeed=zero2, lora.r=8, ..."""
        from pdray.align import DPOConfig, implicit_reward_accuracy, train_dpo
        from pdray.io import read_table

        presets = {"paper": DPOConfig.paper, "tiny": DPOConfig.tiny}
        if preset and preset not in presets:
            raise typer.BadParameter(f"unknown preset {preset!r} (paper | tiny)", param_hint="--preset")
        base = presets[preset]().model_dump() if preset else None
        extra = [f"{k}={v}" for k, v in (("model", model), ("loss", loss)) if v]
        cfg = stage_config(DPOConfig, config, list(overrides or []) + extra, base=base)
        res = train_dpo(pairs, cfg, str(output), echo=typer.echo)
        ev = res.manifest.get("evaluation")
        if ev:
            split = "".join(f", {k} {ev[k]:.3f} (n={ev['n_' + k]})"
                            for k in ("conflicting", "non_conflicting") if k in ev)
            typer.echo(f"held-out ({cfg.eval_fraction:.0%}) implicit-reward accuracy "
                       f"{ev['accuracy']:.3f} (n={ev['n']}){split}; mean sample length "
                       f"{ev.get('mean_sample_tokens', float('nan')):.1f} tokens")
        typer.echo(f"model: {res.model_dir}\nmanifest: {Path(output) / 'manifest.json'}")
        if eval_pairs:
            acc = implicit_reward_accuracy(res.model_dir, res.manifest["ref_model_dir"],
                                           read_table(eval_pairs), beta=cfg.beta,
                                           max_length=cfg.max_length)
            typer.echo(f"{eval_pairs}: implicit-reward accuracy {acc['accuracy']:.3f} (n={acc['n']})")
