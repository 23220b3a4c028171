"""Compute PD for a scores table (Eq. 13–15, 18) and PD-like scores from ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.errors import DataError, PdrayError
from pdray.length_modes import LengthTerm
from pdray.schema import ratings_dict
from pdray.selection import math as M
from pdray.selection import parallel as P
from pdray.selection.length import remove_length
from pdray.selection.scores import gap, validate_scores


@dataclass
class PDResult:
    pd: np.ndarray                      # PD(z) per row, aligned with the scores table
    q: dict[str, float]                 # q_k per aspect (Eq. 13)
    normalized: Mapping[str, np.ndarray]  # Δr̃_k per aspect (Eq. 14; compute_pd: on first use)
    aspects: list[str] = field(default_factory=list)


def pd_from_gaps(gaps: dict, own: np.ndarray, *, gamma: float,
                 weights: dict | None = None, names: dict | None = None) -> PDResult:
    """PD from already length-adjusted gaps per aspect (Eq. 13 → 14 → 15).

    ``gaps`` and ``own`` use the same aspect keys (names, or integer codes with ``names``
    mapping codes back to aspect names for the result).
    """
    q, norm = {}, {}
    for k, g in gaps.items():
        label = names[k] if names else k
        try:
            q[k] = M.quantile_scale(g, own, k, gamma)
        except PdrayError as e:
            raise PdrayError(str(e).replace(f"aspect {k!r}", f"aspect {label!r}")
                             .replace(f"D_{k}", f"D_{label}").replace(f"Δr̂_{k}", f"Δr̂_{label}")) from None
        norm[k] = M.normalize_gap(g, q[k])
    pd = M.preference_divergence(norm, own, weights)
    if names:
        q = {names[k]: v for k, v in q.items()}
        norm = {names[k]: v for k, v in norm.items()}
    return PDResult(pd, q, norm, sorted(q))


def compute_pd(scores: pa.Table, *, gamma: float, length: LengthTerm,
               aspect_weights: dict | None = None, file: str | None = None) -> PDResult:
    """PD of every row of a scores table under the length term ``length`` (Eq. 13–15, 18).

    Only aspects that own pairs take part (a ``gap_holistic`` column rides along unused).
    With ``length.fitted`` the gaps are first Δr̂_k − ρ̂_k·Δlen with the selection's fitted
    slopes (:func:`pdray.selection.length.remove_length`); then Eq. 18 with ``length.mode`` and
    ``length.rho``.

    The numbers are those of ``length_adjusted_gap`` → :func:`pd_from_gaps`, bit for bit,
    computed by the fused kernel :func:`pdray.selection.math.pd_columns` straight from the
    Arrow buffers. The contract check (:func:`validate_scores`) runs first and reuses the
    aspect codes, so a bad table fails with its contract error before any arithmetic.
    """
    if length.fits:
        scores = remove_length(scores, length.fitted)[0]
    rho, length_debias = length.rho, length.mode
    names = None
    if "aspect" in scores.column_names and not scores["aspect"].null_count:
        own_codes, names = aspect_codes(scores)
    aspects = validate_scores(scores, file, own=names)
    if aspect_weights:
        unknown = set(aspect_weights) - set(aspects)
        if unknown:
            raise DataError(f"aspect_weights name unknown aspects {sorted(unknown)} "
                            f"(aspects: {aspects})", file=file, field="aspect")
    code = {a: names.index(a) for a in aspects}
    penalty = length_debias == "penalty"
    cols = [_numbers(scores[f"gap_{k}"]) for k in aspects]
    cl = _numbers(scores["chosen_len"]) if penalty else None
    rl = _numbers(scores["rejected_len"]) if penalty else None
    w = [float(aspect_weights.get(k, 1.0)) for k in aspects] if aspect_weights else None
    pd, qs = M.pd_columns(cols, own_codes, [code[k] for k in aspects], gamma, labels=aspects,
                          chosen_len=cl, rejected_len=rl, rho=rho, weights=w)
    q = dict(zip(aspects, qs))
    # ``scores`` already has any fit removed: the normalised gaps apply Eq. 18's own term only
    return PDResult(pd, q, _normalized(scores, q, length.with_fit(None)), list(aspects))


def recorded_pd(scores: pa.Table, pd: np.ndarray, q: dict[str, float], length: LengthTerm
                ) -> PDResult:
    """The PD a selection recorded (its ``pd`` per row of ``scores``, its q_k and length term),
    as a :class:`PDResult` whose Δr̃_k (Eq. 14) are computed from those values on first use:
    what the report shows, with no PD of its own."""
    return PDResult(np.asarray(pd, dtype=np.float64), dict(q), _normalized(scores, q, length),
                    sorted(q))


def _normalized(scores: pa.Table, q: dict[str, float], length: LengthTerm) -> _Lazy:
    """Δr̃_k = clip(Δr̂_k / q_k) per aspect, Δr̂_k of Eq. 18 after any fitted ρ̂_k (each
    computed on first use: the report needs a few rows of them, never a whole refit)."""
    def one(k):
        dlen = (scores["chosen_len"].to_numpy(zero_copy_only=False).astype(np.float64)
                - scores["rejected_len"].to_numpy(zero_copy_only=False).astype(np.float64))
        g = gap(scores, k)
        if length.fits and k in length.fitted:   # as remove_length: Δr̂_k − ρ̂_k·Δlen
            g = g - length.fitted[k] * dlen
        return M.normalize_gap(M.length_adjusted_gap(g, dlen, length.rho, length.mode), q[k])

    return _Lazy(list(q), one)


class _Lazy(Mapping):
    """Δr̃_k per aspect, each computed on first access (most callers only need PD)."""

    def __init__(self, keys, fn):
        self._keys, self._fn, self._done = list(keys), fn, {}

    def __getitem__(self, k):
        if k not in self._done:
            if k not in self._keys:
                raise KeyError(k)
            self._done[k] = self._fn(k)
        return self._done[k]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def __repr__(self):
        return f"<normalized gaps for {self._keys}>"


def _numbers(col) -> np.ndarray:
    """A numeric column as numpy, zero-copy when it is one chunk without nulls."""
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col.to_numpy(zero_copy_only=False)


def aspect_codes(scores: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Integer codes of the rows' own aspects (fast comparisons at scale) and their names."""
    col = scores["aspect"]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    n = len(col)
    T = P.n_threads(n)
    if T == 1:
        enc = pc.dictionary_encode(col)
        return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()
    # slices encoded on T threads, then their dictionaries unified in order of first appearance
    encs = P.run_parallel(lambda r: pc.dictionary_encode(col.slice(r[0], r[1] - r[0])),
                          P.split_rows(n, T))
    names: list = []
    for e in encs:
        names += [v for v in e.dictionary.to_pylist() if v not in names]
    out = np.empty(n, dtype=np.int32)
    at = 0
    for e in encs:
        lut = np.asarray([names.index(v) for v in e.dictionary.to_pylist()] or [0], np.int32)
        out[at:at + len(e)] = lut[e.indices.to_numpy(zero_copy_only=False)]
        at += len(e)
    return out, names


