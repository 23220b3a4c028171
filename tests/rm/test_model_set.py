"""The reward-model set manifest at its home (pdray.rm.model_set), and a light pdray.rm."""

import json

import pytest

from pdray import rm
from pdray.errors import PdrayError
from pdray.rm.model_set import MANIFEST, RewardModelSet
from tests.imports import heavy_modules_loaded


def test_reading_a_set_imports_neither_torch_nor_trl():
    assert heavy_modules_loaded("from pdray.rm.model_set import RewardModelSet\n"
                                "from pdray.rm import RMConfig",
                                ("torch", "trl", "transformers")) == []


def test_round_trip_and_lazy_names(tmp_path):
    s = RewardModelSet("multi_head", ["a", "b"], {"a": "multi_head", "b": "multi_head"},
                       rho=0.5, extra={"nan": float("nan")}, length_debias="penalty")
    s.save(tmp_path)
    assert json.loads((tmp_path / MANIFEST).read_text())["extra"] == {"nan": None}  # strict JSON
    back = RewardModelSet.load(tmp_path)
    assert back.head_index("b") == 1 and back.rho == 0.5
    assert back.model_dir(tmp_path, "a") == tmp_path / "multi_head"
    with pytest.raises(PdrayError, match="no reward model for aspect 'c'"):
        back.model_dir(tmp_path, "c")
    assert rm.RewardModelSet is RewardModelSet
    assert "train_reward_models" in dir(rm) and sorted(rm.__all__) == sorted(rm._HOME)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rm.nope  # noqa: B018
