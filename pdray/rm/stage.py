"""The rm stage of the pipeline: one reward model per aspect on D's training split.

``run(cfg, inputs, out, echo) -> RMManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``rm`` section (:class:`pdray.rm.config.RMConfig`),
``inputs["data"]`` the data stage's manifest. The baselines' extra models (``holistic``; the
no-mitigation set of ablation A2) are trained when their ``rm`` switch is on, which the pipeline
config turns on for the selectors that need them (:data:`pdray.selection.selectors.NEEDS`).
"""

from __future__ import annotations

from pathlib import Path

from pdray.manifest import StageManifest
from pdray.rm.config import RMConfig


class RMManifest(StageManifest):
    aspects: list[str]
    no_debias_dir: str | None = None

    @classmethod
    def from_path(cls, rm_dir: str | Path) -> RMManifest:
        """The manifest of a reward-model set given by path (``pdray score --rm DIR``): what a
        verb hands the score stage. A folder without ``rm_set.json`` is one line."""
        from pdray.rm.model_set import RewardModelSet

        d = Path(rm_dir)
        return cls(dir=str(d), aspects=RewardModelSet.load(d).aspects,
                   no_debias_dir=_no_debias(d))


def _no_debias(out: Path) -> str | None:
    """The no-mitigation set of ablation A2 inside a set's folder, when it was trained."""
    d = out / "no_debias"
    return str(d) if (d / "rm_set.json").exists() else None


def run(cfg: RMConfig, inputs: dict, out: Path, echo) -> RMManifest:
    """Train the set (all aspects concurrently on Ray Train) under ``out``."""
    from pdray.rm.train import train_reward_models  # torch, trl: only when the stage runs

    data = inputs["data"]
    echo(f"[rm] training {cfg.mode} reward models ({cfg.backbone}) for "
         f"{len(data.aspects)} aspects in parallel")
    rm_set = train_reward_models(data.train, cfg, str(out), echo=echo)
    return RMManifest(dir=str(out), aspects=rm_set.aspects, no_debias_dir=_no_debias(out))
