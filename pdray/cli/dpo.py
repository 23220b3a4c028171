"""``pdray dpo PAIRS --model M --output DIR [--loss dpo|dmpo] [key=value ...]``."""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.verbs import Input, Shortcut, stage_verb

PRESETS = ("paper", "tiny")


def _preset(inputs: dict) -> dict | None:
    from pdray.align.config import DPOConfig

    preset = inputs["preset"]
    if preset and preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r} (paper | tiny)", param_hint="--preset")
    return getattr(DPOConfig, preset)().model_dump() if preset else None


def _dpo(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.align import implicit_reward_accuracy, train_dpo
    from pdray.io import read_table

    res = train_dpo(inputs["pairs"], cfg, str(output), echo=echo)
    ev = res.manifest.get("evaluation")
    if ev:
        split = "".join(f", {k} {ev[k]:.3f} (n={ev['n_' + k]})"
                        for k in ("conflicting", "non_conflicting") if k in ev)
        echo(f"held-out ({cfg.eval_fraction:.0%}) implicit-reward accuracy "
             f"{ev['accuracy']:.3f} (n={ev['n']}){split}; mean sample length "
             f"{ev.get('mean_generated_length', float('nan')):.1f} tokens")
    echo(f"model: {res.model_dir}\nmanifest: {Path(output) / 'manifest.json'}")
    eval_pairs = inputs["eval_pairs"]
    if eval_pairs:
        acc = implicit_reward_accuracy(res.model_dir, res.manifest["ref_model_dir"],
                                       read_table(eval_pairs), beta=cfg.beta,
                                       max_length=cfg.max_length)
        echo(f"{eval_pairs}: implicit-reward accuracy {acc['accuracy']:.3f} (n={acc['n']})")


def register(app: typer.Typer) -> None:
    stage_verb(
        app, "dpo", config="pdray.align.config:DPOConfig", run=_dpo, base=_preset,
        inputs=[Input("pairs", "Pairs, e.g. SEL/selected.parquet."),
                Input("preset", "paper | tiny", option="--preset", default=None),
                Input("eval_pairs", "Held-out pairs: report implicit-reward accuracy.",
                      option="--eval", default=None)],
        shortcuts=[Shortcut("model", help="HF folder/hub id, tiny, smollm2."),
                   Shortcut("loss", help="dpo | dmpo")],
        help="""DPO (or DMPO, reading the pairs' pd column) with TRL under Ray Train; saves a
        plain HF model folder and a manifest. Overrides: num_workers=2, deepspeed=zero2,
        lora.r=8, ...""")
