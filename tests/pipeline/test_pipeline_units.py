import math

import numpy as np
import pyarrow as pa
import pytest

from pdray.config import load_config
from pdray.data.stage import split_holdout
from pdray.data.stats import conflict_flags as holistic_agreement
from pdray.errors import ConfigError
from pdray.length_modes import NO_LENGTH, LengthTerm
from pdray.pipeline.cache import StageCache, stage_key
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.presets import preset
from pdray.pipeline.summary import format_summary, selection_row
from pdray.schema import pairs_from_rows


def test_stage_key_depends_on_payload_only():
    assert stage_key("rm", {"a": 1, "b": 2}) == stage_key("rm", {"b": 2, "a": 1})
    assert stage_key("rm", {"a": 1}) != stage_key("rm", {"a": 2})
    assert stage_key("rm", {"a": 1}) != stage_key("score", {"a": 1})


def test_cache_marks_and_finds(tmp_path):
    c = StageCache(tmp_path)
    k = stage_key("data", {"n": 1})
    assert c.finished("data", k) is None
    with c.lock("data", k) as d:
        (d / "x.txt").write_text("hi")
    assert c.finished("data", k) is None  # no marker: an interrupted stage is redone
    rec = c.mark("data", k, {"rows": 3})
    assert c.finished("data", k) == rec and rec["rows"] == 3 and rec["key"] == k


def test_split_holdout_is_deterministic_and_complete():
    t = pa.table({"id": [f"p{i}" for i in range(1000)], "v": list(range(1000))})
    tr, te = split_holdout(t, 0.2, seed=3)
    tr2, te2 = split_holdout(t.take(np.random.default_rng(0).permutation(1000)), 0.2, seed=3)
    assert tr.num_rows + te.num_rows == 1000
    assert 150 < te.num_rows < 250
    assert sorted(te["id"].to_pylist()) == sorted(te2["id"].to_pylist())
    assert split_holdout(t, 0.0, 0)[1].num_rows == 0


def test_presets_validate_and_overrides_apply():
    cfg = load_config(PipelineConfig, None, ["select.budget=0.5", "run.tracking=none"],
                      base=preset("demo"))
    assert cfg.select.budget == 0.5 and cfg.data.source == "synthetic"
    load_config(PipelineConfig, None, [], base=preset("pku"))
    with pytest.raises(ConfigError, match=r"select\.budget=1\.5"):
        load_config(PipelineConfig, None, ["select.budget=1.5"], base=preset("demo"))
    with pytest.raises(ConfigError, match="unknown key 'data.nn_pairs'"):
        load_config(PipelineConfig, None, ["data.nn_pairs=3"], base=preset("demo"))
    with pytest.raises(ConfigError, match="must be section.key"):
        load_config(PipelineConfig, None, ["tune.search_space={budget: [0.1]}"])
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("nope")


def test_summary_metrics_hand_computed():
    rows = [
        # mean(c)=4 > mean(r)=2: agrees
        {"id": "a", "aspect": "h", "prompt": "p", "chosen": "c", "rejected": "r",
         "chosen_ratings": {"h": 5, "t": 3}, "rejected_ratings": {"h": 1, "t": 3}},
        # mean(c)=2 < mean(r)=3: conflict
        {"id": "b", "aspect": "h", "prompt": "p", "chosen": "c", "rejected": "r",
         "chosen_ratings": {"h": 3, "t": 1}, "rejected_ratings": {"h": 1, "t": 5}},
        # tie: neither
        {"id": "c", "aspect": "t", "prompt": "p", "chosen": "c", "rejected": "r",
         "chosen_ratings": {"h": 2, "t": 4}, "rejected_ratings": {"h": 4, "t": 2}},
    ]
    t = pairs_from_rows(rows)
    assert holistic_agreement(t).tolist() == [1.0, -1.0, 0.0]
    scores = pa.table({"id": ["a", "b", "c"], "chosen_len": [10, 4, 7], "rejected_len": [5, 8, 7]})
    row = selection_row("pd", t, scores)
    assert row["kept"] == 3
    assert row["cp"] == pytest.approx(1 / 3) and row["conflict"] == pytest.approx(1 / 3)
    assert row["ties"] == pytest.approx(1 / 3)
    assert row["mean_dlen"] == pytest.approx((5 - 4 + 0) / 3)
    text = format_summary([dict(row, dpo_acc=0.625), {"strategy": "x", "kept": 1, "cp": math.nan}])
    assert "0.333" in text and "0.625" in text and "—" in text and text.splitlines()[1].startswith("--")


def test_data_seed_seeds_the_loader(shared_data):
    """data.seed reaches loaders that take a seed: PKU's aspect assignment differs by seed."""
    from pdray.data.stage import load_pairs

    def aspects(seed):
        cfg = load_config(PipelineConfig, None, [f"data.seed={seed}"], base=preset("pku") | {
            "data": {**preset("pku")["data"],
                     "source": str(shared_data / "preference" / "pku_saferlhf_500.jsonl")}})
        t, _ = load_pairs(cfg.data)
        return t["aspect"].to_pylist()

    a0, a1 = aspects(0), aspects(1)
    assert len(a0) == len(a1) == 500 and a0 != a1
    assert aspects(0) == a0


