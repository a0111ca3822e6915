#!/usr/bin/env bash
# Sets up (packages, build) and answers a question about the example picture.
# Uses the real model in models/SmolVLM2-256M-Video-Instruct (or $SMOLVLM_MODEL), pulling it from
# Hugging Face (HF_ENDPOINT, HF_TOKEN honoured) when it is not there yet; where the network is
# closed, says so in one line and runs the tiny test model, which runs the same code but answers
# with random words.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target smolvlm
model=${SMOLVLM_MODEL:-models/SmolVLM2-256M-Video-Instruct}
# A folder is complete when it has its config and no partial downloads (pull writes FILE.part).
have_model() { [ -f "$1/config.json" ] && ! compgen -G "$1/*.part" >/dev/null; }
if ! have_model "$model" && [ -z "${SMOLVLM_MODEL:-}" ]; then
  # A quick look at the hub's file list first, so a closed network costs one line, not a traceback.
  repo=HuggingFaceTB/SmolVLM2-256M-Video-Instruct
  if why=$(./build/smolvlm pull "$repo" --list 2>&1 >/dev/null); then
    ./build/smolvlm pull "$repo" --dir "$model" || echo "note: the download stopped; run 'bash scripts/demo.sh' again to resume it" >&2
  else
    echo "note: cannot download the model (${why#smolvlm: error: }); running the offline demo on the tiny test model instead, whose answers are random words" >&2
  fi
fi
if ! have_model "$model"; then
  have_model tests/fixtures/tiny-smolvlm2 || exit 1
  [ -z "${SMOLVLM_MODEL:-}" ] || echo "note: no model at $model; using the tiny test model, whose answers are random words" >&2
  model=tests/fixtures/tiny-smolvlm2
fi
./build/smolvlm ask -m "$model" -i examples/shapes.jpg -p "Describe the image." -n 64
