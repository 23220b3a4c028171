"""The eval stage of the pipeline: generation and the pairwise judge for every aligned policy.

``run(cfg, inputs, out, echo) -> EvalManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``eval`` section
(:class:`pdray.eval.config.EvalConfig`), ``inputs["dpo"]`` the dpo stage's manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdray.eval.config import EvalConfig
from pdray.manifest import StageManifest


class EvalManifest(StageManifest):
    results: dict[str, Any]


def run(cfg: EvalConfig, inputs: dict, out: Path, echo) -> EvalManifest:
    """Every policy of the dpo stage against the reference, judged with order swap."""
    from pdray.eval.run import evaluate_models  # its reward-model judge imports torch

    return EvalManifest(dir=str(out), results=evaluate_models(inputs["dpo"].models, cfg,
                                                              str(out), echo=echo))
