"""Generate answers to evaluation prompts: transformers (CPU/GPU, batched) or vLLM (GPU or CPU).

Results are cached per (model fingerprint, generation parameters, prompt id, prompt text) in a
:class:`~pdray.eval.cache.ShardCache`, so a re-run (or a second set sharing prompts) only
generates what is missing. The model fingerprint of a local folder hashes its ``config.json``
and the names, sizes and mtimes of its files (cheap even for 16 GB of weights); a hub id is used
as is. vLLM is imported only when chosen and a missing install is a clear error.

Both backends see the same input token ids (chat template rendered by the model's own tokenizer,
special tokens added only without a template) and decode the new tokens the same way, so greedy
answers agree up to floating-point differences of the kernels. On CPU, ``backend: auto`` keeps
transformers; ``backend: vllm`` runs vLLM's CPU build with a fixed KV cache and eager mode
(:func:`vllm_engine_kwargs`; ``eval.generation.vllm`` overrides).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from pdray.errors import ConfigError, PdrayError
from pdray.eval.cache import ShardCache
from pdray.eval.config import GenerationConfig
from pdray.fingerprint import file_fingerprint
from pdray.models.formatting import fix_pad_token
from pdray.models.smollm import smollm2_path
from pdray.models.vllm_cpu import cpu_engine_defaults

log = logging.getLogger(__name__)


def model_fingerprint(model: str) -> str:
    """Short stable id of a model: the content hash of its folder
    (:func:`pdray.fingerprint.file_fingerprint`, so a model retrained in place gets a new id and
    a copied one keeps its id), or of the name for a hub id."""
    fp = file_fingerprint(model) if Path(model).is_dir() else None
    blob = f"{fp['hash']}:{fp['size']}" if fp else model
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def generation_key(model: str, gen: GenerationConfig) -> str:
    """Cache namespace of (model, generation parameters)."""
    params = gen.model_dump(mode="json", exclude={"batch_size", "backend", "vllm"})
    blob = json.dumps({"model": model_fingerprint(model), "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _prompt_key(pid: str, prompt: str) -> str:
    return f"{pid}:{hashlib.sha256(prompt.encode('utf-8')).hexdigest()[:16]}"


def render_prompts(tokenizer, prompts: Sequence[str], gen: GenerationConfig) -> list[str]:
    """Chat-template each prompt (with the optional system prompt) when the tokenizer has one."""
    if not (gen.use_chat_template and getattr(tokenizer, "chat_template", None)):
        return list(prompts)
    out = []
    for p in prompts:
        msgs = ([{"role": "system", "content": gen.system_prompt}] if gen.system_prompt else [])
        msgs.append({"role": "user", "content": p})
        out.append(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
    return out


def _add_special_tokens(tokenizer) -> bool:
    """A rendered chat template already holds its special tokens; a raw prompt does not."""
    return not getattr(tokenizer, "chat_template", None)


def _vllm_platform():
    """vLLM's ``current_platform`` (how vLLM itself picks the device), or None without vLLM."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return None
    try:
        from vllm.platforms import current_platform
    except Exception:  # noqa: BLE001 - a broken install: fall back to transformers
        return None
    return current_platform


def resolve_backend(gen: GenerationConfig) -> str:
    """``auto``: vLLM when installed and vLLM sees an accelerator, else transformers (vLLM on
    CPU runs only when asked for: it starts slowly and is for testing and CPU-only users)."""
    if gen.backend != "auto":
        return gen.backend
    platform = _vllm_platform()
    if platform is None or platform.is_cpu() or platform.is_unspecified():
        return "hf"
    return "vllm"


def vllm_engine_kwargs(model: str, gen: GenerationConfig, cpu: bool) -> dict:
    """Keyword arguments of ``vllm.LLM`` (testable without vLLM).

    ``dtype: auto`` is float32 on CPU and bfloat16 on an accelerator, as in :func:`generate_hf`
    (vLLM's own ``auto`` follows the checkpoint). On CPU the KV cache is
    :data:`pdray.models.vllm_cpu.KV_CACHE_BYTES` (unless ``gpu_memory_utilization`` or ``kv_cache_memory_bytes``
    is given) and ``enforce_eager`` skips the torch.compile warm-up. ``gen.vllm`` wins.
    """
    dtype = gen.dtype if gen.dtype != "auto" else ("float32" if cpu else "bfloat16")
    kw = {"model": model, "seed": gen.seed, "trust_remote_code": gen.trust_remote_code,
          "dtype": dtype}
    if cpu:   # explicit KV cache and eager mode (pdray.models.vllm_cpu)
        kw.update(cpu_engine_defaults(gen.vllm))
    kw.update(gen.vllm)
    return kw


