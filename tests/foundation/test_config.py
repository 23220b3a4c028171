from typing import Literal

import pytest

from pdray.config import StrictModel, apply_overrides, load_config, parse_override
from pdray.errors import ConfigError


class Inner(StrictModel):
    lr: float = 1e-3
    mode: Literal["separate", "multi_head"] = "separate"


class Outer(StrictModel):
    name: str = "x"
    rm: Inner = Inner()
    budget: float = 0.3


def test_parse_override_reads_yaml_values():
    assert parse_override("rm.lr=2e-5") == (["rm", "lr"], 2e-5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a.b=hello") == (["a", "b"], "hello")
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("novalue")
    with pytest.raises(ConfigError, match="empty key"):
        parse_override("a..b=1")


def test_apply_overrides_creates_sections_and_refuses_values_as_sections():
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2", "d.e=3"]) == {"a": {"b": 1, "c": 2}, "d": {"e": 3}}
    with pytest.raises(ConfigError, match="'a' is a value"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_load_config_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: demo\nrm:\n  lr: 0.01\n")
    cfg = load_config(Outer, p, ["rm.mode=multi_head", "budget=0.5"])
    assert cfg.name == "demo" and cfg.rm.lr == 0.01 and cfg.rm.mode == "multi_head"
    assert cfg.budget == 0.5


def test_load_config_errors_name_key_and_value(tmp_path):
    with pytest.raises(ConfigError, match=r"rm\.mode='both'"):
        load_config(Outer, None, ["rm.mode=both"])
    with pytest.raises(ConfigError, match="unknown key 'rm.lrr'"):
        load_config(Outer, None, ["rm.lrr=1"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Outer, bad)


class Needy(StrictModel):
    output: str
    inner: Inner = Inner()


def test_a_missing_required_key_is_named_alone(tmp_path):
    """Not followed by the whole enclosing mapping (pydantic's input for a missing field)."""
    with pytest.raises(ConfigError) as e:
        load_config(Needy, None, ["inner.lr=0.5"])
    assert str(e.value) == "config: output is required"
