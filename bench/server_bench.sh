#!/usr/bin/env bash
# smolvlm serve beside llama.cpp's llama-server on the same GGUF pair, measured by
# build/smolvlm_server_bench (bench/server_bench.cpp): first-request TTFT (and `smolvlm ask`'s in
# the same run), a follow-up about the same picture, 1 vs 4 parallel streams.
#   bash bench/server_bench.sh MODEL_GGUF_DIR PICTURE [THREADS] [TOKENS]
# MODEL_GGUF_DIR holds one text GGUF and one *mmproj*.gguf (smolvlm convert makes such a pair).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model GGUF folder}; picture=${2:?picture}; threads=${3:-2}; tokens=${4:-64}
# A folder of llama.cpp binaries whose CPU variant runs here (see llama_cpp_dir.sh).
llama=$(bash bench/llama_cpp_dir.sh "${LLAMA_CPP_DIR:-/work/shared/tools/llama.cpp}")
text=$(ls "$model"/*.gguf | grep -v mmproj | head -1)
mmproj=$(ls "$model"/*mmproj*.gguf | head -1)
port_ours=${PORT_OURS:-18080}; port_llama=${PORT_LLAMA:-18081}

wait_ready() {  # url
  for _ in $(seq 600); do
    if curl -sf "$1/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "server at $1 did not come up" >&2; return 1
}

echo "== smolvlm serve ($text + $mmproj, $threads threads)"
./build/smolvlm serve -m "$text" --mmproj "$mmproj" --port "$port_ours" --parallel 4 -t "$threads" -c 4096 >/tmp/smolvlm-serve.log 2>&1 &
ours=$!
trap 'kill $ours 2>/dev/null || true' EXIT
wait_ready "http://127.0.0.1:$port_ours"
./build/smolvlm_server_bench --url "http://127.0.0.1:$port_ours" --image "$picture" -n "$tokens" \
  --ask "./build/smolvlm ask -m $text --mmproj $mmproj -t $threads -c 4096"
kill -INT $ours; wait $ours || true

if [ -x "$llama/llama-server" ]; then
  echo "== llama-server (same files, -np 4, $threads threads)"
  "$llama/llama-server" -m "$text" --mmproj "$mmproj" --port "$port_llama" -t "$threads" -np 4 \
    -c 16384 --no-webui >/tmp/llama-server.log 2>&1 &
  theirs=$!
  trap 'kill $theirs 2>/dev/null || true' EXIT
  wait_ready "http://127.0.0.1:$port_llama"
  ./build/smolvlm_server_bench --url "http://127.0.0.1:$port_llama" --image "$picture" -n "$tokens"
  kill $theirs; wait $theirs || true
fi
