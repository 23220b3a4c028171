"""Confidence intervals of measured accuracies (pure functions, numpy only)."""

from __future__ import annotations

import numpy as np


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of an accuracy ``p`` measured on ``n`` pairs."""
    if n <= 0 or not np.isfinite(p):
        return float("nan"), float("nan")
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, mid - half)), float(min(1.0, mid + half))
