#!/usr/bin/env bash
# Sets up (packages, build) and answers a question about the example picture.
# Uses the real model in models/SmolVLM2-256M-Video-Instruct (or $SMOLVLM_MODEL) when present;
# otherwise the tiny test model, which runs the same code but answers with random words.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target smolvlm
model=${SMOLVLM_MODEL:-models/SmolVLM2-256M-Video-Instruct}
if [ ! -f "$model/config.json" ]; then
  echo "note: no model at $model (README: 'Getting the real model'); using the tiny test model, whose answers are random words" >&2
  model=tests/fixtures/tiny-smolvlm2
fi
./build/smolvlm ask -m "$model" -i examples/shapes.jpg -p "Describe the image." -n 64
