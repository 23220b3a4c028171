"""Eq. 19 win score, AW, AL, AlpacaEval WR and the length-controlled WR on hand-made numbers."""

import math

import numpy as np
import pytest

from pdray.eval.metrics import (
    average_length,
    average_win_score,
    fit_length_glm,
    length_controlled_win_rate,
    outcome_counts,
    set_summary,
    win_rate,
    win_score,
)


def test_win_score_eq19_hand_computed():
    # WizardLM-sized set: 120 wins, 60 losses, 38 ties -> (120-60)/218 + 1
    assert win_score(120, 60, 218) == pytest.approx(1 + 60 / 218)
    assert win_score(0, 80, 80) == 0.0      # always loses
    assert win_score(80, 0, 80) == 2.0      # always wins
    assert win_score(10, 10, 30) == 1.0     # on par
    assert math.isnan(win_score(0, 0, 0))
    with pytest.raises(ValueError):
        win_score(5, 6, 10)


def test_aw_is_mean_over_sets():
    ws = {"wizardlm": 1.2, "selfinstruct": 1.1, "vicuna": 0.9, "koala": 1.0, "lima": 1.3}
    assert average_win_score(ws) == pytest.approx(5.5 / 5)
    assert average_win_score([1.0, float("nan"), 1.5]) == pytest.approx(1.25)


def test_set_summary_counts_failures_separately():
    outs = ["win", "win", "loss", "tie", "failed"]
    s = set_summary(outs, ["a b c", "a", "a b", "a b c d", "x"], ["a", "a", "a", "a", "a"])
    assert (s["n"], s["judged"], s["win"], s["loss"], s["tie"], s["failed"]) == (5, 4, 2, 1, 1, 1)
    # Eq. 19 over |D_t| = all 5 prompts: the failed judgment counts as a tie (this test used to
    # pin (2 − 1)/4 + 1, the judged items only, which a failure could inflate)
    assert s["win_score"] == pytest.approx((2 - 1) / 5 + 1)
    assert s["AL"] == pytest.approx(11 / 5) and s["AL_baseline"] == 1.0
    assert average_length(["ab cd", "abc"], "chars") == 4.0
    with pytest.raises(ValueError):
        outcome_counts(["won"])


def test_win_rate():
    assert win_rate([1, 0, 0.5, 1]) == pytest.approx(62.5)


def test_lc_below_raw_when_longer_answers_win():
    rng = np.random.default_rng(0)
    n = 400
    len_ref = rng.integers(80, 120, n).astype(float)
    delta = rng.normal(60, 60, n)              # the model is usually longer
    len_model = len_ref + delta
    # the judge only likes length: P(win) = σ(2·tanh(Δ/sd)); equal-length quality is 50/50
    p = 1 / (1 + np.exp(-2 * np.tanh(delta / delta.std())))
    prefs = (rng.random(n) < p).astype(float)
    raw = win_rate(prefs)
    lc = length_controlled_win_rate(prefs, len_model, len_ref)
    _, phi, _ = fit_length_glm(prefs, len_model, len_ref)
    assert raw > 65 and phi > 1.0
    assert lc < raw - 10
    assert abs(lc - 50) < 12   # the length-neutral preference is about even


def test_lc_equals_raw_without_length_signal():
    prefs = [1, 0, 1, 1, 0, 0.5, 1, 0]
    same = [100] * 8
    # no length difference: tanh(0)=0, the GLM is intercept-only -> LC = WR (up to the L2 term)
    assert length_controlled_win_rate(prefs, same, same, l2=0) == pytest.approx(win_rate(prefs))
