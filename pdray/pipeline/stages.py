"""The pipeline's wiring: :data:`STAGES`, one :class:`pdray.pipeline.protocol.Stage` per stage,
naming the stage package's ``stage.run``, its config section, the stages it reads and the few
values it takes from other sections.

The stages' work lives in their packages (``pdray/<stage>/stage.py``); keys, reuse, locking,
the manifest marker, timing and tracking in :func:`pdray.pipeline.protocol.run_stage`. The
functions here only read the pipeline config.
"""

from __future__ import annotations

from pdray.align import stage as dpo_stage
from pdray.data import stage as data_stage
from pdray.eval import stage as eval_stage
from pdray.lossdiff import stage as lossdiff_stage
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.protocol import Stage
from pdray.report import stage as report_stage
from pdray.rm import stage as rm_stage
from pdray.scoring import stage as score_stage
from pdray.selection import stage as select_stage


def wants_dmpo(cfg: PipelineConfig) -> bool:
    """DMPO runs when ``run.dpo_strategies`` names it (all of D with its PD column)."""
    return "dpo" in cfg.run.stages and "dmpo" in (cfg.run.dpo_strategies or [])


def dpo_strategies(cfg: PipelineConfig) -> list[str]:
    """The subsets the dpo stage aligns on: ``run.dpo_strategies``, default every selected one."""
    return cfg.run.dpo_strategies or list(cfg.select.strategies)


def lossdiff_default_reference(cfg: PipelineConfig) -> str | None:
    """Without ``lossdiff.reference`` the warm-up starts from the dpo stage's model."""
    return cfg.dpo.model if cfg.lossdiff.reference is None else None


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("data", data_stage.run, data_stage.DataManifest, section="data",
          source_key=lambda cfg: data_stage.source_key(cfg.data),
          cached=lambda m: f": {m.train_rows} train / {m.test_rows} test pairs"),
    Stage("rm", rm_stage.run, rm_stage.RMManifest, section="rm", reads=("data",),
          cached=lambda m: f": {m.dir}"),
    Stage("score", score_stage.run, score_stage.ScoreManifest, section="score",
          reads=("data", "rm"), cached=lambda m: f": {m.scores}"),
    Stage("lossdiff", lossdiff_stage.run, lossdiff_stage.LossDiffManifest, section="lossdiff",
          reads=("data",),
          args=lambda cfg: {"default_reference": lossdiff_default_reference(cfg)},
          cached=lambda m: f": {m.scores}"),
    Stage("select", select_stage.run, select_stage.SelectManifest, section="select",
          reads=("data", "score", "lossdiff"), args=lambda cfg: {"dmpo": wants_dmpo(cfg)},
          cached=lambda m: f": {', '.join(m.strategies)}"),
    Stage("dpo", dpo_stage.run, dpo_stage.DPOManifest, section="dpo", reads=("data", "select"),
          args=lambda cfg: {"strategies": dpo_strategies(cfg)},
          cached=lambda m: f": {', '.join(m.models)}"),
    Stage("eval", eval_stage.run, eval_stage.EvalManifest, section="eval", reads=("dpo",)),
    Stage("report", report_stage.run, report_stage.ReportManifest, section="select",
          reads=("data", "score", "select", "dpo"), cached=lambda m: ""),
)}
"""The pipeline's stages by name, in the order :data:`pdray.pipeline.config.STAGES` runs them."""
