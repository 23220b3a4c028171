"""One scores table, one selection: `pdray run` and `pdray select` read ρ and the length mode
from the scores manifest, so they select the same ids (issue #11: they used to differ)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdray.cli import app
from pdray.config import load_config
from pdray.io import read_table
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.pipeline.presets import preset


@pytest.mark.timeout(600)
def test_select_and_run_give_the_same_ids(tmp_path, ray_local):
    out = tmp_path / "run"
    cfg = load_config(PipelineConfig, None, [
        "data.n_pairs=160", "rm.max_steps=3", "rm.length_debias=penalty", "rm.rho=0.05",
        "run.tracking=none", "run.stages=[data,rm,score,select]", f"run.output_dir={out}"],
        base=preset("demo"))
    res = run_pipeline(cfg, echo=lambda *_: None)
    scores_dir = res.stages["score"]["scores"]
    manifest = json.loads((Path(scores_dir) / "manifest.json").read_text())
    assert manifest["length"] == {"mode": "penalty", "rho": 0.05, "fitted": None}
    run_ids = read_table(Path(res.stages["select"]["selections"]["pd"]) / "selected.parquet")
    cli = CliRunner().invoke(app, ["select", scores_dir, "--strategy", "pd", "--budget", "0.3",
                                   "--data", res.stages["data"]["train"], "-o",
                                   str(tmp_path / "sel")])
    assert cli.exit_code == 0, cli.output
    sel = read_table(tmp_path / "sel" / "selected.parquet")
    assert sel["id"].to_pylist() == run_ids["id"].to_pylist()
    m = json.loads((tmp_path / "sel" / "manifest.json").read_text())
    assert m["length"] == {"mode": "penalty", "rho": 0.05, "fitted": None}
    # an explicit ρ still overrides the manifest, and then the selection differs
    cli0 = CliRunner().invoke(app, ["select", scores_dir, "--strategy", "pd", "--rho", "0",
                                    "--length-debias", "none", "-o", str(tmp_path / "sel0")])
    assert cli0.exit_code == 0, cli0.output
    assert json.loads((tmp_path / "sel0" / "manifest.json").read_text())["length"] == {
        "mode": "none", "rho": 0.0, "fitted": None}
