"""Typed configuration of ``pdray data build`` (YAML + ``key.sub=value`` overrides)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from pdray.config import StrictModel
from pdray.data.loaders import FORMATS
from pdray.schema import aspect_problem


class DataBuildConfig(StrictModel):
    """Where the data comes from, how it is turned into canonical pairs, where it goes."""

    source: str = Field(..., description="input file, folder, URI or hub dataset id")
    format: str = Field("pairs", description="one of " + ", ".join(FORMATS))
    output: str = Field(..., description="output .parquet or .jsonl")
    conflict: float | None = Field(None, ge=0, le=1,
                                      description="target conflict level (rating sources)")
    seed: int = 0
    holistic: Literal["mean", "overall"] = "mean"
    aspects: list[str] | None = Field(None, description="aspects used by the conflict build")
    known_aspects: list[str] | None = Field(None, description="other aspects are bad rows")
    min_aspects: int = Field(1, ge=1, description="fail with fewer distinct aspects (PD: 2)")
    quarantine: str | None = Field(None, description="side file for bad rows (JSONL)")
    report: str | None = Field(None, description="JSON report: counts, dropped rows, matrix")
    options: dict[str, Any] = Field(default_factory=dict, description="loader options")

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

    def loader_options(self) -> dict[str, Any]:
        opts = dict(self.options)
        if self.quarantine:
            opts["quarantine"] = True
        if self.known_aspects and self.format in ("pairs", "ultrafeedback_binarized", "trl",
                                                  "hh_rlhf", "generic"):
            opts["known_aspects"] = self.known_aspects
        return opts
