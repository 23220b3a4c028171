"""The ray.data.llm GPU path without a GPU: processor configuration and row post-processing on
stubs of the processor's row format (vLLM itself is not installed here)."""

import numpy as np
import pytest

from pdray.errors import PdrayError
from pdray.scoring import ScoreConfig
from pdray.scoring.llm import logits_matrix, postprocess, preprocess, processor_config_kwargs

llm = pytest.importorskip("ray.data.llm", reason="ray.data.llm cannot be imported")


def test_processor_config_is_classify_with_prefix_caching_on_our_tokens():
    cfg = ScoreConfig(backend="ray_llm", dtype="auto", num_actors=2, llm_batch_size=64,
                      vllm={"gpu_memory_utilization": 0.8})
    kw = processor_config_kwargs("/models/rm", cfg, 512)
    conf = llm.vLLMEngineProcessorConfig(**kw)
    assert conf.task_type == "classify" and conf.model_source == "/models/rm"
    assert conf.engine_kwargs["enable_prefix_caching"] is True
    assert conf.engine_kwargs["max_model_len"] == 512
    assert conf.engine_kwargs["dtype"] == "bfloat16"
    assert conf.engine_kwargs["gpu_memory_utilization"] == 0.8
    assert conf.batch_size == 64 and conf.concurrency == 2
    # pdray tokenises (the training encoding): no chat template, no tokenizer, no detokenizer
    assert (conf.chat_template_stage, conf.tokenize_stage, conf.detokenize_stage) == \
        (False, False, False)


def test_rows_round_trip_to_raw_logits():
    req = preprocess({"_i": 3, "ids": np.array([5, 6, 7])})
    assert req == {"_i": 3, "tokenized_prompt": [5, 6, 7],
                   "pooling_params": {"use_activation": False}}  # raw logits, no sigmoid
    # the engine stage returns the row with float32 "embeddings" (num_labels values)
    out = [postprocess({"_i": i, "embeddings": np.array([v, -v], np.float32)})
           for i, v in [(2, 0.5), (0, -1.25), (3, 2.0), (1, 3.5)]]
    m = logits_matrix(out, 4)
    np.testing.assert_array_equal(m[:, 0], [-1.25, 3.5, 0.5, 2.0])
    n = 2  # rows 0..n-1 are the chosen inputs, n..2n-1 the rejected ones
    np.testing.assert_array_equal(m[:n, 0] - m[n:, 0], [-1.75, 1.5])
    with pytest.raises(PdrayError, match="3 outputs for 4 inputs"):
        logits_matrix(out[:3], 4)
    with pytest.raises(PdrayError, match="no logits"):
        postprocess({"_i": 9, "embeddings": None})


def test_ray_llm_backend_without_vllm_is_a_clear_error(tmp_path):
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed")
    except ImportError:
        pass
    from pdray.rm.model_set import RewardModelSet
    from pdray.scoring import make_scorer

    rms = RewardModelSet("separate", ["a"], {"a": "a"}, max_length=64)
    with pytest.raises(PdrayError, match="score.backend=hf"):
        make_scorer(rms, str(tmp_path), ScoreConfig(backend="ray_llm"))
