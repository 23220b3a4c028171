"""The score stage of the pipeline: cross pseudo-rewards of every training pair.

``run(cfg, inputs, out, echo) -> ScoreManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``score`` section
(:class:`pdray.scoring.config.ScoreConfig`), ``inputs`` the data and rm stages' manifests.
"""

from __future__ import annotations

from pathlib import Path

from pdray.length_modes import LengthTerm
from pdray.manifest import StageManifest
from pdray.scoring.config import ScoreConfig


class ScoreManifest(StageManifest):
    """``scores`` (and ``scores_no_debias``, ablation A2): the scores folders; ``length``: the
    length term of Eq. 18 of the reward models that made each, keyed by the same field name
    (the one place select, report and tune read it from)."""

    scores: str
    scores_no_debias: str | None = None
    length: dict[str, LengthTerm]

    @classmethod
    def from_path(cls, scores: str | Path, length: LengthTerm) -> ScoreManifest:
        """The manifest of a ``pdray score`` folder (or a scores table) given by path, with the
        length term to select with: what a verb hands the stages after it. A verb has one
        scores table, so every strategy reads it (``no_debias`` included)."""
        p = Path(str(scores))
        return cls(dir=str(p if p.is_dir() else p.parent), scores=str(scores),
                   scores_no_debias=str(scores),
                   length={"scores": length, "scores_no_debias": length})


def _term(rm_dir: str) -> LengthTerm:
    """The length term of the reward-model set in ``rm_dir`` (what its scores manifest records)."""
    from pdray.rm.model_set import RewardModelSet

    return RewardModelSet.load(rm_dir).length


def run(cfg: ScoreConfig, inputs: dict, out: Path, echo, *, flat: bool = False) -> ScoreManifest:
    """Every training pair under every aspect's model (and under the no-mitigation models when
    the rm stage trained them: ablation A2), on the Ray Data scoring runner: ``out/scores/``
    (``flat``: ``out`` itself, ``pdray score -o DIR``) and ``out/scores_no_debias/``."""
    from pdray.scoring import score_pairs  # ray, torch: only when the stage runs

    data, rm = inputs["data"], inputs["rm"]
    main = score_pairs(data.train, rm.dir, str(out if flat else out / "scores"), cfg, echo=echo)
    scores, length = str(main.output_dir), {"scores": _term(rm.dir)}
    no_debias = None
    if rm.no_debias_dir:
        echo("[score] scoring with the no-mitigation reward models (ablation A2)")
        run_a2 = score_pairs(data.train, rm.no_debias_dir, str(out / "scores_no_debias"), cfg,
                             echo=echo)
        no_debias = str(run_a2.output_dir)
        length["scores_no_debias"] = _term(rm.no_debias_dir)
    return ScoreManifest(dir=str(out), scores=str(scores), scores_no_debias=no_debias,
                         length=length)
