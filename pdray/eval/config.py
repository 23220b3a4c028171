"""Evaluation configuration (the ``eval`` section of a pipeline YAML; ``pdray eval --config``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pdray.config import StrictModel
from pdray.errors import DataError
from pdray.eval.prompts import PAPER_SETS, canonical_set_name


class GenerationConfig(StrictModel):
    backend: Literal["auto", "hf", "vllm"] = Field("auto", description="auto: vllm when "
                                                   "installed and vLLM sees a GPU, else "
                                                   "transformers; vllm also runs on CPU")
    max_new_tokens: int = Field(512, ge=1, description="tokens generated per answer at most")
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass (1: off)")
    batch_size: int = Field(8, ge=1, description="transformers backend: prompts per batch")
    seed: int = Field(0, description="sampling seed")
    system_prompt: str | None = Field(None, description="system turn before each prompt")
    use_chat_template: bool = Field(True, description="render prompts with the tokenizer's "
                                     "chat template when it has one")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="weights dtype (auto: bfloat16 on GPU, float32 on CPU)")
    trust_remote_code: bool = Field(False, description="run custom model code from the "
                                    "model folder (off: safe by default)")
    vllm: dict = Field(default_factory=dict, description="extra vllm.LLM kwargs, over pdray's "
                       "defaults (on CPU: kv_cache_memory_bytes 1 GiB, enforce_eager true)")


class EvalConfig(StrictModel):
    sets: list[str] = Field(default_factory=lambda: list(PAPER_SETS),
                            description="test sets (wizardlm, selfinstruct, vicuna, koala, lima, "
                            "alpaca_eval, alpaca_eval_davinci, mt_bench)")
    data_dir: str | None = Field(None, description="default: $PDRAY_EVAL_DATA or "
                                 "../shared/data/eval")
    limit: int | None = Field(None, gt=0, description="first N prompts per set")
    baseline: str | None = Field(None, description="baseline: model folder, answers file "
                                 "(.jsonl/.parquet with id, answer), 'reference' (the set's "
                                 "reference outputs), or in the pipeline a strategy name "
                                 "(default: overall, else all, else random: the paper "
                                 "compares with the Overall model)")
    judge: Literal["openai", "rm"] = Field("rm", description="openai: an OpenAI-compatible "
                                           "chat model (key from the environment); rm: a "
                                           "reward model as judge")
    judge_model: str | None = Field(None, description="openai: model name; rm: reward-model folder")
    base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible endpoint")
    api_key_env: str = Field("OPENAI_API_KEY", description="NAME of the env var holding the key")
    judge_temperature: float = Field(0.0, ge=0, description="sampling temperature of the judge")
    judge_max_tokens: int = Field(512, ge=8, description="tokens of the judge's reply at most")
    judge_timeout_s: float = Field(120.0, gt=0, description="seconds per judge request")
    judge_max_retries: int = Field(3, ge=0, description="retries of a failed judge request "
                                   "(429, 5xx, connection; exponential backoff)")
    judge_concurrency: int = Field(4, ge=1, description="judge requests in flight")
    rm_judge_temperature: float = Field(1.0, gt=0, description="T in score = 1 + 9·σ(r/T)")
    rm_judge_max_length: int = Field(1024, ge=16, description="tokens of prompt + answer the "
                                     "rm judge reads (the prompt is cut from the left)")
    combine: Literal["sum", "consistent"] = Field("sum", description="win/loss/tie rule")
    length_unit: Literal["words", "chars"] = Field("words", description="unit of AL")
    max_new_tokens: int = Field(512, ge=1, description="shortcut for generation.max_new_tokens")
    generation: GenerationConfig = GenerationConfig()
    cache_dir: str | None = Field(None, description="generation/judgment cache "
                                  "(default: <output>/cache)")
    trust_remote_code: bool = Field(False, description="run custom model code (off: safe by "
                                    "default)")

    @field_validator("sets")
    @classmethod
    def _known_sets(cls, v: list[str]) -> list[str]:
        try:
            out = [canonical_set_name(s) for s in v]
        except DataError as e:
            raise ValueError(str(e)) from None
        if not out:
            raise ValueError("at least one test set is needed")
        return list(dict.fromkeys(out))

    def gen(self) -> GenerationConfig:
        """Generation settings with the ``max_new_tokens`` shortcut applied."""
        g = self.generation
        if "max_new_tokens" in self.model_fields_set and "max_new_tokens" not in g.model_fields_set:
            g = g.model_copy(update={"max_new_tokens": self.max_new_tokens})
        return g
