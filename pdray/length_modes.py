"""The one declaration of the reward models' length modes (METHOD.md, "Length debiasing",
Eq. 18): the type every config field uses and the tuple every check reads.

- ``learned``: PoE with a learned ρ̂_k per aspect during training, scored as Δr alone (the
  selection may fit ρ̂_k on the scores again: ``select.fit_length``);
- ``penalty``: Δr − ρ·Δlen with a fixed ρ (the paper's choice; ρ = 0.001 is pdray's default);
- ``poe``: product of experts with a fixed length expert, scored as Δr alone;
- ``none``: no length term.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from pdray.errors import ConfigError

LengthDebias = Literal["learned", "penalty", "poe", "none"]
LENGTH_MODES: tuple[str, ...] = get_args(LengthDebias)


class LengthTerm(BaseModel):
    """The length term of Eq. 18 as one typed value, from the reward models to the report.

    ``mode`` and ``rho`` (ρ per token; applied by ``penalty`` only, so it is 0 in every other
    mode) are the reward-model set's: the score stage writes them into its manifest
    (``ScoreManifest.length``). ``fitted`` holds the ρ̂_k per aspect when the selection fits
    them on the scores (``select.fit_length``, :mod:`pdray.selection.length`); the selection
    records the term it used (``SelectManifest.length``) and the report computes nothing again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: LengthDebias
    rho: float = Field(ge=0)
    fitted: dict[str, float] | None = None

    @classmethod
    def of(cls, mode: str, rho: float) -> LengthTerm:
        """The term of reward models trained with ``mode`` and ``rho`` (ρ kept for ``penalty``
        only); an unknown mode or a ρ that is not a number ≥ 0 is one readable line."""
        if mode not in LENGTH_MODES:
            raise ConfigError(f"length_debias {mode!r} is not a length mode (known: "
                              f"{', '.join(LENGTH_MODES)})")
        try:
            value = float(rho)
        except (TypeError, ValueError):
            value = float("nan")
        if not value >= 0:
            raise ConfigError(f"rho {rho!r} is not a number ≥ 0 (ρ per token of Eq. 18)")
        return cls(mode=mode, rho=value if mode == "penalty" else 0.0)

    @property
    def fits(self) -> bool:
        """Whether PD is computed on Δr̂_k − ρ̂_k·Δlen (the fitted slopes) rather than Eq. 18's ρ."""
        return self.fitted is not None

    def with_fit(self, slopes: dict[str, float] | None) -> LengthTerm:
        """This term with the ρ̂_k the selection fitted (``None``: no fit)."""
        return self.model_copy(update={"fitted": dict(slopes) if slopes is not None else None})


NO_LENGTH = LengthTerm(mode="none", rho=0.0)
"""No length term: the gaps as scored (scores without a manifest that names one)."""
