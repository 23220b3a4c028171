"""LossDiff-IRM is a pipeline stage: ``run.stages: [..., lossdiff, ...]`` and
``select.strategies: [lossdiff_irm, pd_irm]`` work under ``pdray run`` (issue #14), selecting
exactly what the stand-alone selectors give on the same scores."""

import numpy as np
import pytest

from pdray.config import load_config
from pdray.errors import ConfigError
from pdray.io import read_table
from pdray.lossdiff import lossdiff_irm_selection, read_logprob_scores
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.pipeline.presets import preset
from pdray.selection.band import percentile_band

SMALL = ["data.n_pairs=120", "data.test_fraction=0.1", "rm.max_steps=2", "run.tracking=none",
         "select.strategies=[pd,lossdiff_irm,pd_irm]", "select.budget=0.5",
         "lossdiff.val_size=12", "lossdiff.max_length=128", "lossdiff.shard_rows=64",
         "lossdiff.warmup.max_steps=2", "lossdiff.warmup.learning_rate=0.005",
         "lossdiff.warmup.batch_size=8", "lossdiff.warmup.per_device_batch_size=8",
         "lossdiff.warmup.max_length=128"]


def test_lossdiff_strategies_need_the_stage():
    with pytest.raises(ConfigError, match=r"need the LossDiff scores: add lossdiff to run.stages"):
        load_config(PipelineConfig, None, ["select.strategies=[pd,lossdiff_irm]"],
                    base=preset("demo"))


@pytest.mark.timeout(900)
def test_lossdiff_stage_under_run(tmp_path, ray_local):
    out = tmp_path / "run"
    cfg = load_config(PipelineConfig, None, SMALL + [
        "run.stages=[data,rm,score,lossdiff,select]", f"run.output_dir={out}"],
        base=preset("demo"))
    lines: list[str] = []
    res = run_pipeline(cfg, echo=lines.append)
    st = res.stages
    n_train = st["data"]["train_rows"]
    ld = read_logprob_scores(st["lossdiff"]["scores"])
    val = set(read_table(st["lossdiff"]["validation"])["id"].to_pylist())
    train_ids = set(read_table(st["data"]["train"])["id"].to_pylist())
    # the 12 validation pairs trained θ_val: never scored, so never selected
    assert len(val) == 12 and val <= train_ids
    assert sorted(ld["id"].to_pylist()) == sorted(train_ids - val)
    assert np.isfinite(ld["irm"].to_numpy()).all() and np.isfinite(ld["lossdiff"].to_numpy()).all()

    # lossdiff_irm under `pdray run` = the stand-alone band selector on the same scores, with
    # the default band (the one keeping 57 % of the scored pairs)
    sel = read_table(f"{st['select']['selections']['lossdiff_irm']}/selected.parquet")
    assert sorted(sel["id"].to_pylist()) == lossdiff_irm_selection(ld).selected_ids
    assert not val & set(sel["id"].to_pylist())
    assert 0.57 <= sel.num_rows / ld.num_rows < 0.65
    # pd_irm = PD top-λ ∩ IRM band, on PD values the pd strategy wrote
    pd_sel = read_table(f"{st['select']['selections']['pd']}/selected.parquet")
    hybrid = read_table(f"{st['select']['selections']['pd_irm']}/selected.parquet")
    assert pd_sel.num_rows == round(0.5 * n_train)
    band = np.asarray(ld["id"].to_pylist())[percentile_band(ld["irm"].to_numpy(), 0.2, 0.8)]
    # PD's top-λ among the scored pairs ∩ the IRM band: the validation pairs are out too
    got = set(hybrid["id"].to_pylist())
    assert got <= set(band.tolist()) and not val & got
    assert 0 < hybrid.num_rows < round(0.5 * ld.num_rows)
    assert {r["strategy"] for r in res.summary} == {"pd", "lossdiff_irm", "pd_irm"}

    # a re-run reuses every stage; another band recomputes select only
    again: list[str] = []
    run_pipeline(cfg, echo=again.append)
    assert sum(" cached" in ln for ln in again) == 5, again
    cfg2 = load_config(PipelineConfig, None, SMALL + [
        "run.stages=[data,rm,score,lossdiff,select]", f"run.output_dir={out}",
        "select.options={lossdiff_irm: {low: 0.1, high: 0.9}}"], base=preset("demo"))
    third: list[str] = []
    res3 = run_pipeline(cfg2, echo=third.append)
    assert any(ln.startswith("[lossdiff] cached") for ln in third)
    assert not any(ln.startswith("[select] cached") for ln in third)
    wide = read_table(f"{res3.stages['select']['selections']['lossdiff_irm']}/selected.parquet")
    assert sorted(wide["id"].to_pylist()) == lossdiff_irm_selection(ld, 0.1, 0.9).selected_ids
    assert len(wide) > len(sel)