def generate_hf(model: str, prompts: Sequence[str], gen: GenerationConfig, log_fn=None) -> list[str]:
    """Greedy (temperature 0) or sampled generation with transformers, batched, left-padded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"auto": (torch.bfloat16 if device == "cuda" else torch.float32),
             "float32": torch.float32, "bfloat16": torch.bfloat16,
             "float16": torch.float16}[gen.dtype]
    t_load = time.time()
    tok = AutoTokenizer.from_pretrained(model, trust_remote_code=gen.trust_remote_code)
    tok.padding_side = "left"
    fix_pad_token(tok, echo=log.info)
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype,
                                              trust_remote_code=gen.trust_remote_code)
    lm.to(device).eval()
    if log_fn:
        log_fn(f"[eval] model loaded in {time.time() - t_load:.1f}s ({device}, "
               f"{str(dtype).removeprefix('torch.')})")
    texts = render_prompts(tok, prompts, gen)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outs: list[str] = [""] * len(texts)
    kwargs = {"max_new_tokens": gen.max_new_tokens, "pad_token_id": tok.pad_token_id}
    if gen.temperature > 0:
        kwargs.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    torch.manual_seed(gen.seed)
    t0 = time.time()
    for s in range(0, len(order), gen.batch_size):
        idx = order[s:s + gen.batch_size]
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                  add_special_tokens=_add_special_tokens(tok)).to(device)
        with torch.no_grad():
            seqs = lm.generate(**enc, **kwargs)
        new = seqs[:, enc["input_ids"].shape[1]:]
        for i, text in zip(idx, tok.batch_decode(new, skip_special_tokens=True)):
            outs[i] = text.strip()
        done = min(s + gen.batch_size, len(order))
        if log_fn:
            log_fn(f"[eval] generated {done}/{len(order)} ({done / max(time.time() - t0, 1e-9):.1f}/s)")
    return outs


def generate_vllm(model: str, prompts: Sequence[str], gen: GenerationConfig, log_fn=None) -> list[str]:
    """Generation with ``vllm.LLM.generate`` (GPU, or vLLM's CPU build).

    The prompts go in as token ids made exactly as in :func:`generate_hf` and the new token ids
    are decoded by the same tokenizer, so the two backends differ only in their kernels.
    vLLM spawns its engine process: a script calling this needs ``if __name__ == "__main__":``.
    """
    try:
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.platforms import current_platform
    except ImportError:
        raise PdrayError("generation backend 'vllm' needs vLLM: pip install 'pdray[gpu]' "
                         "(GPU), or set eval.generation.backend=hf") from None
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model, trust_remote_code=gen.trust_remote_code)
    texts = render_prompts(tok, prompts, gen)
    special = _add_special_tokens(tok)
    inputs = [TokensPrompt(prompt_token_ids=tok(t, add_special_tokens=special)["input_ids"])
              for t in texts]
    params = SamplingParams(max_tokens=gen.max_new_tokens, temperature=gen.temperature,
                            top_p=gen.top_p if gen.temperature > 0 else 1.0, seed=gen.seed,
                            detokenize=False)
    kwargs = vllm_engine_kwargs(model, gen, current_platform.is_cpu())
    threads = torch.get_num_threads()  # vLLM may lower the caller's torch threads
    t0 = time.time()
    llm = LLM(**kwargs)
    try:
        started = time.time() - t0
        if log_fn:
            log_fn(f"[eval] vllm engine started in {started:.1f}s "
                   f"({current_platform.device_type}, {kwargs['dtype']})")
        t1 = time.time()
        res = llm.generate(inputs, params, use_tqdm=False)
        if log_fn:
            log_fn(f"[eval] vllm generated {len(inputs)} in {time.time() - t1:.1f}s")
    finally:
        _shutdown(llm)
        torch.set_num_threads(threads)
    return [text.strip() for text in
            tok.batch_decode([list(r.outputs[0].token_ids) for r in res],
                             skip_special_tokens=True)]


def _shutdown(llm) -> None:
    """Stop vLLM's engine process now (not at interpreter exit) so its memory is freed."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    try:
        if core is not None:
            core.shutdown()
    except Exception as e:  # noqa: BLE001 - shutting down is best effort
        log.debug("vllm shutdown: %s", e)


def generate_answers(model: str, ids: Sequence[str], prompts: Sequence[str],
                     gen: GenerationConfig, cache_dir: str | Path | None = None,
                     log_fn=None) -> tuple[list[str], dict]:
    """Answers of ``model`` to ``prompts`` (same order), generating only uncached ones.

    Returns ``(answers, stats)`` with ``stats = {"generated": n, "cached": m, "backend": ...}``.
    """
    if len(ids) != len(prompts):
        raise ConfigError("ids and prompts differ in length")
    model = _resolve_model(model)
    cache = ShardCache(cache_dir, f"gen/{generation_key(model, gen)}")
    keys = [_prompt_key(i, p) for i, p in zip(ids, prompts)]
    have = cache.get_many(keys)
    todo = [n for n, k in enumerate(keys) if k not in have]
    backend = resolve_backend(gen)
    if log_fn:
        log_fn(f"[eval] {Path(model).name or model}: {len(keys)} prompts, "
               f"{len(keys) - len(todo)} cached, generating {len(todo)} with {backend}")
    if todo:
        fn = generate_vllm if backend == "vllm" else generate_hf
        outs = fn(model, [prompts[n] for n in todo], gen, log_fn)
        cache.put({keys[n]: {"answer": a} for n, a in zip(todo, outs)})
        have.update({keys[n]: {"answer": a} for n, a in zip(todo, outs)})
    return [have[k]["answer"] for k in keys], {"generated": len(todo),
                                               "cached": len(keys) - len(todo),
                                               "backend": backend}


def _resolve_model(model: str) -> str:
    if model == "smollm2":
        return smollm2_path()
    return str(model)
