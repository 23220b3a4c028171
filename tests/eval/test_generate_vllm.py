"""vLLM generation on CPU (or GPU): same greedy answers as transformers, engine kwargs, errors.

The engine tests need vLLM (skipped without it); one engine starts for the tiny model (module
fixture) and, in the slow test, one for SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import re
import sys

import pytest

from pdray.errors import PdrayError
from pdray.eval import GenerationConfig, generate_answers
from pdray.eval.generate import (
    generate_hf,
    generate_vllm,
    resolve_backend,
    vllm_engine_kwargs,
)
from pdray.models.vllm_cpu import KV_CACHE_BYTES

PROMPTS = ["What is the capital of France?", "How do I bake bread at home?", "Count to five.",
           "Be honest: say so if you do not know.", "def f(x): return x + 1", "Water boils at",
           "Follow the instructions exactly.", "Why is the sky blue?"]
IDS = [f"p{n}" for n in range(len(PROMPTS))]
GEN = GenerationConfig(max_new_tokens=12, batch_size=3, dtype="float32")


def test_engine_kwargs_cpu_defaults_and_overrides():
    cpu = vllm_engine_kwargs("/m", GenerationConfig(seed=3), cpu=True)
    assert cpu == {"model": "/m", "seed": 3, "trust_remote_code": False, "dtype": "float32",
                   "kv_cache_memory_bytes": KV_CACHE_BYTES, "enforce_eager": True}
    assert KV_CACHE_BYTES == 1024**3
    gpu = vllm_engine_kwargs("/m", GenerationConfig(), cpu=False)
    assert gpu == {"model": "/m", "seed": 0, "trust_remote_code": False, "dtype": "bfloat16"}
    # the user's gen.vllm wins; a memory fraction of theirs replaces the fixed KV cache
    user = vllm_engine_kwargs("/m", GenerationConfig(dtype="float16", vllm={
        "gpu_memory_utilization": 0.1, "enforce_eager": False}), cpu=True)
    assert user["dtype"] == "float16" and user["gpu_memory_utilization"] == 0.1
    assert user["enforce_eager"] is False and "kv_cache_memory_bytes" not in user
    own_kv = vllm_engine_kwargs("/m", GenerationConfig(vllm={"kv_cache_memory_bytes": 5}), True)
    assert own_kv["kv_cache_memory_bytes"] == 5


def test_missing_vllm_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now fails as if absent
    with pytest.raises(PdrayError) as err:
        generate_vllm("/nowhere", ["hi"], GenerationConfig(backend="vllm"))
    assert "needs vLLM" in str(err.value) and "\n" not in str(err.value)
    assert resolve_backend(GenerationConfig()) == "hf"  # auto without vLLM
    assert resolve_backend(GenerationConfig(backend="vllm")) == "vllm"


def test_auto_stays_hf_on_cpu():
    pytest.importorskip("vllm")
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        pytest.skip("vLLM sees an accelerator")
    assert resolve_backend(GenerationConfig()) == "hf"
    assert resolve_backend(GenerationConfig(backend="vllm")) == "vllm"


@pytest.fixture(scope="module")
def tiny128(tmp_path_factory):
    """A tiny Llama with head_dim 64 (vLLM's CPU attention refuses the tiny default's 16)."""
    from pdray.models.tiny import build_tiny_causal_lm

    path = tmp_path_factory.mktemp("tiny128") / "lm"
    build_tiny_causal_lm(path, hidden_size=128, heads=2)
    return path


@pytest.fixture(scope="module")
def vllm_run(tiny128, tmp_path_factory):
    """One vLLM engine for the file: answers of the tiny model through generate_answers."""
    pytest.importorskip("vllm")
    import torch

    cache = tmp_path_factory.mktemp("gen_cache")
    logs: list[str] = []
    threads = torch.get_num_threads()
    out, stats = generate_answers(str(tiny128), IDS, PROMPTS,
                                  GEN.model_copy(update={"backend": "vllm"}), cache, logs.append)
    return {"out": out, "stats": stats, "logs": logs, "cache": cache,
            "threads": (threads, torch.get_num_threads())}


@pytest.mark.timeout(600)
def test_vllm_greedy_equals_hf_on_tiny_model(vllm_run, tiny128):
    hf = generate_hf(str(tiny128), PROMPTS, GEN)
    assert vllm_run["stats"] == {"generated": len(PROMPTS), "cached": 0, "backend": "vllm"}
    assert vllm_run["out"] == hf
    assert sum(len(a) for a in hf) > 3 * len(PROMPTS)  # real text, not empty answers
    before, after = vllm_run["threads"]
    assert after == before  # the caller's torch threads survive the engine


@pytest.mark.timeout(600)
def test_vllm_logs_engine_start_apart_from_generation(vllm_run):
    logs = vllm_run["logs"]
    start = [re.search(r"vllm engine started in ([\d.]+)s \((\w+), (\w+)\)", ln) for ln in logs]
    start = [m for m in start if m]
    gen = [m for m in (re.search(r"vllm generated (\d+) in ([\d.]+)s", ln) for ln in logs) if m]
    assert len(start) == 1 and len(gen) == 1
    assert float(start[0].group(1)) > 0 and start[0].group(3) == "float32"
    assert int(gen[0].group(1)) == len(PROMPTS) and float(gen[0].group(2)) >= 0
    assert logs.index(start[0].string) < logs.index(gen[0].string)


@pytest.mark.timeout(600)
def test_vllm_answers_are_cached(vllm_run, tiny128):
    logs: list[str] = []
    gen = GEN.model_copy(update={"backend": "vllm"})
    again, stats = generate_answers(str(tiny128), IDS, PROMPTS, gen, vllm_run["cache"],
                                    logs.append)
    assert again == vllm_run["out"]
    assert stats == {"generated": 0, "cached": len(PROMPTS), "backend": "vllm"}
    assert not any("engine started" in ln for ln in logs)  # no engine for a full cache


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smollm2_vllm_agrees_with_hf(shared_data):
    """SmolLM2-135M-Instruct, first 20 Vicuna prompts, 32 new tokens, float32, greedy:
    ≥ 95 % of the answers are the same string (measured: 20/20)."""
    pytest.importorskip("vllm")
    from pdray.eval.prompts import load_prompt_set
    from pdray.models.smollm import smollm2_path

    try:
        model = smollm2_path()
    except PdrayError as e:
        pytest.skip(str(e))
    prompts = load_prompt_set("vicuna", shared_data / "eval", limit=20)["prompt"].to_pylist()
    gen = GenerationConfig(max_new_tokens=32, batch_size=8, dtype="float32")
    hf = generate_hf(model, prompts, gen)
    vl = generate_vllm(model, prompts, gen)
    same = sum(a == b for a, b in zip(hf, vl))
    assert len(vl) == 20 and same >= 19, [(a, b) for a, b in zip(hf, vl) if a != b]
    assert all(len(a.split()) >= 5 for a in vl)  # real answers (32 tokens ≈ 20+ words)
