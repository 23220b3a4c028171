"""Typed configuration of selection: the one home of its defaults.

:class:`SelectParams` holds what every way of selecting shares (λ, γ, the length fit, the seed);
:class:`SelectConfig` is one ``pdray select`` / ``pdray report`` run (YAML + ``key.sub=value``),
and the ``select`` section of ``pdray run`` (:class:`SelectStageConfig`, run by
:mod:`pdray.selection.stage`) is the same parameters over a list of strategies. Code that
needs a default reads it from here (:func:`default`), never writes the number again.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pdray.config import StrictModel
from pdray.length_modes import LengthDebias, LengthTerm
from pdray.selection.scores import length_term

COMPARED = ("pd", "random", "high", "mid")   # strategies compared when none are named

BAND = (0.2, 0.8)
"""[P_low, P_high] of the percentile band of ``band``, ``lossdiff_irm`` and ``pd_irm``
(METHOD.md, "Second seed", step 4): the default of their ``low`` / ``high`` options."""


LOSSDIFF_KEEP = 0.57
"""Default keep rate of ``lossdiff_irm`` (its ``keep_rate`` option): the middle of the 50–64 %
the second paper reports. Its band is the narrowest symmetric band of LossDiff and of IRM whose
intersection keeps this share (:func:`pdray.selection.band.band_for_keep_rate`); giving
``low``/``high`` fixes the band instead."""


class SelectParams(StrictModel):
    """The selection settings shared by ``pdray select``, ``pdray report`` and ``pdray run``."""

    budget: float = Field(0.3, gt=0, le=1, description="λ = |D̃|/|D| (Eq. 10)")
    gamma: float = Field(0.95, gt=0, le=1, description="γ of the quantile scale q_k (Eq. 13)")
    fit_length: bool | None = Field(None, description="Eq. 18 with ρ̂_k fitted per aspect on the "
                                    "scored rows (pdray.selection.length); default: on for "
                                    "length_debias=learned reward models")
    seed: int = Field(0, description="seed of the random strategy")
    aspect_weights: dict[str, float] | None = Field(None, description="w_k of PD (default 1)")


class SelectConfig(SelectParams):
    """One selection run. Every field can come from ``--config`` YAML, a CLI option or an
    override such as ``options.low=0.25`` or ``aspect_weights.helpfulness=2``."""

    strategy: str = Field("pd", description="a name in pdray.selection.SELECTORS")
    rho: float | None = Field(None, ge=0, description="ρ of the length term, per token "
                              "(Eq. 18); default: the one the scores were made with (their "
                              "manifest), so every entry point selects the same pairs")
    length_debias: LengthDebias | None = Field(
        None, description="length mode of the reward models; default: the scores manifest's")
    options: dict[str, Any] = Field(default_factory=dict, description="strategy options")
    report: bool = Field(False, description="also write an HTML report (OUTPUT/report)")

    def length(self, scores_path) -> LengthTerm:
        """The length term to select with: the one the scores at ``scores_path`` record, with
        ``rho`` / ``length_debias`` replacing it when set here
        (:func:`pdray.selection.scores.length_term`)."""
        return length_term(scores_path, self.rho, self.length_debias)

    def stage_config(self, strategies: list[str] | None = None) -> SelectStageConfig:
        """The select stage's settings for this run: ``strategies`` (default: ``strategy``),
        this run's ``options`` for ``strategy``."""
        names = list(strategies) if strategies else [self.strategy]
        return SelectStageConfig(budget=self.budget, gamma=self.gamma,
                                 fit_length=self.fit_length, seed=self.seed,
                                 aspect_weights=self.aspect_weights, strategies=names,
                                 options={self.strategy: self.options} if self.options else {})


class SelectStageConfig(SelectParams):
    """The pipeline's ``select`` section: the parameters above over a list of strategies; ρ and
    the length mode come from the scores manifest. (The strategy names are checked against the
    registry when the pipeline config loads: :class:`pdray.pipeline.config.PipelineConfig`.)"""

    strategies: list[str] = Field(default_factory=lambda: list(COMPARED),
                                  description="the strategies to select with (pdray select "
                                  "--help lists them)")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="per-strategy options")


def default(name: str):
    """The default of :class:`SelectConfig`'s field ``name`` (e.g. ``default("gamma")``)."""
    return SelectConfig.model_fields[name].default
