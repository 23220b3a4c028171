"""Every stage command documents every setting of its config, generated from the config model
(issue #14): the key, its default and the field's description, so `--help` cannot drift from
what runs."""

import importlib

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from pdray.cli import app
from pdray.cli.common import config_help

COMMANDS = {
    ("rm", "train"): "pdray.rm.config:RMConfig",
    ("score",): "pdray.scoring.config:ScoreConfig",
    ("select",): "pdray.selection.config:SelectConfig",
    ("dpo",): "pdray.align.config:DPOConfig",
    ("eval",): "pdray.eval.config:EvalConfig",
    ("lossdiff", "warmup"): "pdray.lossdiff.config:LossDiffConfig",
    ("lossdiff", "score"): "pdray.lossdiff.config:LossDiffConfig",
    ("run",): "pdray.pipeline.config:PipelineConfig",
    ("tune",): "pdray.pipeline.config:PipelineConfig",
    ("demo",): "pdray.pipeline.config:PipelineConfig",
}
CONFIGS = sorted(set(COMMANDS.values()))


def _model(path: str) -> type[BaseModel]:
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out += _keys(f.annotation, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def test_config_help_hand_made():
    from pydantic import Field

    from pdray.config import StrictModel

    class Inner(StrictModel):
        lr: float = Field(0.1, description="the rate")

    class Outer(StrictModel):
        name: str = Field(..., description="required thing")
        inner: Inner = Inner()
        tags: list[str] = Field(default_factory=lambda: ["a"], description="tags")

    assert config_help(Outer) == ["name (required)  required thing", "inner.lr=0.1  the rate",
                                  "tags=['a']  tags"]


@pytest.mark.parametrize("path", CONFIGS)
def test_every_setting_has_a_description(path):
    model = _model(path)
    lines = config_help(model)
    keys = _keys(model)
    assert len(lines) == len(keys)
    undocumented = [k for k, line in zip(keys, lines) if "  " not in line]
    assert not undocumented, f"{path}: no description for {undocumented}"


@pytest.mark.parametrize("cmd", list(COMMANDS), ids=" ".join)
def test_help_lists_every_setting(cmd):
    r = CliRunner().invoke(app, [*cmd, "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    for key in _keys(_model(COMMANDS[cmd])):
        assert f"{key}=" in text or f"{key} (required)" in text, (cmd, key)
