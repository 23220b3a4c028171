"""The embedded default end to end: data -> rm -> score -> select -> dpo -> report, then resume."""

import json
import math

import pytest

from pdray.config import load_config
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.pipeline.presets import preset

SMALL = ["data.n_pairs=240", "rm.epochs=1", "dpo.max_steps=4", "run.tracking=mlflow"]


@pytest.mark.timeout(900)
def test_demo_pipeline_runs_and_resumes(tmp_path, ray_local):
    cfg = load_config(PipelineConfig, None, SMALL + [f"run.output_dir={tmp_path / 'run'}"],
                      base=preset("demo"))
    lines: list[str] = []
    res = run_pipeline(cfg, echo=lines.append)
    out = tmp_path / "run"
    # the summary table: one row per strategy with real numbers
    rows = {r["strategy"]: r for r in res.summary}
    assert set(rows) == {"pd", "random", "high", "mid"}
    n_train = res.stages["data"]["train_rows"]
    for r in rows.values():
        assert r["kept"] == round(0.3 * n_train) or abs(r["kept"] - 0.3 * n_train) <= 1
        assert 0.0 <= r["cp"] <= 1.0 and not math.isnan(r["mean_dlen"])
    assert 0.0 <= rows["pd"]["dpo_acc"] <= 1.0 and 0.0 <= rows["random"]["dpo_acc"] <= 1.0
    assert math.isnan(rows["high"]["dpo_acc"])
    text = (out / "summary.txt").read_text()
    assert "CP" in text and "DPO consensus acc" in text and "own-label acc" in text
    assert rows["pd"]["dpo_metric"] == "consensus"  # the synthetic pairs carry ratings
    held = res.stages["dpo"]["metrics"]["pd"]["heldout"]
    assert rows["pd"]["dpo_acc"] == held["consensus_accuracy"] and held["n_consensus"] > 0
    assert held["mean_generated_length"] > 0
    # the headline is printed once per strategy, and no other held-out number beside it
    acc_lines = [ln for ln in lines if "accuracy" in ln and ln.startswith("[dpo")]
    assert len(acc_lines) == 2 and all("consensus accuracy" in ln for ln in acc_lines), acc_lines
    assert res.report_html and (tmp_path / "run").exists()
    run = json.loads((out / "run.json").read_text())
    assert set(run["stages"]) == {"data", "rm", "score", "select", "dpo", "report"}
    assert (out / "mlruns").exists()
    # a re-run skips every finished stage
    again: list[str] = []
    res2 = run_pipeline(cfg, echo=again.append)
    assert sum("cached" in line for line in again) == 6
    assert res2.summary == res.summary
    # a changed selection budget recomputes select (and downstream) but not rm/score
    cfg3 = load_config(PipelineConfig, None, SMALL + [f"run.output_dir={out}", "select.budget=0.5",
                                                      "run.stages=[data,rm,score,select]"],
                       base=preset("demo"))
    third: list[str] = []
    run_pipeline(cfg3, echo=third.append)
    assert any(line.startswith("[rm] cached") for line in third)
    assert any(line.startswith("[score] cached") for line in third)
    assert not any(line.startswith("[select] cached") for line in third)
