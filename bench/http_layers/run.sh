#!/usr/bin/env bash
# The measurement that chose smolvlm serve's HTTP layer (README, "HTTP as clients speak it"):
# the same eight client behaviours sent by probe.py to an echo server (1 MB body limit) on each
# HTTP layer Debian ships: cpp-httplib, Boost.Beast's parser, GNU libmicrohttpd.
#   bash bench/http_layers/run.sh     (needs libcpp-httplib-dev, libboost-dev, libmicrohttpd-dev)
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -O1 -std=c++20 echo_httplib.cpp -o "$out/httplib" $(pkg-config --cflags --libs cpp-httplib) -lpthread
g++ -O1 -std=c++20 echo_beast.cpp -o "$out/beast" -lpthread
g++ -O1 -std=c++20 echo_microhttpd.cpp -o "$out/microhttpd" $(pkg-config --cflags --libs libmicrohttpd)
port=${PORT:-18700}
for layer in httplib beast microhttpd; do
  "$out/$layer" "$port" &
  pid=$!
  sleep 0.5
  echo "== $layer"
  python3 probe.py "$port" "$pid" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  port=$((port + 1))
done
