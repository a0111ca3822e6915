#!/usr/bin/env python3
"""llama.cpp's grammar sampler on the same files as smolvlm_structured_bench (bench/README.md).

Starts llama-server on a text GGUF, then for each schema of bench/structured-decode-schemas.json
runs greedy rounds that alternate a /completion with "json_schema" (llama.cpp converts it to a GBNF
grammar and samples under it) and one without for as many tokens, and compares the medians of
llama.cpp's own timings.predicted_per_second. Prints a table, then one JSON object.

  bench/structured_llamacpp.py --model TEXT.gguf [--threads 2] [--runs 5] [-n 64]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# The SmolVLM2 chat template around the same question as smolvlm_structured_bench's.
PROMPT = "<|im_start|>User: Describe the scene as JSON.<end_of_utterance>\nAssistant:"


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="the text GGUF (smolvlm convert's)")
    ap.add_argument("--llama", default=None, help="llama.cpp's folder (bench/llama_cpp_dir.sh)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--port", type=int, default=18093)
    ap.add_argument("--schemas", default=os.path.join(HERE, "structured-decode-schemas.json"))
    args = ap.parse_args()
    llama = args.llama or subprocess.run(["bash", os.path.join(HERE, "llama_cpp_dir.sh")],
                                         capture_output=True, text=True, check=True).stdout.strip()
    server = os.path.join(llama, "llama-server")
    if not os.path.exists(server):
        sys.exit(f"no llama-server in {llama}")
    log = open("/tmp/structured-llama-server.log", "w")
    proc = subprocess.Popen([server, "-m", args.model, "--port", str(args.port), "-t",
                             str(args.threads), "-c", "2048", "-np", "1", "--no-webui"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None:
                sys.exit("llama-server stopped: see /tmp/structured-llama-server.log")
            time.sleep(0.5)
        schemas = json.load(open(args.schemas))
        # Greedy, as smolvlm_structured_bench: choosing a token costs the same with and without.
        common = {"prompt": PROMPT, "temperature": 0.0, "cache_prompt": False}
        post(base + "/completion", {**common, "n_predict": 8, "seed": 0})  # warm up
        rows = []
        print(f"llama.cpp {os.path.basename(llama)}: {args.runs} rounds, -n {args.n}, "
              f"{args.threads} threads")
        print(f"{'schema':36} {'tokens':>7} {'with tok/s':>10} {'free tok/s':>10} {'ratio':>8}")
        for s in schemas:
            with_tps, free_tps, ntok, error = [], [], [], None
            for r in range(args.runs):
                try:
                    w = post(base + "/completion", {**common, "n_predict": args.n, "seed": r + 1,
                                                    "json_schema": s["schema"]})
                except urllib.error.HTTPError as e:
                    error = e.read().decode(errors="replace")[:200]
                    break
                n = max(1, w["timings"]["predicted_n"])
                f = post(base + "/completion", {**common, "n_predict": n, "seed": r + 1})
                with_tps.append(w["timings"]["predicted_per_second"])
                free_tps.append(f["timings"]["predicted_per_second"])
                ntok.append(n)
            if error:
                print(f"{s['name']:36} refused: {error}")
                rows.append({"name": s["name"], "error": error})
                continue
            wm, fm = statistics.median(with_tps), statistics.median(free_tps)
            print(f"{s['name']:36} {statistics.mean(ntok):7.1f} {wm:10.1f} {fm:10.1f} "
                  f"{100 * wm / fm:7.1f}%")
            rows.append({"name": s["name"], "mean_tokens": statistics.mean(ntok),
                         "decode_tok_s_with_median": wm, "decode_tok_s_free_median": fm,
                         "ratio": wm / fm, "with_tok_s": with_tps, "free_tok_s": free_tps})
        print(json.dumps({"llama_cpp": llama, "model": args.model, "threads": args.threads,
                          "runs": args.runs, "n_predict": args.n, "decode": rows}))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
