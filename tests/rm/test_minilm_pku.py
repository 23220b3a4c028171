"""Real-backbone check: MiniLM-L6 (from its PyPI package) helpfulness and harmlessness reward
models on real PKU-SafeRLHF pairs, trained concurrently on Ray Train, evaluated on held-out pairs
(prompts never seen in training). The fuller run is benchmarks/rm_accuracy.py.

Measured with this CI-sized budget (~206 pairs per aspect, 13 steps of 16, 128 tokens, about
2 min on 2 busy cores): helpfulness 0.591 at lr 3e-4 (the setting here; one-sided p 0.055 on 88
held-out pairs), 0.648 and 0.545 in two runs at lr 1e-4 (training is not bit-reproducible across
thread counts); harmlessness 0.44-0.48. Harmlessness on this 500-row sample is hard for MiniLM-L6: the safer response is
longer only 51.8 % of the time (no length cue), only 48 rows have exactly one safe response, and
a linear probe on frozen MiniLM features reaches 0.49 held out. So helpfulness must beat chance
here; harmlessness is trained, evaluated and printed, and must not look broken (> 0.35).
"""

import math

import pytest

from pdray.data.pku import load_pku_saferlhf
from pdray.rm import RMConfig, train_reward_models


def binom_tail(k: int, n: int) -> float:
    """P(X ≥ k) for X ~ Binomial(n, 1/2): how likely a coin does at least this well."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_minilm_reward_models_beat_chance_on_pku(ray_local, shared_data, tmp_path):
    pairs = load_pku_saferlhf(str(shared_data / "preference" / "pku_saferlhf_500.jsonl")).table
    assert pairs.num_rows == 1000                  # two pairs per source row, one per aspect
    cfg = RMConfig(backbone="minilm", sample_ratio=0.5, epochs=1, lr=3e-4, batch_size=16,
                   scheduler="cosine", warmup_ratio=0.1, max_length=128, holdout_fraction=0.2,
                   cpus_per_worker=0.9)
    s = train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=print)
    own = s.extra["metrics"]["own"]
    floor = {"helpfulness": 0.5, "harmlessness": 0.35}
    for a in ("helpfulness", "harmlessness"):
        acc, n = own[a]["heldout_accuracy"], own[a]["n"]
        p = binom_tail(round(acc * n), n)
        print(f"MiniLM {a}: held-out accuracy {acc:.3f} on n={n} pairs (one-sided p vs chance "
              f"{p:.3f}), margin~Δlen corr {own[a]['margin_dlen_corr']:+.3f}")
        assert n >= 60
        assert acc > floor[a], f"{a}: held-out accuracy {acc:.3f} on {n} pairs (need > {floor[a]})"
    print("cross-aspect accuracy:", s.extra["metrics"]["cross_accuracy"])
