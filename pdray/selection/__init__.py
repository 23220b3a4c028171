"""PD selection (paper Eq. 10, 13–15, 18), every baseline, and the distributed path."""

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
    "select_distributed",
    "write_selection",
]


def select_distributed(*args, **kwargs):
    """PD top-λ over a ``ray.data.Dataset`` (exact q_k while they fit, KLL sketches beyond);
    see :func:`pdray.selection.distributed.select_distributed`. Imports Ray only when called."""
    from pdray.selection.distributed import select_distributed as _sd

    return _sd(*args, **kwargs)
