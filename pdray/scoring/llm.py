"""GPU scoring on Ray's LLM batch API (``ray.data.llm``), behind the :class:`Scorer` interface.

``backend="ray_llm"``: every model folder of the set becomes a ``vLLMEngineProcessorConfig``
with ``task_type="classify"`` (vLLM's pooling runner), prefix caching on (chosen and rejected
of a pair share their prompt tokens), and the per-request pooling parameter
``use_activation=False`` so the outputs are the raw head logits, never a sigmoid. The inputs
are pdray's own token ids (the training encoding of :func:`pdray.scoring.backends.encode_pairs`,
prompt cut from the left), so the chat-template, tokenize and detokenize stages are off.

One ``score`` call is one Ray Data job per model folder (the engine starts for it): use large
shards (``score.shard_rows``) with this backend. The transformers path (``backend="hf"`` with
``gpus_per_actor > 0``) is the fallback; ``benchmarks/score_gpu_parity.py`` compares the two.
The pure parts (config, pre/post-processing, pairing rows back) are tested without vLLM.
"""

from __future__ import annotations

import numpy as np

from pdray.errors import PdrayError
from pdray.scoring.backends import PackedScorer

RAW_LOGITS = {"use_activation": False}


def processor_config_kwargs(folder: str, cfg, max_length: int) -> dict:
    """Keyword arguments of ``vLLMEngineProcessorConfig`` for one reward-model folder."""
    engine = {"enable_prefix_caching": True, "max_model_len": max_length,
              "trust_remote_code": cfg.trust_remote_code,
              "dtype": "bfloat16" if cfg.dtype == "auto" else cfg.dtype}
    engine.update(cfg.vllm)
    return {"model_source": folder, "task_type": "classify", "engine_kwargs": engine,
            "batch_size": cfg.llm_batch_size, "concurrency": cfg.num_actors,
            "chat_template_stage": False, "tokenize_stage": False, "detokenize_stage": False,
            "should_continue_on_error": False}


def preprocess(row: dict) -> dict:
    """Processor input: pdray's token ids, raw logits requested; ``_i`` keys the row."""
    return {"_i": int(row["_i"]), "tokenized_prompt": list(row["ids"]),
            "pooling_params": dict(RAW_LOGITS)}


def postprocess(row: dict) -> dict:
    """Processor output row → ``_i`` and the head logits (float64)."""
    emb = row.get("embeddings")
    if emb is None:
        raise PdrayError(f"vLLM returned no logits for input {row.get('_i')}")
    return {"_i": int(row["_i"]), "logits": np.asarray(emb, dtype=np.float64).reshape(-1).tolist()}


def logits_matrix(rows: list[dict], n_inputs: int) -> np.ndarray:
    """Postprocessed rows (any order) → an (n_inputs, heads) matrix; every input exactly once."""
    got = sorted(rows, key=lambda r: r["_i"])
    if [r["_i"] for r in got] != list(range(n_inputs)):
        raise PdrayError(f"vLLM returned {len(got)} outputs for {n_inputs} inputs")
    return np.asarray([r["logits"] for r in got], dtype=np.float64)


class RayLLMScorer(PackedScorer):
    """``ray.data.llm`` backend (GPU): raw classify logits of chosen and rejected per pair."""

    def __init__(self, rm_set, rm_dir: str, cfg):
        try:
            import ray.data.llm  # noqa: F401
        except ImportError:
            raise PdrayError("backend 'ray_llm' needs ray[llm] with vLLM and a CUDA GPU: pip "
                             "install 'pdray[gpu]' (or use score.backend=hf)") from None
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise PdrayError("backend 'ray_llm' needs vLLM and a CUDA GPU: pip install "
                             "'pdray[gpu]' (or use score.backend=hf)") from None
        self._setup(rm_set, rm_dir, cfg)

    def _engine(self, folder: str):
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig

        conf = vLLMEngineProcessorConfig(**processor_config_kwargs(folder, self.cfg,
                                                                   self.max_length))
        return build_processor(conf, preprocess=preprocess, postprocess=postprocess)

    def _logits(self, folder: str, ids: list[list[int]]) -> np.ndarray:
        import ray.data

        ds = ray.data.from_items([{"_i": i, "ids": x} for i, x in enumerate(ids)])
        return logits_matrix(self.engines[folder](ds).take_all(), len(ids))
