"""The score stage of the pipeline: cross pseudo-rewards of every training pair.

``run(cfg, inputs, out, echo) -> ScoreManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``score`` section
(:class:`pdray.scoring.config.ScoreConfig`), ``inputs`` the data and rm stages' manifests.
"""

from __future__ import annotations

from pathlib import Path

from pdray.manifest import StageManifest
from pdray.scoring.config import ScoreConfig


class ScoreManifest(StageManifest):
    scores: str
    scores_no_debias: str | None = None


def run(cfg: ScoreConfig, inputs: dict, out: Path, echo) -> ScoreManifest:
    """Every training pair under every aspect's model (and under the no-mitigation models when
    the rm stage trained them: ablation A2), on the Ray Data scoring runner."""
    from pdray.scoring import score_pairs  # ray, torch: only when the stage runs

    data, rm = inputs["data"], inputs["rm"]
    scores = score_pairs(data.train, rm.dir, str(out / "scores"), cfg, echo=echo).output_dir
    no_debias = None
    if rm.no_debias_dir:
        echo("[score] scoring with the no-mitigation reward models (ablation A2)")
        no_debias = str(score_pairs(data.train, rm.no_debias_dir, str(out / "scores_no_debias"),
                                    cfg, echo=echo).output_dir)
    return ScoreManifest(dir=str(out), scores=str(scores), scores_no_debias=no_debias)
