"""Every row of the paper's Table 1 is a DPO strategy of ``pdray run`` (issue #23): naming them in
``run.dpo_strategies`` selects them, trains their extra reward models, runs LossDiff and aligns a
policy on each subset with identical DPO settings; each policy is measured against the consensus
label of the held-out pairs."""

import json
import math
from pathlib import Path

import pytest

from pdray.config import load_config
from pdray.io import read_table
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.pipeline.presets import preset

TABLE1 = ["pd", "random", "high", "all", "oracle", "overall", "dmpo", "holistic", "no_debias",
          "lossdiff_irm"]
SMALL = ["data.n_pairs=160", "data.test_fraction=0.2", "rm.epochs=1", "rm.sample_ratio=0.6", "run.tracking=none",
         "dpo.max_steps=1", "dpo.batch_size=4", "dpo.eval_fraction=0",
         "dpo.eval_sample_prompts=1", "dpo.eval_max_new_tokens=4",
         "lossdiff.val_size=16", "lossdiff.max_length=128", "lossdiff.shard_rows=64",
         "lossdiff.warmup.max_steps=1", "lossdiff.warmup.learning_rate=0.005",
         "lossdiff.warmup.batch_size=8", "lossdiff.warmup.per_device_batch_size=8",
         "lossdiff.warmup.max_length=128", "lossdiff.continue_from_warmup=true",
         "lossdiff.continue_epochs=2"]


def test_dpo_strategies_join_the_selection_and_switch_on_their_models():
    cfg = load_config(PipelineConfig, None, [f"run.dpo_strategies=[{','.join(TABLE1)}]",
                                             "run.stages=[data,rm,score,lossdiff,select,dpo]"],
                      base=preset("demo"))
    assert set(TABLE1) - {"dmpo"} <= set(cfg.select.strategies)
    assert "dmpo" not in cfg.select.strategies
    assert cfg.select.strategies[:4] == ["pd", "random", "high", "mid"]  # the preset's first
    assert cfg.rm.train_holistic and cfg.rm.train_no_debias


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_every_table1_row_through_pdray_run(tmp_path, ray_local):
    out = tmp_path / "run"
    cfg = load_config(PipelineConfig, None, SMALL + [
        f"run.dpo_strategies=[{','.join(TABLE1)}]", f"run.output_dir={out}",
        "run.stages=[data,rm,score,lossdiff,select,dpo]"], base=preset("demo"))
    lines: list[str] = []
    res = run_pipeline(cfg, echo=lines.append)
    dpo = res.stages["dpo"]
    assert set(dpo["models"]) == set(TABLE1)
    n_train = res.stages["data"]["train_rows"]
    manifests = {s: json.loads((Path(m).parent / "manifest.json").read_text())
                 for s, m in dpo["models"].items()}
    for s in TABLE1:
        held = dpo["metrics"][s]["heldout"]
        assert held["n_consensus"] > 0 and 0.0 <= held["consensus_accuracy"] <= 1.0, s
        lo, hi = held["consensus_ci"]
        assert lo <= held["consensus_accuracy"] <= hi
        assert 0.0 <= held["own_label_accuracy"] <= 1.0 and held["mean_generated_length"] > 0
        # identical DPO settings, except the LossDiff subset that continues from θ
        c = manifests[s]["config"]
        assert (c["lr"], c["beta"], c["max_steps"], c["batch_size"]) == (
            cfg.dpo.lr, cfg.dpo.beta, 1, 4), s
    # ALL and DMPO train on all of D; the 30 % subsets on 30 % of it
    assert manifests["all"]["train_rows"] == n_train
    assert manifests["dmpo"]["config"]["loss"] == "dmpo" and manifests["dmpo"]["rows"] == n_train
    assert manifests["pd"]["train_rows"] == round(0.3 * n_train)
    # oracle / overall: all of D relabelled by a holistic truth, ties dropped
    for s in ("oracle", "overall"):
        sel = read_table(Path(res.stages["select"]["selections"][s]) / "selected.parquet")
        assert 0 < sel.num_rows <= n_train and "relabelled" in sel.column_names
    # LossDiff-IRM continues from the warmed-up θ for lossdiff.continue_epochs, against π_ref
    ld = res.stages["lossdiff"]
    assert manifests["lossdiff_irm"]["model"] == ld["policy"]
    assert manifests["lossdiff_irm"]["config"]["epochs"] == 2
    assert manifests["pd"]["model"] != ld["policy"]
    val = set(read_table(ld["validation"])["id"].to_pylist())
    kept = read_table(Path(res.stages["select"]["selections"]["lossdiff_irm"]) / "selected.parquet")
    assert not val & set(kept["id"].to_pylist())
    # one consensus number per strategy, printed once
    printed = [ln for ln in lines if ln.startswith("[dpo]") and "consensus accuracy" in ln]
    assert len(printed) == len(TABLE1)
    rows = {r["strategy"]: r for r in res.summary}
    assert set(TABLE1) <= set(rows) and not math.isnan(rows["dmpo"]["dpo_acc"])