def true_gaps(pairs: pa.Table, ids: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Ground-truth rating gaps chosen − rejected per aspect for the rows ``ids`` of ``pairs``."""
    if "chosen_ratings" not in pairs.column_names:
        raise DataError("true_pd needs ground-truth ratings (chosen_ratings/rejected_ratings)",
                        field="chosen_ratings")
    index = {v: i for i, v in enumerate(pairs["id"].to_pylist())}
    cr = pairs["chosen_ratings"].to_pylist()
    rr = pairs["rejected_ratings"].to_pylist()
    own = pairs["aspect"].to_pylist()
    rows = []
    for i in ids:
        j = index.get(i)
        if j is None:
            raise DataError(f"id {i!r} of the scores is not in the pairs", field="id")
        rows.append(j)
    aspects = sorted({a for j in rows for a in (ratings_dict(cr[j]) or {})})
    gaps = {a: np.zeros(len(rows)) for a in aspects}
    for n, j in enumerate(rows):
        c, r = ratings_dict(cr[j]) or {}, ratings_dict(rr[j]) or {}
        for a in aspects:
            if a not in c or a not in r:
                raise DataError(f"no ground-truth rating for aspect {a!r}", row=j,
                                field="chosen_ratings")
            gaps[a][n] = c[a] - r[a]
    return gaps, np.asarray([own[j] for j in rows], dtype=object)
