#!/usr/bin/env python3
"""Greedy text of `smolvlm ask` against llama-server's /completion on the same GGUF files.

For each text GGUF given (e.g. llama-quantize's Q4_K_M, Q6_K, IQ4_XS ... of one F16 file), runs
`smolvlm ask -m FILE -p PROMPT -n N --json` and llama-server (on 127.0.0.1) with the prompt our
chat template makes (SmolVLM2's "<|im_start|>User: ...<end_of_utterance>\\nAssistant:"), greedy,
and prints whether the two texts are the same, and where they part llama.cpp's top-two gap. A random
model's near ties let either reader's activation rounding flip a choice (a larger lm_head std
scales the gaps and the rounding's effect alike; README, "K-quants, legacy and IQ4 files").

    python3 bench/kquant_vs_llamacpp.py --smolvlm build-release/smolvlm \\
        --llama-server ../shared/tools/llama.cpp/llama-server kq-Q4_K_M.gguf kq-Q6_K.gguf ...

With --llama-float it compares llama-server with itself instead: each FILE against deq-FILE, the
same weights widened to F32 by `llama-quantize --allow-requantize FILE deq-FILE F32`.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request


def ours(smolvlm, model, prompt, n, threads):
    out = subprocess.run([smolvlm, "ask", "-m", model, "-p", prompt, "-n", str(n), "-t", str(threads),
                          "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
    j = json.loads(out.stdout)
    return (j["text"], j["tokens"]), None


def theirs(server, model, prompt, n, port, threads):
    proc = subprocess.Popen([server, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-t",
                             str(threads), "-c", "512", "--no-webui"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300  # a loaded machine may take a while to start it
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.2)
        body = json.dumps({"prompt": f"<|im_start|>User: {prompt}<end_of_utterance>\nAssistant:",
                           "n_predict": n, "temperature": 0, "top_k": 1, "cache_prompt": False,
                           "samplers": ["top_k"], "n_probs": 8}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/completion", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            j = json.loads(r.read())
            # Each step's chosen id, the log-probability gap between its top two, and how far
            # below the chosen one each of its top 8 is ({id: log-probability gap}).
            steps = [(p["id"], p["top_logprobs"][0]["logprob"] - p["top_logprobs"][1]["logprob"],
                      {t["id"]: p["top_logprobs"][0]["logprob"] - t["logprob"]
                       for t in p["top_logprobs"]}) for p in j["completion_probabilities"]]
            return j["content"], steps
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smolvlm")
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--prompt", action="append")
    ap.add_argument("-n", type=int, default=24)
    ap.add_argument("--port", type=int, default=8093)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--llama-float", action="store_true",
                    help="compare llama-server on each FILE with llama-server on deq-FILE beside it "
                         "(llama-quantize --allow-requantize FILE deq-FILE F32: the same weights "
                         "in float) instead of with smolvlm: how often llama.cpp's own activation "
                         "rounding flips a greedy choice")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    if not a.llama_float and not a.smolvlm:
        ap.error("--smolvlm is required (unless --llama-float)")
    prompts = a.prompt or ["What is the capital of France?", "Write a short poem about the sea."]
    same = 0
    total = 0
    for m in a.models:
        for p in prompts:
            if a.llama_float:
                folder, name = os.path.split(m)
                text, steps = theirs(a.llama_server, os.path.join(folder, "deq-" + name), p, a.n,
                                     a.port, a.threads)
                mine, err = (text, [t for t, *_ in steps]), None
            else:
                mine, err = ours(a.smolvlm, m, p, a.n, a.threads)
            try:
                ref, steps = theirs(a.llama_server, m, p, a.n, a.port, a.threads)
            except urllib.error.HTTPError as e:  # e.g. its chat-format check refusing the output
                print(f"SKIP  {m.split('/')[-1]:24s} {p[:30]!r}  llama-server: {e.read()[:100]!r}")
                continue
            total += 1
            ok = mine is not None and mine[0].strip() == ref.strip()
            same += ok
            where = ""
            if mine is not None and not ok:
                k = next((i for i, (t, *_) in enumerate(steps) if i >= len(mine[1]) or mine[1][i] != t),
                         len(steps))
                if k < len(steps):
                    where = (f"first differing token {k + 1} of {len(steps)}, where llama.cpp's top two "
                             f"are {steps[k][1]:.3f} apart in log-probability")
            print(f"{'SAME' if ok else 'DIFF'}  {m.split('/')[-1]:24s} {p[:30]!r}  {where}")
            if not ok:
                print(f"   ours:  {mine[0] if mine else None!r}{' (' + err + ')' if err else ''}\n"
                      f"   llama: {ref!r}")
    print(f"{same}/{total} the same")
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
