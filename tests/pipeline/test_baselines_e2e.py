"""The A1 / A2 baselines as configuration, end to end: asking for ``holistic`` and
``no_debias`` trains their reward models in the rm stage, the score stage scores with them, and
each selector reads the scores its ``Needs`` names (issue 14)."""

import pytest

from pdray.data import synthetic_pairs
from pdray.io import read_table, write_table
from pdray.length_modes import LengthTerm
from pdray.pipeline import run_pipeline
from pdray.selection import select
from pdray.selection.scores import length_term, read_scores
from tests.pipeline.helpers import tiny_pipeline


@pytest.mark.timeout(900)
def test_holistic_and_no_debias_select_on_their_own_models(ray_local, tmp_path):
    src = tmp_path / "pairs.jsonl"
    write_table(synthetic_pairs(48, aspects=["helpfulness", "honesty"], seed=4), src)
    cfg = tiny_pipeline(src, tmp_path / "run", "select.strategies=[pd,holistic,no_debias]")
    assert cfg.rm.train_holistic and cfg.rm.train_no_debias   # switched on by the strategies
    res = run_pipeline(cfg, echo=lambda *_: None)
    score, sel = res.manifests["score"], res.manifests["select"]
    assert score.scores_no_debias and score.scores_no_debias != score.scores
    assert "gap_holistic" in read_scores(score.scores).column_names
    assert set(sel.counts) == {"pd", "holistic", "no_debias"}
    # no_debias: PD on the no-mitigation models' scores (their own ρ and length mode)
    nd = read_scores(score.scores_no_debias)
    term = length_term(score.scores_no_debias)
    assert term == LengthTerm.of("none", 0.0) == score.length["scores_no_debias"]
    want = select(nd, "no_debias", length=term, budget=cfg.select.budget,
                  gamma=cfg.select.gamma, seed=cfg.select.seed).selected_ids
    got = read_table(f"{sel.selections['no_debias']}/selected.parquet")["id"].to_pylist()
    assert sorted(got) == sorted(want)
