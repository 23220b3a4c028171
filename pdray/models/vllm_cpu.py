"""vLLM's settings on a CPU, for both engines pdray starts (reward scoring, generation).

vLLM's CPU backend sizes its KV cache from ``gpu_memory_utilization`` of *host* RAM, less what
the process already holds: its default (0.92) does not fit beside anything else, and a second
engine in the same process finds its share already used. pdray gives the cache an explicit size
instead (unless the user sizes it), and runs eagerly: the torch.compile warm-up (70+ s on 2
cores) costs more than it saves on a scoring job or a short evaluation set.
"""

from __future__ import annotations

KV_CACHE_BYTES = 1 << 30   # 16k tokens of the pku recipe's SmolLM2 in float32


def cpu_engine_defaults(user: dict) -> dict:
    """pdray's vLLM engine settings on CPU, given the user's own (``score.vllm`` /
    ``eval.generation.vllm``, which are applied after these and win)."""
    out = {"enforce_eager": True}
    if not {"gpu_memory_utilization", "kv_cache_memory_bytes"} & set(user):
        out["kv_cache_memory_bytes"] = KV_CACHE_BYTES
    return out
