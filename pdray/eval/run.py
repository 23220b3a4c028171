"""``evaluate``: generate, judge both orders, score (Eq. 19), write judgments + ``eval.json``.

Output directory:
  ``judgments.parquet``  one row per (set, prompt): answers, both raw judge outputs, parsed
                         scores, outcome (win/loss/tie/failed) and error
  ``eval.json``          summary: per set n/judged/win/loss/tie/failed/win_score/AL/AL_baseline
                         (+ WR and LC for sets with reference answers judged against them),
                         AW over the sets, the judge, the models, the config
  ``cache/``             generation and judgment caches (re-runs skip finished work)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pdray.errors import ConfigError, DataError
from pdray.eval.cache import ShardCache
from pdray.eval.config import EvalConfig
from pdray.eval.generate import generate_answers
from pdray.eval.metrics import (
    average_win_score,
    length_controlled_win_rate,
    outcome_preference,
    response_length,
    set_summary,
    win_rate,
)
from pdray.eval.openai_judge import OpenAIJudge
from pdray.eval.pairwise import Judge, judge_both_orders
from pdray.eval.prompts import load_prompt_sets, read_answers
from pdray.eval.rm_judge import RewardModelJudge
from pdray.io import write_json, write_table

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    sets: dict[str, dict]
    aw: float
    output_dir: str
    judgments_path: str
    summary_path: str
    extra: dict = field(default_factory=dict)

    def table(self) -> str:
        """The summary as a fixed-width text table (set, W/L/T/F, win score, AL)."""
        head = f"{'set':<20}{'n':>5}{'win':>5}{'loss':>5}{'tie':>5}{'fail':>5}{'score':>8}{'AL':>8}{'AL_b':>8}"
        lines = [head]
        for name, s in self.sets.items():
            extra = (f"  WR {s['WR']:.1f} LC {s['LC']:.1f}" if "WR" in s else "")
            lines.append(f"{name:<20}{s['n']:>5}{s['win']:>5}{s['loss']:>5}{s['tie']:>5}"
                         f"{s['failed']:>5}{s['win_score']:>8.3f}{s['AL']:>8.1f}"
                         f"{s['AL_baseline']:>8.1f}{extra}")
        lines.append(f"{'AW':<20}{'':>25}{self.aw:>8.3f}")
        return "\n".join(lines)


Baseline = str | Mapping[str, str] | None


def _baseline_answers(baseline: Baseline, ids, prompts, references, cfg: EvalConfig,
                      cache_dir, echo) -> tuple[list[str], str]:
    """Baseline answers for one set from a model folder, an answers file/mapping, or references."""
    if baseline is None or baseline == "reference":
        if any(r is None for r in references):
            raise ConfigError("this test set has no reference answers; give a baseline model "
                              "or answers file (eval.baseline / --baseline)")
        return list(references), "reference"
    if isinstance(baseline, Mapping):
        answers, label = baseline, "answers"
    elif str(baseline).lower().endswith((".jsonl", ".json", ".parquet", ".jsonl.gz")):
        answers, label = read_answers(baseline), str(baseline)
    else:
        out, _ = generate_answers(str(baseline), ids, prompts, cfg.gen(), cache_dir, echo)
        return out, str(baseline)
    missing = [i for i in ids if i not in answers]
    if missing:
        raise DataError(f"no baseline answer for prompt id {missing[0]!r} "
                        f"({len(missing)} missing)", file=label if label != "answers" else None,
                        field="id")
    return [answers[i] for i in ids], label


def evaluate(target_model: str, baseline: Baseline, test_sets, judge: Judge,
             output_dir: str | Path, cfg: EvalConfig | None = None,
             echo: Callable[[str], None] | None = None) -> EvalResult:
    """Evaluate ``target_model`` against ``baseline`` on ``test_sets`` with ``judge``.

    ``baseline``: a model folder (its answers are generated), an answers file or ``{id: answer}``,
    or ``None``/``"reference"`` for the sets' reference outputs (AlpacaEval). Writes
    ``judgments.parquet`` and ``eval.json`` under ``output_dir`` and returns an :class:`EvalResult`.
    """
    cfg = cfg or EvalConfig()
    echo = echo or log.info
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    jcache = ShardCache(cache_dir, "judge")
    sets = load_prompt_sets(list(test_sets), cfg.data_dir, limit=cfg.limit)
    rows: list[dict] = []
    summary: dict[str, dict] = {}
    t0 = time.time()
    for name, table in sets.items():
        ids = table.column("id").to_pylist()
        prompts = table.column("prompt").to_pylist()
        refs = table.column("reference").to_pylist()
        echo(f"[eval] {name}: {len(ids)} prompts")
        target, _ = generate_answers(target_model, ids, prompts, cfg.gen(), cache_dir, echo)
        base, base_label = _baseline_answers(baseline, ids, prompts, refs, cfg, cache_dir, echo)
        judged = judge_both_orders(judge, list(zip(prompts, target, base)), cache=jcache,
                                   rule=cfg.combine, log=echo)
        outcomes = [j["outcome"] for j in judged]
        s = set_summary(outcomes, target, base, cfg.length_unit)
        if base_label == "reference":  # AlpacaEval-style WR / LC against the reference outputs
            keep = [(outcome_preference(o), t, b) for o, t, b in zip(outcomes, target, base)
                    if outcome_preference(o) is not None]
            if keep:
                prefs = [k[0] for k in keep]
                s["WR"] = win_rate(prefs)
                s["LC"] = length_controlled_win_rate(
                    prefs, [response_length(k[1], cfg.length_unit) for k in keep],
                    [response_length(k[2], cfg.length_unit) for k in keep])
        summary[name] = s
        failed = (f", {s['failed']} judge failures (ties in Eq. 19)" if s["failed"] else "")
        echo(f"[eval] {name}: W/L/T {s['win']}/{s['loss']}/{s['tie']}{failed}, "
             f"win score {s['win_score']:.3f}, AL {s['AL']:.1f} vs {s['AL_baseline']:.1f}")
        for i, p, t, b, j in zip(ids, prompts, target, base, judged):
            rows.append({"set": name, "id": i, "prompt": p, "target_answer": t,
                         "baseline_answer": b, **j})
    aw = average_win_score({k: v["win_score"] for k, v in summary.items()})
    jpath = write_table(pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA),
                        out / "judgments.parquet")
    doc = {"target_model": str(target_model),
           "baseline": baseline if isinstance(baseline, (str, type(None))) else "answers",
           "judge": judge.name, "combine": cfg.combine, "length_unit": cfg.length_unit,
           "sets": _finite(summary), "AW": _nan_none(aw),
           "seconds": round(time.time() - t0, 1), "config": cfg.model_dump(mode="json"),
           "generation": cfg.gen().model_dump(mode="json")}
    spath = write_json(doc, out / "eval.json")
    res = EvalResult(summary, aw, str(out), str(jpath), str(spath))
    echo("[eval] summary\n" + res.table())
    return res


JUDGMENT_SCHEMA = pa.schema([
    ("set", pa.string()), ("id", pa.string()), ("prompt", pa.string()),
    ("target_answer", pa.string()), ("baseline_answer", pa.string()),
    ("text_1", pa.string()), ("text_2", pa.string()),
    ("target_score_1", pa.float64()), ("baseline_score_1", pa.float64()),
    ("baseline_score_2", pa.float64()), ("target_score_2", pa.float64()),
    ("error", pa.string()), ("outcome", pa.string()),
])


def _nan_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def _finite(summary: dict) -> dict:
    return {k: {kk: _nan_none(vv) for kk, vv in v.items()} for k, v in summary.items()}


def make_judge(cfg: EvalConfig) -> Judge:
    """Build the judge named by an :class:`~pdray.eval.config.EvalConfig`."""
    if cfg.judge == "openai":
        return OpenAIJudge(cfg.judge_model, cfg.base_url, api_key_env=cfg.api_key_env,
                           temperature=cfg.judge_temperature, max_tokens=cfg.judge_max_tokens,
                           timeout_s=cfg.judge_timeout_s, max_retries=cfg.judge_max_retries,
                           concurrency=cfg.judge_concurrency)
    if cfg.judge == "rm":
        return RewardModelJudge(cfg.judge_model, temperature=cfg.rm_judge_temperature,
                                max_length=cfg.rm_judge_max_length,
                                trust_remote_code=cfg.trust_remote_code)
    raise ConfigError(f"unknown judge {cfg.judge!r} (openai | rm)")


DEFAULT_BASELINES = ("overall", "all", "random")
"""The pipeline's default eval baseline, the first of these strategies that was aligned."""


