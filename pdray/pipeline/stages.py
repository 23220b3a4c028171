"""The pipeline's wiring and its graph: :data:`STAGES`, one
:class:`pdray.pipeline.protocol.Stage` per stage, naming the stage package's ``stage.run``, its
config section, the stages it reads and the few values it takes from other sections.

The table is the only declaration of the graph: its order is the order the stages run in, and
``run.stages`` (its default, the names it accepts, "a stage needs the stages it reads") and
``--upto`` are checked against it (:func:`default_stages`, :func:`check_stages`,
:func:`run_order`), so a stage added here is known everywhere.

The stages' work lives in their packages (``pdray/<stage>/stage.py``); keys, reuse, locking,
the manifest marker, timing and tracking in :func:`pdray.pipeline.protocol.run_stage`. The
functions here only read the pipeline config.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pdray.align import stage as dpo_stage
from pdray.data import stage as data_stage
from pdray.eval import stage as eval_stage
from pdray.lossdiff import stage as lossdiff_stage
from pdray.pipeline.protocol import Stage
from pdray.report import stage as report_stage
from pdray.rm import stage as rm_stage
from pdray.scoring import stage as score_stage
from pdray.selection import stage as select_stage

if TYPE_CHECKING:   # the config validates run.stages against this table: it imports this module
    from pdray.pipeline.config import PipelineConfig


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
    Stage("data", data_stage.run, data_stage.DataManifest, section="data", runs="always",
          source_key=lambda cfg: data_stage.source_key(cfg.data),
          cached=lambda m: f": {m.train_rows} train / {m.test_rows} test pairs"),
    Stage("rm", rm_stage.run, rm_stage.RMManifest, section="rm", reads=("data",),
          cached=lambda m: f": {m.dir}"),
    Stage("score", score_stage.run, score_stage.ScoreManifest, section="score",
          reads=("data", "rm"), cached=lambda m: f": {m.scores}"),
    Stage("lossdiff", lossdiff_stage.run, lossdiff_stage.LossDiffManifest, section="lossdiff",
          reads=("data",), runs="opt-in",
          args=lambda cfg: {"default_reference": lossdiff_default_reference(cfg)},
          cached=lambda m: f": {m.scores}"),
    Stage("select", select_stage.run, select_stage.SelectManifest, section="select",
          reads=("data", "score"), also_reads=("lossdiff",),
          args=lambda cfg: {"dmpo": wants_dmpo(cfg)},
          cached=lambda m: f": {', '.join(m.strategies)}"),
    Stage("dpo", dpo_stage.run, dpo_stage.DPOManifest, section="dpo", reads=("data", "select"),
          also_reads=("lossdiff",),
          args=lambda cfg: {"strategies": dpo_strategies(cfg)},
          cached=lambda m: f": {', '.join(m.models)}"),
    Stage("eval", eval_stage.run, eval_stage.EvalManifest, section="eval", reads=("dpo",),
          runs="opt-in"),
    Stage("report", report_stage.run, report_stage.ReportManifest, section="select",
          reads=("data", "score", "select"), also_reads=("dpo", "eval"), cached=lambda m: ""),
)}
"""The pipeline's stages by name, in the order they run."""


def default_stages() -> list[str]:
    """``run.stages`` when the config names none: every stage but the opt-in ones."""
    return [name for name, s in STAGES.items() if s.runs != "opt-in"]


def run_order(names: Iterable[str], upto: str | None = None) -> list[str]:
    """The stages that run for ``run.stages`` = ``names``: those named and those that always
    run, in pipeline order, up to and including ``upto``."""
    named, order = set(names), []
    for name, s in STAGES.items():
        if name in named or s.runs == "always":
            order.append(name)
        if name == upto:
            break
    return order


def check_stages(names: Iterable[str]) -> None:
    """``run.stages`` against the graph: each name a stage, each stage with the stages it
    reads (a one-line :class:`ValueError` otherwise)."""
    names = list(names)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"run.stages: unknown stage {unknown[0]!r} (stages: "
                         f"{', '.join(STAGES)})")
    order = run_order(names)
    for name in order:
        missing = [r for r in STAGES[name].reads if r not in order]
        if missing:
            raise ValueError(f"run.stages: {name} needs the {missing[0]} stage")
