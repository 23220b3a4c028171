"""Length that cannot invert the ranking (issue #11): with a reward model that learned nothing,
the penalty mode's Eq. 18 term ranks pairs by −Δlen, while the learned (product-of-experts)
mode's gaps carry no length and PD stays uncorrelated with Δlen."""

import numpy as np
import pyarrow as pa
import pytest

from pdray.selection import compute_pd, select


def _scores(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    own = np.where(rng.random(n) < 0.5, "a", "b")
    lc = rng.integers(5, 400, n)
    lr = rng.integers(5, 400, n)
    # an untrained model: gaps are small noise, independent of length
    return pa.table({"id": [f"z{i:05d}" for i in range(n)], "aspect": own,
                     "chosen_len": lc, "rejected_len": lr,
                     "gap_a": rng.normal(0, 0.003, n), "gap_b": rng.normal(0, 0.003, n)})


def test_untrained_model_penalty_ranks_by_length_learned_does_not():
    s = _scores()
    dlen = np.asarray(s["chosen_len"], float) - np.asarray(s["rejected_len"], float)
    pen = compute_pd(s, gamma=0.95, rho=0.001, length_debias="penalty").pd
    lea = compute_pd(s, gamma=0.95, rho=0.001, length_debias="learned").pd
    assert np.corrcoef(pen, dlen)[0, 1] > 0.8          # PD ≈ −Σ clip(−ρΔlen/q): a length rank
    assert abs(np.corrcoef(lea, dlen)[0, 1]) < 0.05    # no signal, no length either
    # the pd subset of the penalty mode keeps the pairs whose chosen response is shorter
    ids = select(s, "pd", budget=0.3, rho=0.001, length_debias="penalty").selected_ids
    idx = np.asarray([int(i[1:]) for i in ids])
    assert dlen[idx].mean() < dlen.mean() - 50
    ids = select(s, "pd", budget=0.3, rho=0.001, length_debias="learned").selected_ids
    idx = np.asarray([int(i[1:]) for i in ids])
    assert abs(dlen[idx].mean() - dlen.mean()) < 15


def test_learned_and_poe_ignore_rho_and_unknown_modes_fail():
    s = _scores(400)
    a = compute_pd(s, gamma=0.9, rho=0.5, length_debias="learned").pd
    b = compute_pd(s, gamma=0.9, rho=0.0, length_debias="none").pd
    assert np.array_equal(a, b)
    from pdray.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="length_debias"):
        select(s, "pd", length_debias="bogus")
