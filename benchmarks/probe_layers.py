"""Which layer of a frozen backbone should the head-only reward models read? (issue #11)

A study behind ``rm.backbone_layers``: for finished ``selection_quality.py`` runs of the head-only
recipe (``rm.train_backbone: false``), recompute the frozen features once for every response from
the output of *each* layer l (through the model's final norm, exactly what a backbone cut to its
first l layers returns), refit the heads with the pipeline's own fit (:func:`pdray.rm.probe.fit_head`
on the run's own fit/dev split and length feature), and measure PD's consensus precision with the
pipeline's own selector on the run's own scores table with the gap columns replaced. Layer = all
layers reproduces the run (checked and printed). Prints gap closed per layer and seed at λ = 0.3.

    python benchmarks/probe_layers.py benchmarks/_runs/selection_quality/pku-smol-probe-s{0,1,2,3,4}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from pdray.length_modes import LengthTerm


def layer_features(backbone: str, pairs: pa.Table, max_length: int, response_share: float,
                   cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled, final-normed states of every layer: (chosen, rejected), each pairs × L+1 × H."""
    if cache.exists():
        z = np.load(cache)
        return z["chosen"], z["rejected"]
    from transformers import AutoModel, AutoTokenizer

    from pdray.models.formatting import encode_reward_inputs, fix_pad_token
    from pdray.models.reward import pad_batch, token_batches

    tok = AutoTokenizer.from_pretrained(backbone)
    fix_pad_token(tok)
    model = AutoModel.from_pretrained(backbone).eval()
    prompts = pairs["prompt"].to_pylist()
    kw = {"max_length": max_length, "response_share": response_share}
    out = []
    for side in ("chosen", "rejected"):
        enc, _ = encode_reward_inputs(tok, prompts, pairs[side].to_pylist(), None, **kw)
        feats = None
        with torch.inference_mode():
            for b in token_batches([len(x) for x in enc], 8192):
                ids, mask = pad_batch([enc[i] for i in b], tok.pad_token_id)
                hs = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
                m = mask.unsqueeze(-1).float()
                layers = [model.norm(h) for h in hs[:-1]] + [hs[-1]]   # the last is normed already
                pooled = torch.stack([(h * m).sum(1) / m.sum(1) for h in layers], 1)
                if feats is None:
                    feats = np.zeros((len(enc), *pooled.shape[1:]), np.float32)
                feats[b] = pooled.numpy()
                print(f"  features ({side}): {b[-1] + 1}/{len(enc)}", flush=True, end="\r")
        out.append(feats)
    print()
    np.savez(cache, chosen=out[0], rejected=out[1])
    return out[0], out[1]


