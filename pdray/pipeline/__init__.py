"""The whole pipeline: ``pdray run``, the embedded demo and Ray Tune sweeps."""

from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.runner import PipelineResult, run_pipeline

__all__ = ["PipelineConfig", "PipelineResult", "run_pipeline"]
