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

LengthDebias = Literal["learned", "penalty", "poe", "none"]
LENGTH_MODES: tuple[str, ...] = get_args(LengthDebias)
