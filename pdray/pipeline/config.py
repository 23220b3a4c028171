"""The pipeline configuration: one YAML with a section per stage.

``data``, ``run`` and ``tune`` are typed here, ``select`` on selection's own parameters
(:class:`pdray.selection.config.SelectParams`); ``rm``, ``score``, ``dpo`` and ``eval``
are the stage modules' own config models (:class:`pdray.rm.RMConfig`,
:class:`pdray.scoring.ScoreConfig`, :class:`pdray.align.DPOConfig`, :class:`pdray.eval` config),
kept as mappings here and validated by :func:`validate_stage_configs` before anything runs, so a
typo in the last stage fails in the first second, not after an hour of training.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from pdray.config import StrictModel
from pdray.errors import ConfigError
from pdray.selection.config import COMPARED, SelectParams


class DataSection(StrictModel):
    source: str = Field("synthetic", description="'synthetic' or a path/URI/hub id")
    format: str = Field("pairs", description="loader format (see `pdray data build --help`)")
    options: dict[str, Any] = Field(default_factory=dict, description="loader options")
    n_pairs: int = Field(2000, gt=0, description="synthetic: number of pairs")
    aspects: list[str] = Field(default_factory=lambda: ["helpfulness", "honesty",
                                                        "instruction_following", "truthfulness"])
    conflict: float | None = Field(0.2, ge=0, le=1, description="target conflict level")
    length_effect: float = Field(0.5, ge=0, description="synthetic: length/quality coupling")
    limit: int | None = Field(None, gt=0, description="keep only the first N pairs")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="held-out pairs for DPO accuracy")
    seed: int = 0


class SelectSection(SelectParams):
    """``select``: the parameters of :class:`pdray.selection.config.SelectConfig` (λ, γ, the
    length fit, the seed: their defaults live there) over a list of strategies; ρ and the
    length mode come from the scores manifest."""

    strategies: list[str] = Field(default_factory=lambda: list(COMPARED))
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="per-strategy options")

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: list[str]) -> list[str]:
        """An unknown strategy fails when the config loads, not after training and scoring."""
        from pdray.selection.selectors import SELECTORS

        unknown = [s for s in v if s not in SELECTORS]
        if unknown:
            raise ValueError(f"unknown strategy {unknown[0]!r} (known: "
                             f"{', '.join(sorted(SELECTORS))})")
        return v


class RunSection(StrictModel):
    output_dir: str = "pdray_runs/default"
    ray_address: str | None = Field(None, description="None: local Ray; 'auto': join a cluster")
    num_cpus: int | None = Field(None, description="local Ray CPUs (default: all)")
    stages: list[Literal["data", "rm", "score", "select", "dpo", "eval", "report"]] = Field(
        default_factory=lambda: ["data", "rm", "score", "select", "dpo", "report"])
    dpo_strategies: list[str] | None = Field(None, description="strategies to align on "
                                             "(default: all selected strategies)")
    tracking: Literal["none", "mlflow", "wandb"] = "mlflow"
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (default: "
                                     "<output_dir>/mlruns file store)")
    experiment: str = "pdray"


class TuneSection(StrictModel):
    objective: Literal["selection", "dpo"] = "selection"
    metric: str = "cp"
    mode: Literal["max", "min"] = "max"
    search_space: dict[str, Any] = Field(
        default_factory=lambda: {"select.budget": [0.1, 0.3, 0.5], "select.gamma": [0.9, 0.95, 0.99]})
    num_samples: int = Field(1, ge=1)
    max_concurrent: int = Field(2, ge=1)
    cpus_per_trial: float = Field(0.5, gt=0)
    asha_grace_steps: int = Field(1, ge=1)

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


class PipelineConfig(StrictModel):
    name: str = "pdray"
    data: DataSection = DataSection()
    rm: dict[str, Any] = Field(default_factory=dict)
    score: dict[str, Any] = Field(default_factory=dict)
    select: SelectSection = SelectSection()
    dpo: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)
    run: RunSection = RunSection()
    tune: TuneSection = TuneSection()


def validate_stage_configs(cfg: PipelineConfig) -> dict[str, Any]:
    """Build every stage's typed config now; raise one ConfigError naming section.key on error."""
    from pydantic import ValidationError

    from pdray.config import format_validation_error

    built: dict[str, Any] = {}
    for section, factory in _stage_factories(cfg).items():
        try:
            built[section] = factory(getattr(cfg, section))
        except ValidationError as e:
            msg = format_validation_error(e, "config")
            raise ConfigError(msg.replace("config: ", f"config: {section}.")) from None
    return built


def _stage_factories(cfg: PipelineConfig) -> dict:
    stages = set(cfg.run.stages)
    out = {}
    if "rm" in stages or "score" in stages:
        from pdray.rm import RMConfig

        out["rm"] = lambda d: RMConfig(**d)
    if "score" in stages:
        from pdray.scoring import ScoreConfig

        out["score"] = lambda d: ScoreConfig(**d)
    if "dpo" in stages:
        from pdray.align import DPOConfig

        out["dpo"] = lambda d: DPOConfig(**d)
    if "eval" in stages:
        from pdray.eval import EvalConfig

        out["eval"] = lambda d: EvalConfig(**d)
    return out
