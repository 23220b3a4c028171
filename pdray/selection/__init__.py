"""PD selection (paper Eq. 10, 13–15, 18) and every baseline."""

from pdray.selection.api import SelectionResult, attach_pairs, select, write_selection
from pdray.selection.config import SelectConfig
from pdray.selection.pd import PDResult, compute_pd, pd_from_gaps
from pdray.selection.selectors import DESCRIPTIONS, SELECTORS, register_selector

__all__ = [
    "DESCRIPTIONS",
    "SELECTORS",
    "PDResult",
    "SelectConfig",
    "SelectionResult",
    "attach_pairs",
    "compute_pd",
    "pd_from_gaps",
    "register_selector",
    "select",
    "write_selection",
]

