"""Synthetic aggregated fine-grained preference data with known ground truth.

Every response has a latent quality per aspect; the text carries it, so a small reward model can
learn each aspect: aspect ``a``'s marker word appears more often the better the response is under
``a``, and filler words make a response longer the better it is overall (``length_effect``), the
length bias a reward model can latch onto. Each pair is labelled by one aspect; the share of
pairs whose label disagrees with the holistic (mean-of-aspects) preference — the conflict level
of METHOD.md — is hit exactly by construction. Streaming and vectorised: a million pairs take a
few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pdray.io import atomic_output
from pdray.schema import RATINGS_TYPE, aspect_problem, empty_pairs

log = logging.getLogger(__name__)

DEFAULT_ASPECTS = ["helpfulness", "honesty", "instruction_following", "truthfulness"]
MARKERS = {"helpfulness": "helpful", "honesty": "honest", "instruction_following": "precise",
           "truthfulness": "factual", "harmlessness": "safe", "correctness": "correct",
           "coherence": "coherent", "complexity": "deep", "verbosity": "verbose"}
FILLER = np.array(["the", "a", "of", "to", "and", "in", "is", "it", "that", "for", "on", "with", "as", "this", "be", "at", "by", "from", "or", "an", "are", "answer", "step", "first", "then", "next", "also", "because", "so", "we", "can", "you", "will", "note", "here"])
MAX_FILLER, MAX_MARKERS = 40, 6
TOPICS = np.array(["bread", "python", "paris", "water", "math", "history", "music", "travel", "health", "code", "garden", "stars", "money", "sleep", "chess", "rain", "coffee", "maps", "books", "energy"])


def _marker(aspect: str) -> str:
    return MARKERS.get(aspect, aspect.split("_")[0][:10])


def _texts(rng, quality: np.ndarray, aspects: list[str], length_effect: float) -> pa.Array:
    """One response text per row of ``quality`` (rows × aspects), built without a Python loop.

    Aspect j's marker word appears ``clip(round(2 + 1.5 q_j), 0, 6)`` times; filler words
    bring the response to ``10 + 2k + 4 · length_effect · mean(q) + N(0, 1.5²)`` words (at
    most), so with ``length_effect=0`` the word count carries (almost) no quality. The
    words of a response are shuffled (argsort of random keys, padding kept last) and joined by
    Arrow's string kernels.
    """
    n, k = quality.shape
    counts = np.clip(np.rint(2 + 1.5 * quality), 0, MAX_MARKERS).astype(np.int64)
    overall = quality.mean(axis=1)
    total = np.rint(10 + 2 * k + 4 * length_effect * overall + rng.normal(0, 1.5, n))
    n_fill = np.clip(total - counts.sum(axis=1), 0, MAX_FILLER).astype(np.int64)
    width = MAX_FILLER + MAX_MARKERS * k
    # segment boundaries per row: [filler | marker 0 | marker 1 | ... | padding]
    bounds = np.cumsum(np.concatenate([n_fill[:, None], counts], axis=1), axis=1)  # n × (k+1)
    col = np.arange(width, dtype=np.int16)[None, :]
    seg = np.zeros((n, width), dtype=np.int16)
    for j in range(k + 1):
        seg += col >= bounds[:, j:j + 1]  # 0 filler, 1..k marker j-1, k+1 padding
    tokens = np.where(seg == 0, rng.integers(0, len(FILLER), size=(n, width), dtype=np.int16),
                      len(FILLER) - 1 + seg)
    pad = seg > k
    keys = rng.random((n, width), dtype=np.float32)
    keys[pad] = 2.0
    order = np.argsort(keys, axis=1) + (np.arange(n) * width)[:, None]
    tokens = tokens.ravel()[order.ravel()].reshape(n, width)
    tokens[np.sort(pad, axis=1)] = -1  # padding sits last after the shuffle
    lengths = bounds[:, -1]
    flat = tokens[tokens >= 0]  # row-major: each row's words in shuffled order
    vocab = pa.array(FILLER.tolist() + [_marker(a) for a in aspects], pa.string())
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    words = pa.ListArray.from_arrays(pa.array(offsets), vocab.take(pa.array(flat)))
    return pc.binary_join_element_wise(pc.binary_join(words, " "), ".", "")


def _ids(prefix: str, seed: int, start: int, m: int) -> pa.Array:
    num = pc.utf8_lpad(pc.cast(pa.array(np.arange(start, start + m)), pa.string()), 9, "0")
    return pc.binary_join_element_wise(f"{prefix}-{seed}-", num, "")


def _ratings_map(aspects: list[str], values: np.ndarray) -> pa.Array:
    m, k = values.shape
    offsets = pa.array(np.arange(0, m * k + 1, k, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, pa.array(aspects * m, pa.string()),
                                   pa.array(values.ravel(), pa.float64()), type=RATINGS_TYPE)


def generate_synthetic(n_pairs: int, aspects: list[str] | None = None, *, conflict_rate: float = 0.2,
                       length_effect: float = 0.5, seed: int = 0, batch_size: int = 100_000,
                       id_prefix: str = "syn") -> Iterator[pa.Table]:
    """Yield canonical pair tables of at most ``batch_size`` rows, ``n_pairs`` in all.

    ``aspects`` defaults to UltraFeedback's four (:data:`DEFAULT_ASPECTS`). Latent qualities
    q ~ N(0, 1) per response and aspect, with a shared component so aspects mostly agree. Each
    pair gets an aspect k (uniform); chosen is the response with the higher q_k. Exactly
    round(conflict_rate · batch) pairs of each batch disagree with the mean-of-aspects
    preference (Def. 3.3 of the paper; ``chosen_overall`` is that mean). Ratings (ground
    truth) are 3 + q clipped to [1, 5].
    """
    aspects = list(aspects or DEFAULT_ASPECTS)
    if len(aspects) < 2:
        raise ValueError(f"synthetic data needs at least two aspects, got {aspects}")
    if len(set(aspects)) != len(aspects):
        raise ValueError(f"aspects must be distinct, got {aspects}")
    unsafe = next((p for a in aspects if (p := aspect_problem(a))), None)
    if unsafe:
        raise ValueError(unsafe)
    if not 0 <= conflict_rate <= 1:
        raise ValueError(f"conflict_rate must be in [0, 1], got {conflict_rate}")
    if n_pairs < 0 or batch_size < 1:
        raise ValueError("n_pairs must be >= 0 and batch_size >= 1")
    rng = np.random.default_rng(seed)
    k = len(aspects)
    done = 0
    while done < n_pairs:
        m = min(batch_size, n_pairs - done)
        want_conflict = round(conflict_rate * m)
        # oversample candidates, then keep exactly the number of conflicting pairs wanted
        cand = 4 * m + 64
        shared = rng.normal(size=(cand, 2, 1))
        q = 0.6 * shared + 0.8 * rng.normal(size=(cand, 2, k))
        asp = rng.integers(0, k, size=cand)
        rows = np.arange(cand)
        swap = q[rows, 0, asp] < q[rows, 1, asp]  # make response 0 the chosen one under k
        q[swap] = q[swap][:, ::-1, :]
        ratings = np.clip(3 + q, 1, 5).round(3)
        hol = ratings[:, 0, :].mean(axis=1) - ratings[:, 1, :].mean(axis=1)
        own = ratings[rows, 0, asp] - ratings[rows, 1, asp]
        ci = np.flatnonzero((hol < 0) & (own > 0))
        ai = np.flatnonzero((hol > 0) & (own > 0))
        if len(ci) < want_conflict or len(ai) < m - want_conflict:
            raise ValueError(f"cannot reach conflict rate {conflict_rate} with {k} aspects "
                             "(too few candidate pairs on one side)")
        take = np.sort(np.concatenate([ci[:want_conflict], ai[: m - want_conflict]]))
        q, ratings, asp = q[take], ratings[take], asp[take]
        topics = pa.array(TOPICS.tolist(), pa.string())
        ta, tb = (topics.take(pa.array(rng.integers(0, len(TOPICS), size=m))) for _ in range(2))
        num = pc.cast(pa.array(np.arange(done, done + m)), pa.string())
        prompts = pc.binary_join_element_wise("Question ", num, ": tell me about ", ta, " and ",
                                              tb, ".", "")
        yield pa.table({
            "id": _ids(id_prefix, seed, done, m),
            "aspect": pa.array(aspects, pa.string()).take(pa.array(asp)),
            "prompt": prompts,
            "chosen": _texts(rng, q[:, 0, :], aspects, length_effect),
            "rejected": _texts(rng, q[:, 1, :], aspects, length_effect),
            "chosen_ratings": _ratings_map(aspects, ratings[:, 0, :]),
            "rejected_ratings": _ratings_map(aspects, ratings[:, 1, :]),
            "chosen_overall": pa.array(ratings[:, 0, :].mean(axis=1)),
            "rejected_overall": pa.array(ratings[:, 1, :].mean(axis=1)),
            "source": pa.array(np.full(m, "synthetic", dtype=object), pa.string()),
        })
        done += m


def synthetic_pairs(n_pairs: int, aspects: list[str] | None = None, **kwargs) -> pa.Table:
    """All of :func:`generate_synthetic` as one table."""
    parts = list(generate_synthetic(n_pairs, aspects, **kwargs))
    return pa.concat_tables(parts) if parts else empty_pairs()


def write_synthetic(path: str, n_pairs: int, aspects: list[str] | None = None, **kwargs) -> str:
    """Stream synthetic pairs to one Parquet file (atomically) without holding them in memory."""
    t0, done = time.perf_counter(), 0
    with atomic_output(path) as (fs, tmp):
        writer = None
        try:
            for batch in generate_synthetic(n_pairs, aspects, **kwargs):
                done += batch.num_rows
                log.info("synthetic: %d/%d pairs (%.0f pairs/s)", done, n_pairs,
                         done / max(time.perf_counter() - t0, 1e-9))
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema, filesystem=fs)
                writer.write_table(batch)
            if writer is None:
                pq.write_table(empty_pairs(), tmp, filesystem=fs)
        finally:
            if writer is not None:
                writer.close()
    return path


__all__ = ["DEFAULT_ASPECTS", "generate_synthetic", "synthetic_pairs", "write_synthetic"]