def evaluate_models(models: Mapping[str, str], cfg: EvalConfig, output_dir: str | Path,
                    echo: Callable[[str], None] | None = None) -> dict:
    """Pipeline entry: evaluate each model of ``{name: folder}`` against ``cfg.baseline``.

    ``cfg.baseline`` may name one of ``models``, a model folder, an answers file or
    ``reference``. Its default is the first of :data:`DEFAULT_BASELINES` among ``models``: the
    paper compares every row of Table 1 with the Overall model (aligned on all of D relabelled by
    the overall rating), and with ALL where the data has no overall rating. Returns
    ``{name: {"AW": ..., "sets": ..., "dir": ...}}`` (JSON-able).
    """
    base = cfg.baseline
    if base is None:
        base = next((b for b in DEFAULT_BASELINES if b in models), None)
    if base is None and not any(s.startswith("alpaca_eval") for s in cfg.sets):
        raise ConfigError("eval.baseline is required (a strategy name, model folder, answers "
                          "file or 'reference')")
    base_path = models.get(base, base) if base else None
    judge = make_judge(cfg)
    results = {}
    try:
        for name, path in models.items():
            if base in models and name == base:
                continue
            res = evaluate(path, base_path, cfg.sets, judge, Path(output_dir) / name, cfg, echo)
            results[name] = {"AW": _nan_none(res.aw), "sets": _finite(res.sets),
                             "dir": res.output_dir, "baseline": base}
    finally:
        judge.close()
    return results
