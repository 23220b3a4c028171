"""The smallest real pipeline (tiny reward models, a few steps, half-CPU actors) that the
end-to-end tests run on a 2-CPU local Ray."""

from pdray.config import load_config
from pdray.pipeline import PipelineConfig


def tiny_pipeline(src, out, *overrides: str) -> PipelineConfig:
    """data → rm → score → select on ``src`` into ``out``; ``overrides`` go last."""
    return load_config(PipelineConfig, None, [
        f"data.source={src}", "data.test_fraction=0.1", f"run.output_dir={out}",
        "run.tracking=none", "run.stages=[data,rm,score,select]",
        "rm.backbone=tiny", "rm.max_steps=2", "rm.min_pairs=4", "rm.batch_size=8",
        "rm.max_length=96", "rm.cpus_per_worker=0.5", "rm.holdout_fraction=0.0",
        "rm.dev_fraction=0.0", "score.shard_rows=64", "score.cpus_per_actor=0.5",
        *overrides])