def study_run(run: Path, feats: dict, layers: list[int]) -> dict:
    """Gap closed at λ = 0.3 per layer for one finished run."""
    from transformers import AutoTokenizer

    from pdray.config import load_config
    from pdray.io import read_table
    from pdray.pipeline.config import PipelineConfig
    from pdray.rm.dataset import delta_len
    from pdray.rm.losses import fit_length_coef, length_scale, margin_for
    from pdray.rm.probe import fit_head
    from pdray.rm.train import holdout_mask, plan_units, split_dev
    from pdray.selection import select
    from pdray.selection.scores import length_term, read_scores

    sys.path.insert(0, str(Path(__file__).parent))
    from selection_quality import measure

    info = json.loads((run / "run.json").read_text())["stages"]
    cfg = load_config(PipelineConfig, str(run / "config.yaml"))
    base = measure(info, cfg)["budgets"][0.3]
    rc = cfg.rm
    pairs = read_table(info["data"]["train"])
    tok = AutoTokenizer.from_pretrained(feats["backbone"])
    hold = holdout_mask(pairs, rc.holdout_fraction, rc.seed)
    train = pairs.filter(pa.array(~hold))
    aspects = sorted(pc.unique(pairs["aspect"]).to_pylist())
    unit = plan_units(train, rc, run / "_study", tok, aspects)[0]
    fit, dev = split_dev(unit.table, rc.dev_fraction, rc.seed)
    where = feats["where"]   # (prompt, response) → (side, row): a seed's aspect can swap the sides
    scores = read_scores(info["score"]["scores"])
    term = length_term(info["score"]["scores"])
    rho, mode = term.rho, term.mode
    agree = dict(zip(pairs["id"].to_pylist(), _agree(pairs)))
    rand = float(np.mean([agree[i] > 0 for i in scores["id"].to_pylist()]))
    res = {"random": rand, "true_pd": base["true_pd"]["cp"], "run_pd": base["pd"]["cp"]}
    scale = length_scale(delta_len(tok, fit))
    text = {i: x for i, x in zip(pairs["id"].to_pylist(), _texts(pairs))}
    score_texts = [text[i] for i in scores["id"].to_pylist()]
    for layer in layers:
        def phi(prompt, response):
            side, i = where[(prompt, response)]
            return feats[side][i, layer]

        def diff(texts):
            return np.stack([phi(p, c) - phi(p, r) for p, c, r in texts])

        d_fit, d_dev = diff(_texts(fit)), diff(_texts(dev))
        m_fit = margin_for(delta_len(tok, fit), rc.rho, mode, scale)
        m_dev = margin_for(delta_len(tok, dev), rc.rho, mode, scale)
        a_fit, a_dev = np.asarray(fit["aspect"].to_pylist()), np.asarray(dev["aspect"].to_pylist())
        d_all = diff(score_texts)
        cols, dev_loss = {}, 0.0
        for a in aspects:
            f, v = a_fit == a, a_dev == a
            h = fit_head(d_fit[f], m_fit[f], d_dev[v], m_dev[v], length_debias=mode,
                         l2_grid=list(rc.head_l2), coef0=fit_length_coef(m_fit[f]))
            cols[a] = d_all.astype(np.float64) @ h.weight
            dev_loss += (h.dev_loss or 0.0) * int(v.sum())
        t = scores
        for a, g in cols.items():
            t = t.set_column(t.column_names.index(f"gap_{a}"), f"gap_{a}", pa.array(g))
        sel = select(t, "pd", length=LengthTerm.of(mode, rho), budget=0.3, gamma=cfg.select.gamma,
                     seed=cfg.select.seed, pairs=pairs)
        cp = float(np.mean([agree[i] > 0 for i in sel.selected_ids]))
        res[layer] = {"cp": cp, "gap": (cp - rand) / (res["true_pd"] - rand),
                      "dev_loss": dev_loss / max(len(a_dev), 1)}
    return res


def _texts(t: pa.Table) -> list[tuple]:
    return list(zip(*(t[c].to_pylist() for c in ("prompt", "chosen", "rejected"))))


def _agree(pairs):
    from pdray.data.stats import conflict_flags

    return conflict_flags(pairs).tolist()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--layers", default="6,9,12,15,18,21,24,27,30")
    ap.add_argument("--cache", default="benchmarks/_runs/probe_layers.npz")
    a = ap.parse_args(argv)
    from pdray.config import load_config
    from pdray.io import read_table
    from pdray.models.backbones import resolve_backbone
    from pdray.pipeline.config import PipelineConfig

    first = Path(a.runs[0])
    info = json.loads((first / "run.json").read_text())["stages"]
    cfg = load_config(PipelineConfig, str(first / "config.yaml"))
    pairs = read_table(info["data"]["train"])
    backbone = resolve_backbone(cfg.rm.backbone, first / "_study_backbone")
    ch, rj = layer_features(backbone, pairs, cfg.rm.max_length, cfg.rm.response_share,
                            Path(a.cache))
    where = {}
    for i, (p, c, r) in enumerate(_texts(pairs)):
        where[(p, c)], where[(p, r)] = ("chosen", i), ("rejected", i)
    feats = {"chosen": ch, "rejected": rj, "where": where, "backbone": backbone}
    layers = [int(x) for x in a.layers.split(",")]
    rows = []
    for run in a.runs:
        r = study_run(Path(run), feats, layers)
        rows.append(r)
        print(f"{Path(run).name}: run pd CP {r['run_pd']:.3f}, random {r['random']:.3f}, true_pd "
              f"{r['true_pd']:.3f}; " + ", ".join(f"L{l} {r[l]['gap']:+.3f}" for l in layers),
              flush=True)
    print("\n| layer | " + " | ".join(Path(r).name[-2:] for r in a.runs) + " | mean |")
    print("|---|" + "---|" * (len(a.runs) + 1))
    for l in layers:
        g = [r[l]["gap"] for r in rows]
        print(f"| {l} | " + " | ".join(f"{x:+.3f}" for x in g) + f" | **{np.mean(g):+.3f}** |")
    best = [min(layers, key=lambda l: r[l]["dev_loss"]) for r in rows]   # no labels of the test
    g = [r[b]["gap"] for r, b in zip(rows, best)]
    print("| by dev BT loss | " + " | ".join(f"{x:+.3f} (L{b})" for x, b in zip(g, best))
          + f" | **{np.mean(g):+.3f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
