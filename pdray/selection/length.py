"""Selection-time length calibration: Eq. 18 with ρ fitted per aspect instead of fixed.

Eq. 18 subtracts ρ·Δlen from every gap with one ρ per token that assumes the gaps of a trained
model; a model's real length slope can be far from it (a weak model's gaps are ~100× smaller than
ρ·Δlen, a length-biased model's slope far larger). Here ρ̂_k is the least-squares slope through
the origin of Δr̂_k(z) on Δlen(z) over the rows that aspect k scores for PD (z ∉ D_k):

    ρ̂_k = Σ Δr̂_k(z)·Δlen(z) / Σ Δlen(z)²,   Δr̂_k(z) ← Δr̂_k(z) − ρ̂_k·Δlen(z)   (Eq. 18)

so each adjusted gap has no linear length component on those rows, and PD (Eq. 15), a sum of
them, cannot rank pairs by length. It is the default with ``length_debias=learned`` reward
models (``select.fit_length``), whose product-of-experts training removes length only as far
as the backbone lets it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pdray.selection.scores import GAP_PREFIX, columns, gap, gap_aspects


def fitted_length_slopes(scores: pa.Table) -> dict[str, float]:
    """ρ̂_k per gap column (tokens⁻¹), fitted on the rows whose own aspect is not k."""
    _, own, dlen = columns(scores)
    out = {}
    for k in gap_aspects(scores):
        m = own != k
        den = float(np.dot(dlen[m], dlen[m]))
        out[k] = float(np.dot(gap(scores, k)[m], dlen[m]) / den) if den > 0 else 0.0
    return out


def remove_length(scores: pa.Table, slopes: dict[str, float] | None = None
                  ) -> tuple[pa.Table, dict[str, float]]:
    """``scores`` with every ``gap_<k>`` replaced by Δr̂_k − ρ̂_k·Δlen, and the ρ̂_k used."""
    slopes = fitted_length_slopes(scores) if slopes is None else slopes
    _, _, dlen = columns(scores)
    for k, b in slopes.items():
        col = GAP_PREFIX + k
        g = gap(scores, k) - b * dlen
        scores = scores.set_column(scores.schema.get_field_index(col), col, pa.array(g))
    return scores, slopes
