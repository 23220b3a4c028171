"""The pipeline configuration: one YAML with a section per stage.

Each stage's section is that stage's own typed config, declared in its package
(:class:`pdray.data.config.DataStageConfig`, :class:`pdray.rm.config.RMConfig`,
:class:`pdray.scoring.config.ScoreConfig`, :class:`pdray.lossdiff.config.LossDiffConfig`,
:class:`pdray.selection.config.SelectStageConfig`, :class:`pdray.align.config.DPOConfig`,
:class:`pdray.eval.config.EvalConfig`), so the whole file is validated when it loads: a typo
in the last stage fails in the first second, not after an hour of training. ``run`` and
``tune`` are the runner's own sections.

Which stages run, and what each needs from the others, is checked here too: ``run.stages``
against the stage graph (:data:`pdray.pipeline.stages.STAGES`, its only declaration), and a
strategy that needs the LossDiff scores without the ``lossdiff`` stage; and the
baselines that need extra reward models (``holistic``, ``no_debias``) switch them on in the
``rm`` section, where the written ``config.yaml`` shows it. Both come from what each selector
declares (:data:`pdray.selection.selectors.NEEDS`), not from strategy names written here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pdray.align.config import DPOConfig
from pdray.config import StrictModel
from pdray.data.config import DataStageConfig
from pdray.eval.config import EvalConfig
from pdray.lossdiff.config import LossDiffConfig
from pdray.pipeline.stages import STAGES, check_stages, default_stages
from pdray.rm.config import RMConfig
from pdray.scoring.config import ScoreConfig
from pdray.selection.config import COMPARED, SelectStageConfig
from pdray.selection.selectors import NEEDS, SELECTORS


class RunSection(StrictModel):
    output_dir: str = Field("pdray_runs/default", description="the run's folder (stages, "
                            "logs, summary, report): a path, or an object-store URI (s3://, "
                            "gs://; credentials from the environment)")
    ray_address: str | None = Field(None, description="None: local Ray; 'auto': join a cluster")
    num_cpus: int | None = Field(None, description="local Ray CPUs (default: all)")
    stages: list[str] = Field(
        default_factory=default_stages,
        description="the stages to run, in any order (they run in pipeline order: "
                    f"{', '.join(STAGES)}; "
                    f"{', '.join(n for n, s in STAGES.items() if s.runs == 'always')} always)")
    dpo_strategies: list[str] | None = Field(None, description="strategies to align on "
                                             "(default: all selected strategies); 'dmpo' "
                                             "runs the DMPO loss on all of D with its PD")
    tracking: Literal["none", "mlflow", "wandb"] = Field("mlflow", description="experiment "
                                                         "tracker of the run")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (default: "
                                     "<output_dir>/mlruns file store)")
    experiment: str = Field("pdray", description="tracking experiment name")

    local_dir: str | None = Field(None, description="with an object-store run.output_dir "
                                  "(s3://, gs://): the local mirror the run works in (default "
                                  "~/.cache/pdray/mirror/<sha256 of the URI>; docs/cluster.md)")

    @field_validator("output_dir", mode="before")
    @classmethod
    def _no_credentials(cls, v: Any) -> Any:
        """A URI with a key in it is refused as a :class:`ConfigError` raised here, not a
        ``ValueError``: a validation error would print the value, and so the key."""
        from pdray.object_store import check_credentials

        if isinstance(v, str):
            check_credentials(v)
        return v

    @field_validator("output_dir")
    @classmethod
    def _local_or_shared_folder(cls, v: str) -> str:
        from pdray.object_store import check_uri, is_uri

        return check_uri(v) if is_uri(v) else v


class TuneSection(StrictModel):
    objective: Literal["selection", "dpo"] = Field(
        "selection", description="selection: select and measure (cheap); dpo: DPO per trial, "
        "held-out implicit-reward accuracy, ASHA")
    metric: str = Field("cp", description="selection objective: a summary column (cp, "
                        "conflict, mean_dlen)")
    mode: Literal["max", "min"] = Field("max", description="maximise or minimise the metric")
    search_space: dict[str, Any] = Field(
        default_factory=lambda: {"select.budget": [0.1, 0.3, 0.5], "select.gamma": [0.9, 0.95, 0.99]},
        description="section.key: a list (grid) or {uniform|loguniform|randint|choice: ...}")
    num_samples: int = Field(1, ge=1, description="samples of the space (grids: repeats)")
    max_concurrent: int = Field(2, ge=1, description="trials at once")
    cpus_per_trial: float = Field(0.5, gt=0, description="Ray CPUs each trial holds")
    asha_grace_steps: int = Field(1, ge=1, description="dpo objective: epochs before ASHA "
                                  "may stop a trial")

    @field_validator("search_space")
    @classmethod
    def _keys_are_dotted(cls, v: dict) -> dict:
        for k, spec in v.items():
            if "." not in k:
                raise ValueError(f"search-space key {k!r} must be section.key (e.g. select.budget)")
            if not isinstance(spec, (list, dict)):
                raise ValueError(f"search space for {k!r} must be a list of values or "
                                 "{uniform|loguniform: [low, high]}")
        return v


def _dpo_strategies_are_selected(data: dict) -> dict:
    """A strategy named in ``run.dpo_strategies`` (Table 1's rows) is selected too, when the run
    aligns: it joins ``select.strategies`` when missing (``dmpo`` is a loss on all of D, not a
    selection)."""
    run, select = data.get("run") or {}, data.get("select") or {}
    run = run.model_dump() if isinstance(run, StrictModel) else run
    select = select.model_dump() if isinstance(select, StrictModel) else dict(select)
    if not isinstance(run, dict) or "dpo" not in run.get("stages", ["dpo"]):
        return data                          # no DPO in this run: nothing to align on
    dpo = run.get("dpo_strategies") or []
    chosen = list(select.get("strategies", COMPARED))
    extra = [s for s in dpo if s != "dmpo" and s not in chosen]
    if not extra:
        return data
    return {**data, "select": {**select, "strategies": chosen + extra}}


class PipelineConfig(StrictModel):
    name: str = Field("pdray", description="the run's name (tracking, Tune)")
    data: DataStageConfig = DataStageConfig()
    rm: RMConfig = Field(default_factory=RMConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    lossdiff: LossDiffConfig = Field(default_factory=LossDiffConfig)
    select: SelectStageConfig = SelectStageConfig()
    dpo: DPOConfig = Field(default_factory=DPOConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    run: RunSection = Field(default_factory=RunSection)   # per config: the table, read now
    tune: TuneSection = TuneSection()

    @model_validator(mode="before")
    @classmethod
    def _baselines_train_their_models(cls, data: Any) -> Any:
        """Selectors that read reward models of their own (``holistic``; ``no_debias``, ablation
        A2): asking for the strategy turns on their ``rm`` switch (:class:`Needs.rm_switch`)."""
        if not isinstance(data, dict):
            return data
        data = _dpo_strategies_are_selected(data)
        select = data.get("select") or {}
        strategies = select.get("strategies", COMPARED) if isinstance(select, dict) else []
        rm = data.get("rm")
        if isinstance(rm, RMConfig):
            rm = rm.model_dump()
        rm = dict(rm or {})
        for s in strategies:
            switch = NEEDS[s].rm_switch if s in NEEDS else None
            if switch:
                rm[switch] = True
        return {**data, "rm": rm}

    @model_validator(mode="after")
    def _stages_have_their_inputs(self):
        """What each stage needs from the others, before anything runs."""
        unknown = [s for s in self.select.strategies if s not in SELECTORS]
        if unknown:   # read now, so a selector registered after import counts too
            raise ValueError(f"select.strategies: unknown strategy {unknown[0]!r} (known: "
                             f"{', '.join(sorted(SELECTORS))})")
        check_stages(self.run.stages)   # read now too: a stage added to the table counts
        stages = set(self.run.stages)
        # read when the config is checked, so a selector registered after import counts too
        wants = sorted(s for s in set(self.select.strategies) if NEEDS[s].logprobs)
        if wants and "select" in stages and "lossdiff" not in stages:
            raise ValueError(f"select.strategies {wants} need the LossDiff scores: add lossdiff "
                             "to run.stages")
        return self
