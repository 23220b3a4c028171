"""Validation split (seeded, stratified, order-independent) and the typed config."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pdray.config import load_config
from pdray.errors import ConfigError
from pdray.lossdiff import LossDiffConfig, split_validation


def _pairs(n=40):
    return pa.table({"id": [f"id{i:03d}" for i in range(n)],
                     "aspect": ["help" if i % 4 else "safe" for i in range(n)],
                     "prompt": ["p"] * n, "chosen": ["c"] * n, "rejected": ["r"] * n})


def test_split_sizes_stratified_and_seeded():
    t = _pairs()
    train, val = split_validation(t, LossDiffConfig(val_size=8))
    assert (train.num_rows, val.num_rows) == (32, 8)
    assert set(train["id"].to_pylist()).isdisjoint(val["id"].to_pylist())
    asp = val["aspect"].to_pylist()
    assert asp.count("safe") == 2 and asp.count("help") == 6  # 10/40 and 30/40 of 8
    # same seed, shuffled rows -> same split; another seed -> another split
    again = split_validation(t.take(pa.array(list(range(39, -1, -1)))), LossDiffConfig(val_size=8))[1]
    assert sorted(again["id"].to_pylist()) == sorted(val["id"].to_pylist())
    other = split_validation(t, LossDiffConfig(val_size=8, split_seed=1))[1]
    assert sorted(other["id"].to_pylist()) != sorted(val["id"].to_pylist())
    assert split_validation(t, LossDiffConfig(val_fraction=0.25))[1].num_rows == 10
    with pytest.raises(ConfigError, match="no training"):
        split_validation(t, LossDiffConfig(val_size=40))


def test_config_yaml_overrides_and_errors(tmp_path):
    y = tmp_path / "ld.yaml"
    y.write_text("beta: 0.2\nwarmup:\n  learning_rate: 1e-3\n")
    cfg = load_config(LossDiffConfig, y, ["beta=0.3", "warmup.max_steps=3"])
    assert (cfg.beta, cfg.warmup.max_steps) == (0.3, 3)
    assert cfg.warmup.learning_rate == 1e-3 and cfg.trust_remote_code is False
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        load_config(LossDiffConfig, None, ["bogus=1"])
    # the band is a selector option (one home: pdray.selection.config.BAND), not a stage key
    with pytest.raises(ConfigError, match="unknown key 'low'"):
        load_config(LossDiffConfig, None, ["low=0.1"])


def test_cli_registered_and_points_to_selection_core():
    from typer.testing import CliRunner

    from pdray.cli import app

    r = CliRunner().invoke(app, ["lossdiff", "--help"])
    assert r.exit_code == 0
    for word in ("warmup", "score", "select", "--strategy lossdiff_irm"):
        assert word in r.output
    r = CliRunner().invoke(app, ["lossdiff", "select", "/nonexistent/scores", "-o", "/tmp/x"])
    assert r.exit_code != 0


def test_warmup_maps_every_field_onto_align_dpo_config():
    from pdray.lossdiff.warmup import align_config

    cfg = LossDiffConfig(beta=0.3, trust_remote_code=True, cpus_per_actor=0.25, gpus_per_actor=0,
                         warmup={"epochs": 2.0, "max_steps": 7, "learning_rate": 1e-4,
                                 "batch_size": 24, "per_device_batch_size": 4, "num_workers": 2,
                                 "warmup_ratio": 0.2, "lr_scheduler": "linear", "max_length": 96,
                                 "seed": 5, "bf16": False, "cpus_per_worker": 1.5})
    a = align_config(cfg, "/models/sft", "lossdiff-policy")
    got = {k: getattr(a, k) for k in ("model", "beta", "epochs", "max_steps", "lr", "batch_size",
                                      "grad_accum", "num_workers", "warmup_ratio", "scheduler",
                                      "max_length", "seed", "bf16", "use_gpu", "cpus_per_worker",
                                      "trust_remote_code", "eval_fraction", "name", "loss")}
    assert got == {"model": "/models/sft", "beta": 0.3, "epochs": 2.0, "max_steps": 7,
                   "lr": 1e-4, "batch_size": 4, "grad_accum": 3, "num_workers": 2,
                   "warmup_ratio": 0.2, "scheduler": "linear", "max_length": 96, "seed": 5,
                   "bf16": False, "use_gpu": False, "cpus_per_worker": 1.5,
                   "trust_remote_code": True, "eval_fraction": 0.0, "name": "lossdiff-policy",
                   "loss": "dpo"}
    assert cfg.max_length == 96  # scoring defaults to the warm-up's truncation
    assert LossDiffConfig(max_length=64, warmup={"max_length": 96}).max_length == 64
    # defaults: no step cap, bf16 left to align (on with GPUs), GPUs when scoring has them
    d = align_config(LossDiffConfig(gpus_per_actor=1), "/m", "x")
    assert (d.max_steps, d.bf16, d.use_gpu, d.grad_accum, d.cpus_per_worker) == \
        (None, None, True, 4, 1.0)
    assert align_config(LossDiffConfig(warmup={"use_gpu": False}, gpus_per_actor=1), "/m",
                        "x").use_gpu is False


def test_warmup_config_rejects_bad_and_removed_keys():
    with pytest.raises(ConfigError, match="not a multiple"):
        load_config(LossDiffConfig, None, ["warmup.batch_size=10", "warmup.per_device_batch_size=4"])
    with pytest.raises(ConfigError, match="use_align"):
        load_config(LossDiffConfig, None, ["warmup.use_align=false"])
    with pytest.raises(ConfigError, match="cpus_per_worker"):
        load_config(LossDiffConfig, None, ["warmup.cpus_per_worker=0"])
    with pytest.raises(ConfigError, match="max_steps"):
        load_config(LossDiffConfig, None, ["warmup.max_steps=-1"])
