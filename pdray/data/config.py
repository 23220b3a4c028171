"""Typed configuration of the data stage (YAML + ``key.sub=value`` overrides).

:class:`SourceConfig` is where pairs come from and how rated responses become pairs; it is
the one home of those defaults for both entry points: ``pdray data build``
(:class:`DataBuildConfig`, which adds the output files) and the data stage of ``pdray run``
(:class:`DataStageConfig`, which adds the synthetic generator, the limit and the held-out
split). Both build D with :func:`pdray.data.assemble.assemble`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from pdray.config import StrictModel
from pdray.data.loaders import FORMATS
from pdray.schema import aspect_problem


class SourceConfig(StrictModel):
    """A source of preference data and the conflict build for rating sources."""

    source: str = Field(..., description="input file, folder, URI or hub dataset id")
    format: str = Field("pairs", description="one of " + ", ".join(FORMATS))
    options: dict[str, Any] = Field(default_factory=dict, description="loader options")
    conflict: float | None = Field(
        None, ge=0, le=1, description="target conflict level (Def. 3.3) of pairs built from "
        "ratings, and of synthetic data; None: the data's own level (synthetic: its "
        "generator's default)")
    seed: int = Field(0, description="seeds the conflict build and the loaders that draw "
                      "(e.g. PKU-SafeRLHF's aspect assignment)")
    holistic: Literal["mean", "overall"] = Field(
        "mean", description="the holistic preference of rating sources: the mean of the aspect "
        "ratings or the source's overall score")
    aspects: list[str] | None = Field(
        None, description="the aspects of D: those the conflict build assigns (default: all "
        "rated), or those synthetic data has (default: UltraFeedback's four)")
    known_aspects: list[str] | None = Field(None, description="other aspects are bad rows")
    min_aspects: int = Field(1, ge=1, description="fail with fewer distinct aspects (PD: 2)")

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v not in FORMATS:
            raise ValueError(f"unknown format {v!r} (known: {', '.join(FORMATS)})")
        return v

    @field_validator("aspects", "known_aspects")
    @classmethod
    def _safe_aspects(cls, v: list[str] | None) -> list[str] | None:
        for a in v or []:
            if problem := aspect_problem(a):
                raise ValueError(problem)
        return v

    @field_validator("options")
    @classmethod
    def _safe_constant_aspect(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "aspect" in v and (problem := aspect_problem(v["aspect"])):
            raise ValueError(f"aspect: {problem}")
        return v

    def loader_options(self, *, quarantine: bool = False) -> dict[str, Any]:
        """The options the loader of ``format`` receives (``known_aspects`` where it takes
        them)."""
        opts = dict(self.options)
        if quarantine:
            opts["quarantine"] = True
        if self.known_aspects and self.format in ("pairs", "ultrafeedback_binarized", "trl",
                                                  "hh_rlhf", "generic"):
            opts["known_aspects"] = self.known_aspects
        return opts


class DataBuildConfig(SourceConfig):
    """``pdray data build``: a source turned into canonical pairs, written to ``output``."""

    output: str = Field(..., description="output .parquet or .jsonl")
    quarantine: str | None = Field(None, description="side file for bad rows (JSONL)")
    report: str | None = Field(None, description="JSON report: counts, dropped rows, matrix")


class DataStageConfig(SourceConfig):
    """The pipeline's ``data`` section (:mod:`pdray.data.stage`): a source as above, or the
    synthetic generator, a limit and the held-out split."""

    source: str = Field("synthetic", description="'synthetic' or a path/URI/hub id")
    n_pairs: int = Field(2000, gt=0, description="synthetic: number of pairs")
    length_effect: float = Field(0.5, ge=0, description="synthetic: length/quality coupling")
    limit: int | None = Field(None, gt=0, description="keep only the first N pairs")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="held-out pairs for DPO accuracy")
    quarantine: str | None = Field(
        None, description="side file (JSONL) for bad rows, as in `pdray data build`: they are "
        "set aside and counted (data manifest: quarantined) instead of stopping the run")