def test_a_selector_declares_what_it_reads(monkeypatch, tmp_path):
    """A new selector's needs (its own reward models, a score set) are configuration: the
    pipeline turns on its rm switch and hands it its scores; nothing names the strategy."""
    from pdray.errors import PdrayError
    from pdray.scoring.stage import ScoreManifest
    from pdray.selection import selectors as S
    from pdray.selection.stage import selection_scores

    monkeypatch.setitem(S.SELECTORS, "my_a2", S.select_pd)
    monkeypatch.setitem(S.NEEDS, "my_a2", S.Needs(rm_switch="train_no_debias",
                                                   scores="scores_no_debias"))
    cfg = load_config(PipelineConfig, None, ["select.strategies=[pd,my_a2]"])
    assert cfg.rm.train_no_debias and not cfg.rm.train_holistic
    assert load_config(PipelineConfig, None, ["select.strategies=[holistic]"]).rm.train_holistic
    score = ScoreManifest(dir=str(tmp_path), scores=str(tmp_path / "scores"),
                          length={"scores": NO_LENGTH})
    with pytest.raises(PdrayError, match=r"my_a2 needs the scores_no_debias .*rm\.train_no_debias"):
        selection_scores("my_a2", {"score": score})


def test_loading_the_pipeline_and_its_config_imports_no_torch():
    """Reading a pipeline config (``pdray run``'s validation, Tune's driver) stays light: the
    stages import torch, transformers and trl only when they run."""
    from tests.imports import heavy_modules_loaded

    assert heavy_modules_loaded("import pdray.pipeline.stages, pdray.eval\n"
                                "from pdray.pipeline import PipelineConfig; PipelineConfig()") == []


def test_an_unknown_strategy_fails_when_the_config_loads(monkeypatch):
    """select.strategies is checked against the registry when the pipeline config loads (before
    any stage runs), in one line; a selector registered after import counts."""
    from pdray.selection import selectors as S

    with pytest.raises(ConfigError, match=r"select\.strategies: unknown strategy 'best' "
                                          r"\(known: .*mid.*pd"):
        load_config(PipelineConfig, None, ["select.strategies=[pd,best]"])
    monkeypatch.setitem(S.SELECTORS, "best", S.select_pd)
    monkeypatch.setitem(S.NEEDS, "best", S.Needs())
    assert load_config(PipelineConfig, None, ["select.strategies=[pd,best]"]).select.strategies \
        == ["pd", "best"]


def test_the_lossdiff_stage_needs_a_reference(tmp_path):
    from pdray.io import write_table
    from pdray.lossdiff.config import LossDiffConfig
    from pdray.lossdiff.stage import run

    data = pa.table({"id": ["a"], "prompt": ["p"], "chosen": ["c"], "rejected": ["r"],
                     "aspect": ["h"]})
    write_table(data, tmp_path / "train.parquet")
    manifest = type("M", (), {"train": str(tmp_path / "train.parquet")})()
    with pytest.raises(ConfigError, match="lossdiff.reference is not set"):
        run(LossDiffConfig(), {"data": manifest}, tmp_path / "out", print)


def test_each_score_set_is_read_once_across_strategies(monkeypatch, tmp_path):
    from pdray.scoring.stage import ScoreManifest
    from pdray.selection import stage as St

    reads = []
    monkeypatch.setattr(St, "read_scores", lambda p: reads.append(p) or pa.table({"id": ["a"]}))
    learned = LengthTerm.of("learned", 0.0)
    inputs = {"score": ScoreManifest(dir=str(tmp_path), scores=str(tmp_path / "s"),
                                     length={"scores": learned})}
    memo = {}
    for s in ("pd", "random", "mid", "high"):
        table, length = St.selection_scores(s, inputs, memo)
        assert table.num_rows == 1 and length == learned
    assert reads == [str(tmp_path / "s")]


@pytest.mark.parametrize(("env", "quiet"), [(None, True), ("1", False)])
def test_the_pipeline_keeps_rays_worker_output_off_the_terminal(monkeypatch, tmp_path, env, quiet):
    """``pdray run`` starts Ray with its worker output in Ray's log files, and says where;
    PDRAY_VERBOSE=1 forwards it to the terminal."""
    from pdray.pipeline import runner

    if env is None:
        monkeypatch.delenv("PDRAY_VERBOSE", raising=False)
    else:
        monkeypatch.setenv("PDRAY_VERBOSE", env)
    seen = {}

    class Started(Exception):
        pass

    def fake_init(*a, **k):
        seen.update(k)
        raise Started

    monkeypatch.setattr(runner, "init_ray", fake_init)
    cfg = load_config(PipelineConfig, None, [f"run.output_dir={tmp_path}", "run.tracking=none"])
    with pytest.raises(Started):
        runner.run_pipeline(cfg, echo=lambda *_: None)
    assert seen["quiet"] is quiet
