"""Which backbone's features carry PKU's aspects beyond length? (issue #11, the study behind the
head-only SmolLM2 recipe)

Uses finished ``selection_quality.py`` runs (their data splits and scores tables, default
``benchmarks/_runs/selection_quality/pku-learned-s*``) and prints, per seed:

1. ``--fine-tuned``: each run's own reward models — accuracy on the *other* aspect's pairs
   against their own aspect's labels (n ≈ 250, never trained on), a length-only scorer's
   accuracy on the same pairs, and the accuracy on their own training pairs;
2. for each backbone (``minilm``, ``smollm2``) and pooling (``mean`` over all tokens, ``resp``
   over the response tokens, ``last`` token): frozen features of every response, one
   cross-validated logistic probe per aspect on that aspect's pairs, the gaps replaced in the
   run's scores table, and pdray's own PD selection at λ = 0.3 with and without the Eq. 18
   refit — gap closed and the subset's Δlen against the dataset's.

    python benchmarks/rm_probe_study.py --backbones minilm smollm2 --fine-tuned

Needs scikit-learn (for ``LogisticRegressionCV``). Features are cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdray.data.stats import conflict_flags
from pdray.io import read_table
from pdray.length_modes import LengthTerm
from pdray.selection import select
from pdray.selection.scores import read_scores

POOLINGS = ("mean", "resp", "last")


def _run(d: Path):
    info = json.loads((d / "run.json").read_text())["stages"]
    return read_table(info["data"]["train"]), read_scores(info["score"]["scores"])


def _labels(pairs: pa.Table, aspect: str) -> np.ndarray:
    return np.array([dict(a)[aspect] - dict(b)[aspect] for a, b in
                     zip(pairs["chosen_ratings"].to_pylist(), pairs["rejected_ratings"].to_pylist())])


def features(backbone: str, texts: dict[str, str], cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """pooling → {response text: φ}, for every (prompt, response) in ``texts`` (response → prompt)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pdray.models.backbones import minilm_path
    from pdray.models.reward import pad_batch, token_batches
    from pdray.models.smollm import smollm2_path

    f = cache / f"features_{backbone}.npz"
    keys = sorted(texts)
    if f.exists():
        z = np.load(f, allow_pickle=False)
        if list(z["keys"]) == keys:
            return {p: dict(zip(keys, z[p])) for p in POOLINGS}
    torch.set_num_threads(2)
    path = smollm2_path() if backbone == "smollm2" else minilm_path()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def enc(prompt: str, response: str):
        if backbone == "smollm2":
            pre = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                          add_generation_prompt=True)
            a = tok(pre, add_special_tokens=False)["input_ids"][-96:]
            b = tok(response + "<|im_end|>", add_special_tokens=False)["input_ids"][:160]
        else:
            a = [tok.cls_token_id] + tok(prompt, add_special_tokens=False)["input_ids"][-64:] + [tok.sep_token_id]
            b = tok(response, add_special_tokens=False)["input_ids"][:190] + [tok.sep_token_id]
        return a + b, len(a)

    seqs = [enc(texts[k], k) for k in keys]
    out = {p: np.zeros((len(keys), model.config.hidden_size), np.float32) for p in POOLINGS}
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    t0 = time.time()
    with torch.inference_mode():
        for n, b in enumerate(token_batches([len(s) for s, _ in seqs], 4096)):
            ids, mask = pad_batch([seqs[i][0] for i in b], pad)
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            for r, i in enumerate(b):
                L, a = len(seqs[i][0]), seqs[i][1]
                out["mean"][i], out["resp"][i], out["last"][i] = (
                    h[r, :L].mean(0).numpy(), h[r, a:L].mean(0).numpy(), h[r, L - 1].numpy())
            if n % 10 == 0:
                print(f"[{backbone}] {sum(len(x) for x in [b])}… features, {time.time() - t0:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, keys=np.array(keys), **out)
    return {p: dict(zip(keys, out[p])) for p in POOLINGS}


def probe_row(pairs, scores, feat: dict[str, np.ndarray]) -> dict:
    from sklearn.linear_model import LogisticRegressionCV

    asp = np.array(pairs["aspect"].to_pylist())
    xc = np.stack([feat[c] for c in pairs["chosen"].to_pylist()])
    xr = np.stack([feat[r] for r in pairs["rejected"].to_pylist()])
    dz = (xc - xr) / (np.concatenate([xc, xr]).std(0) + 1e-6)
    t, acc = scores, {}
    for k in np.unique(asp):
        m = asp == k
        lr = LogisticRegressionCV(Cs=np.logspace(-4, 1, 12), cv=5, fit_intercept=False,
                                  max_iter=2000).fit(np.concatenate([dz[m], -dz[m]]),
                                                     np.r_[np.ones(m.sum()), np.zeros(m.sum())])
        g = dz @ lr.coef_[0]
        lab = _labels(pairs, k)
        o = (~m) & (lab != 0)
        acc[str(k)] = float(np.mean(np.sign(g[o]) == np.sign(lab[o])))
        t = t.set_column(t.column_names.index(f"gap_{k}"), f"gap_{k}", pa.array(g))
    return {"acc_other": acc, **_select(pairs, t)}


def _select(pairs, scores) -> dict:
    agree = conflict_flags(pairs) > 0
    dch = np.array([len(c) - len(r) for c, r in
                    zip(pairs["chosen"].to_pylist(), pairs["rejected"].to_pylist())], float)
    idx = {i: j for j, i in enumerate(pairs["id"].to_pylist())}
    rnd, res = agree.mean(), {}
    for fit in (True, False):
        s = select(scores, "pd", length=LengthTerm.of("none", 0.0), budget=0.3, gamma=0.95,
                   fit_length=fit, pairs=pairs)
        j = [idx[i] for i in s.selected_ids]
        res["refit" if fit else "no_refit"] = ((agree[j].mean() - rnd) / (1 - rnd),
                                               dch[j].mean() - dch.mean())
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "benchmarks/_runs/selection_quality"))
    ap.add_argument("--glob", default="pku-learned-s*")
    ap.add_argument("--backbones", nargs="*", default=["minilm", "smollm2"])
    ap.add_argument("--fine-tuned", action="store_true")
    ap.add_argument("--cache", default=str(ROOT / "benchmarks/_runs/rm_probe_study"))
    a = ap.parse_args(argv)
    runs = [d for d in sorted(Path(a.runs).glob(a.glob)) if (d / "run.json").exists()]
    if not runs:
        print(f"no finished runs matching {a.glob} under {a.runs}: run selection_quality.py first")
        return 2
    loaded = {d.name: _run(d) for d in runs}
    if a.fine_tuned:
        print("| run | aspect | acc on other aspect's pairs | n | length-only | own training pairs |")
        print("|---|---|---|---|---|---|")
        for name, (pairs, s) in loaded.items():
            asp = np.array(pairs["aspect"].to_pylist())
            dlen = np.asarray(s["chosen_len"], float) - np.asarray(s["rejected_len"], float)
            for k in np.unique(asp):
                g, lab = np.asarray(s[f"gap_{k}"]), _labels(pairs, k)
                o = (asp != k) & (lab != 0)
                print(f"| {name} | {k} | {np.mean(np.sign(g[o]) == np.sign(lab[o])):.3f} | "
                      f"{int(o.sum())} | {np.mean(np.sign(dlen[o]) == np.sign(lab[o])):.3f} | "
                      f"{np.mean(g[asp == k] > 0):.3f} |")
    texts = {}
    for pairs, _ in loaded.values():
        for p, c, r in zip(*(pairs[k].to_pylist() for k in ("prompt", "chosen", "rejected"))):
            texts[c], texts[r] = p, p
    print("\n| run | backbone | pooling | acc (other pairs) | gap closed (refit) | Δlen (refit) | "
          "gap closed (no refit) | Δlen (no refit) |")
    print("|---|---|---|---|---|---|---|---|")
    for bb in a.backbones:
        feats = features(bb, texts, Path(a.cache))
        for pooling in POOLINGS:
            for name, (pairs, s) in loaded.items():
                r = probe_row(pairs, s, feats[pooling])
                acc = " / ".join(f"{v:.3f}" for v in r["acc_other"].values())
                print(f"| {name} | {bb} | {pooling} | {acc} | {r['refit'][0]:+.3f} | "
                      f"{r['refit'][1]:+.0f} | {r['no_refit'][0]:+.3f} | {r['no_refit'][1]:+.0f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
