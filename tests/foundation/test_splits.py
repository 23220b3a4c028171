"""Seeded key-hash splits (reward-model held-out prompts, the pipeline's test split)."""

import numpy as np
import pyarrow as pa

from pdray.splits import hash_holdout, hash_uniforms


def test_hash_uniforms_are_pinned_and_order_free():
    u = hash_uniforms(["a", "b", "p-17"], "rm0")
    # BLAKE2b-64("rm0:a") / 2**64 …: a change here reshuffles every stored split
    np.testing.assert_allclose(u, [0.859593679519033, 0.8046974384751484, 0.4678748602587165],
                               rtol=0, atol=1e-15)
    assert list(hash_uniforms(["p-17", "a"], "rm0")) == [u[2], u[0]]
    assert hash_uniforms(["a"], "rm1")[0] != u[0]  # the salt (seed) matters


def test_hash_holdout_fraction_and_equal_keys():
    keys = [f"id{i}" for i in range(4000)] + ["id7"] * 3
    mask = hash_holdout(keys, 0.2, "0")
    assert 0.18 < mask[:4000].mean() < 0.22
    assert len(set(mask[[7, 4000, 4001, 4002]])) == 1  # the same key, the same side
    assert not hash_holdout(keys, 0.0, "0").any() and hash_holdout(keys, 1.0, "0").all()


def test_pipeline_and_rm_splits_use_it():
    from pdray.data.stage import split_holdout
    from pdray.rm.train import holdout_mask

    t = pa.table({"id": [f"id{i}" for i in range(50)], "prompt": [f"p{i % 10}" for i in range(50)]})
    train, test = split_holdout(t, 0.3, seed=5)
    want = hash_holdout(t["id"].to_pylist(), 0.3, "5")
    assert test["id"].to_pylist() == [i for i, m in zip(t["id"].to_pylist(), want) if m]
    assert train.num_rows + test.num_rows == 50
    m = holdout_mask(t, 0.5, seed=3)
    by_prompt = {}
    for p, x in zip(t["prompt"].to_pylist(), m):
        by_prompt.setdefault(p, set()).add(bool(x))
    assert all(len(v) == 1 for v in by_prompt.values())  # a prompt never straddles the split
