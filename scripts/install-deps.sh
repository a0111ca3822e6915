#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages smolvlm.cpp builds and tests with (needs root or sudo).
set -euo pipefail
pkgs=(cmake g++ make pkg-config libjpeg62-turbo-dev libpng-dev nlohmann-json3-dev libgtest-dev
      libwebp-dev libgif-dev libtiff-dev libavif-dev libheif-dev  # WebP, GIF, TIFF, AVIF, HEIC
      libcurl4-openssl-dev  # smolvlm pull, and remote pictures for smolvlm serve
      libboost-dev          # smolvlm serve: HTTP by Boost.Beast's parser (header-only)
      libcpp-httplib-dev    # the HTTP client of the server's tests, load tool and benchmark
      libcurl4-openssl-dev  # smolvlm pull
      # video input (src/video) and smolvlm watch's cameras (libavdevice)
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libavdevice-dev
      python3-av python3-numpy  # tests: what HF's PyAV backend reads, HF's sampling formula
      python3-pil           # tests: the pictures of every format and their pixels as Pillow reads them
      python3-jsonschema    # tests: structured outputs' answers validated against their schemas
      clang                 # scripts/fuzz.sh: libFuzzer targets for the file parsers
      clang-format          # CI checks every C++ file's formatting
      chromium              # the web page's browser tests (tests/webui, headless)
      nginx-light           # tests/scaleout: nginx in front of two servers (docs/deploy.md)
      # optional: RK35llm.h's cv::Mat interface and its seed-compatibility test program
      libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev)
# Ubuntu names libjpeg-turbo's dev package libjpeg-turbo8-dev; plain libjpeg-dev works on both.
if ! apt-cache show libjpeg62-turbo-dev >/dev/null 2>&1; then pkgs=("${pkgs[@]/libjpeg62-turbo-dev/libjpeg-dev}"); fi
# node and npm drive the browser tests; a node from elsewhere (nodesource) already carries npm.
if ! command -v npm >/dev/null 2>&1; then pkgs+=(nodejs npm); fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# playwright-core and axe-core for the browser tests, at the versions package-lock.json pins (no
# browser download: the tests drive Debian's chromium).
npm ci --prefix "$(dirname "$0")/../tests/webui" --no-audit --no-fund --loglevel=error
