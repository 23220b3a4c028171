"""Length that cannot invert the ranking (issue #11): with a reward model that learned nothing,
the penalty mode's Eq. 18 term ranks pairs by −Δlen, while the learned (product-of-experts)
mode's gaps carry no length and PD stays uncorrelated with Δlen."""

import numpy as np
import pyarrow as pa
import pytest

from pdray.length_modes import LengthTerm
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
    pen = compute_pd(s, length=LengthTerm.of("penalty", 0.001), gamma=0.95).pd
    lea = compute_pd(s, length=LengthTerm.of("learned", 0.001), gamma=0.95).pd
    assert np.corrcoef(pen, dlen)[0, 1] > 0.8          # PD ≈ −Σ clip(−ρΔlen/q): a length rank
    assert abs(np.corrcoef(lea, dlen)[0, 1]) < 0.05    # no signal, no length either
    # the pd subset of the penalty mode keeps the pairs whose chosen response is shorter
    ids = select(s, "pd", length=LengthTerm.of("penalty", 0.001), budget=0.3).selected_ids
    idx = np.asarray([int(i[1:]) for i in ids])
    assert dlen[idx].mean() < dlen.mean() - 50
    ids = select(s, "pd", length=LengthTerm.of("learned", 0.001), budget=0.3).selected_ids
    idx = np.asarray([int(i[1:]) for i in ids])
    assert abs(dlen[idx].mean() - dlen.mean()) < 15


def test_learned_and_poe_ignore_rho_and_unknown_modes_fail():
    s = _scores(400)
    a = compute_pd(s, length=LengthTerm.of("learned", 0.5), gamma=0.9).pd
    b = compute_pd(s, length=LengthTerm.of("none", 0.0), gamma=0.9).pd
    assert np.array_equal(a, b)
    from pdray.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="length_debias"):
        select(s, "pd", length=LengthTerm.of("bogus", 0.0))


def test_fitted_rho_hand_computed_and_removes_the_length_component():
    from pdray.selection.length import fitted_length_slopes, remove_length

    # aspect a scores the rows of b and vice versa; Δlen = (10, −20, 30, 40)
    s = pa.table({"id": ["p0", "p1", "p2", "p3"], "aspect": ["a", "a", "b", "b"],
                  "chosen_len": [20, 10, 40, 50], "rejected_len": [10, 30, 10, 10],
                  "gap_a": [9.0, 9.0, 3.0, 5.0], "gap_b": [1.0, -1.0, 9.0, 9.0]})
    rho = fitted_length_slopes(s)
    # ρ̂_a from rows p2, p3: (3·30 + 5·40) / (30² + 40²) = 290 / 2500; ρ̂_b from p0, p1: 30 / 500
    assert rho == {"a": pytest.approx(290 / 2500), "b": pytest.approx(30 / 500)}
    adj, used = remove_length(s)
    assert used == rho
    ga = np.asarray(adj["gap_a"])
    assert ga[2] == pytest.approx(3 - 290 / 2500 * 30) and ga[0] == pytest.approx(9 - 290 / 2500 * 10)
    # no linear length component left where each gap enters PD
    dl = np.array([10.0, -20.0, 30.0, 40.0])
    assert np.dot(ga[2:], dl[2:]) == pytest.approx(0.0, abs=1e-9)
    assert np.dot(np.asarray(adj["gap_b"])[:2], dl[:2]) == pytest.approx(0.0, abs=1e-9)


def test_learned_mode_selection_is_length_neutral_by_default():
    """A gap that is pure length (a length-biased model) is calibrated away under learned
    reward models: the pd subset's Δlen stays at the dataset's."""
    s = _scores()
    dlen = np.asarray(s["chosen_len"], float) - np.asarray(s["rejected_len"], float)
    rng = np.random.default_rng(1)
    for c in ("gap_a", "gap_b"):
        s = s.set_column(s.schema.get_field_index(c), c,
                         pa.array(0.01 * dlen + rng.normal(0, 0.3, len(dlen))))
    fit = select(s, "pd", length=LengthTerm.of("learned", 0.0), budget=0.3)
    raw = select(s, "pd", length=LengthTerm.of("learned", 0.0), budget=0.3, fit_length=False)
    idx = lambda r: np.asarray([int(i[1:]) for i in r.selected_ids])
    assert abs(dlen[idx(fit)].mean() - dlen.mean()) < 15
    assert dlen[idx(raw)].mean() > dlen.mean() + 100
    assert fit.length.fits and not raw.length.fits   # the term used travels with the selection
    assert fit.manifest["length"]["fitted"]["a"] == pytest.approx(0.01, rel=0.1)


def test_a_bad_length_term_in_a_scores_manifest_is_one_line_naming_it(tmp_path):
    """The length term a scores manifest records is checked when read: a negative ρ or an
    unknown mode names the scores and the field, never a validation traceback."""
    import json

    from pdray.errors import DataError
    from pdray.selection.scores import length_term

    for term, words in (({"mode": "penalty", "rho": -1}, "rho -1"),
                        ({"mode": "penalty", "rho": "x"}, "rho 'x'"),
                        ({"mode": "bogus", "rho": 0.1}, "unknown length mode 'bogus'")):
        (tmp_path / "manifest.json").write_text(json.dumps({"length": term}))
        with pytest.raises(DataError, match=words) as e:
            length_term(tmp_path)
        assert str(tmp_path) in str(e.value) and "length" in str(e.value)
    (tmp_path / "manifest.json").write_text(json.dumps({"length": {"mode": "penalty",
                                                                   "rho": 0.01}}))
    assert length_term(tmp_path) == LengthTerm.of("penalty", 0.01)
    assert length_term(tmp_path, length_debias="learned").rho == 0.0   # ρ: penalty only
