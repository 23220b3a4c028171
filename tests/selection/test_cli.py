import json

import numpy as np
import pyarrow as pa
from typer.testing import CliRunner

from pdray.cli import app
from pdray.io import read_table, write_pairs, write_table

from .helpers import hand_scores, pku_scores

runner = CliRunner()


def test_select_cli_writes_contract(pku_pairs, tmp_path):
    scores = pku_scores(pku_pairs, noise=0.3)
    write_table(scores, tmp_path / "scores.parquet")
    write_pairs(pku_pairs, tmp_path / "pairs.parquet")
    r = runner.invoke(app, ["select", str(tmp_path / "scores.parquet"), "--strategy", "pd",
                            "--budget", "0.3", "--data", str(tmp_path / "pairs.parquet"),
                            "--output", str(tmp_path / "sel"), "--report"])
    assert r.exit_code == 0, r.output
    assert "selected 300 of 1000 pairs (700 not selected" in r.output
    sel = read_table(tmp_path / "sel" / "selected.parquet")
    assert sel.num_rows == 300 and {"prompt", "chosen", "pd"} <= set(sel.column_names)
    assert np.all(np.diff(sel["pd"].to_numpy()) >= 0)             # most negative PD first
    man = json.loads((tmp_path / "sel" / "manifest.json").read_text())
    assert man["counts"] == {"in": 1000, "selected": 300, "not_selected": 700, "dropped": 0}
    assert set(man["q"]) == {"helpfulness", "harmlessness"}
    assert man["input_hashes"]["scores"] and man["input_hashes"]["pairs"]
    assert (tmp_path / "sel" / "report" / "index.html").exists()


def test_select_cli_config_options_and_overrides(tmp_path):
    write_table(hand_scores(), tmp_path / "s.parquet")
    (tmp_path / "c.yaml").write_text("strategy: high\nbudget: 0.25\ngamma: 1.0\n")
    # YAML says high/0.25; the option --budget 0.5 wins over YAML; the override wins over both
    r = runner.invoke(app, ["select", str(tmp_path / "s.parquet"), "strategy=pd",
                            "--config", str(tmp_path / "c.yaml"), "--budget", "0.5",
                            "--output", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert man["strategy"] == "pd" and man["params"]["budget"] == 0.5
    assert man["params"]["gamma"] == 1.0 and man["q"] == {"A": 3.0, "B": 4.0, "C": 2.0}
    assert read_table(tmp_path / "o" / "selected.parquet")["id"].to_pylist() == ["z2", "z1"]
    r = runner.invoke(app, ["select", str(tmp_path / "s.parquet"), "--weight", "B=2",
                            "gamma=1.0", "--output", str(tmp_path / "w")])
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert man["params"]["aspect_weights"] == {"B": 2.0}


def test_select_cli_errors_are_one_line(tmp_path):
    t = hand_scores().set_column(5, "gap_B", pa.array([1.0, float("nan"), 1.0, 1.0]))
    write_table(t, tmp_path / "bad.parquet")
    r = runner.invoke(app, ["select", str(tmp_path / "bad.parquet"), "--output",
                            str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "bad.parquet" in r.output and "row 1" in r.output and "gap_B" in r.output
    r = runner.invoke(app, ["select", str(tmp_path / "bad.parquet"), "budget=2",
                            "--output", str(tmp_path / "o")])
    assert r.exit_code == 2 and "budget" in r.output
    assert not (tmp_path / "o").exists()


def test_select_cli_band_option(tmp_path):
    t = pa.table({"id": [f"r{i}" for i in range(10)], "aspect": ["a"] * 10,
                  "chosen_len": [1] * 10, "rejected_len": [1] * 10, "gap_a": np.ones(10),
                  "lossdiff": np.arange(10.0), "irm": np.arange(10.0)[::-1].copy()})
    write_table(t, tmp_path / "s.parquet")
    r = runner.invoke(app, ["select", str(tmp_path / "s.parquet"), "--strategy", "lossdiff_irm",
                            "--option", "low=0.2", "--option", "high=0.8", "--output",
                            str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "keep rate: 0.600" in r.output
    assert read_table(tmp_path / "o" / "selected.parquet")["id"].to_pylist() == [
        "r2", "r3", "r4", "r5", "r6", "r7"]
