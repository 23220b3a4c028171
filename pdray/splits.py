"""Seeded splits that depend on the rows' keys only, never on their order or count.

Each key gets a uniform number in [0, 1) from a keyed hash (BLAKE2b, 64 bits) of
``"{salt}:{key}"``; a row is held out when its number is below the fraction. The same key and
salt land on the same side in every run, on every machine, whatever else is in the table, so a
split can be recomputed instead of stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def hash_uniforms(keys: Iterable, salt: str) -> np.ndarray:
    """One uniform in [0, 1) per key: ``BLAKE2b-64("{salt}:{key}") / 2**64``."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{salt}:{k}".encode(), digest_size=8)
                                    .digest(), "big") / 2**64 for k in keys], dtype=np.float64)


def hash_holdout(keys: Iterable, fraction: float, salt: str) -> np.ndarray:
    """Boolean mask of the held-out keys (about ``fraction`` of them; equal keys agree)."""
    return hash_uniforms(keys, salt) < fraction
