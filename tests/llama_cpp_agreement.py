#!/usr/bin/env python3
"""smolvlm.cpp against llama.cpp's own tools on the K-quant files people download (ctest
LlamaCppAgreement; exit status 77, a skip, where llama.cpp's binaries are not in $LLAMA_CPP_DIR or
../shared/tools/llama.cpp beside the repository).

Random models with 256-wide text rows (so that every matrix takes K-quants) are made by
`smolvlm random-model` from the tiny fixture's config, converted to F16 by `smolvlm convert`, and
quantised by llama.cpp's `llama-quantize`. Checked:
  - `smolvlm convert --type q4_k_m|q4_k_s|q5_k_m|q5_k_s|q6_k|q3_k_m|q2_k` picks, tensor by
    tensor, the types (so the bytes per tensor) llama-quantize picks for the same mix, on a
    24-layer model with 4 query heads per KV head;
  - on a 2-layer model with an lm_head of std 2.5, `smolvlm ask` follows llama-server's
    /completion greedy tokens for every (file, prompt) pair: F16, llama-quantize's Q4_K_M widened
    back to F32, each llama-quantize type and each of our converted mixes, two prompts. Either the
    24 tokens are the same, or they part at a near tie: where llama.cpp ranks our token less than
    NEAR_TIE below its own choice in log-probability. The readers round activations differently before their integer products (llama.cpp
    to int8 per 256 values for K-quants, per 32 with an f16 scale for the legacy types; we per 32
    with a float scale, and int8 prefill panels on the VNNI paths), and on a random model such a
    rounding flips near ties: llama.cpp itself changes its greedy text in half the pairs when it
    reads the same weights in F32 (bench/kquant_vs_llamacpp.py --llama-float; README, "K-quants,
    legacy and IQ4 files"). A misread weight instead moves every logit by about their spread
    (~40 here): it parts at the first tokens onto a token llama.cpp ranks far below (median top-two
    gap ~7), or not in its top 8 at all.

    python3 tests/llama_cpp_agreement.py --smolvlm build/smolvlm [--llama DIR]
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = 77
PROMPTS = ["What is the capital of France?", "Write a short poem about the sea."]
QUANTIZE = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q2_K", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL"]
CONVERT = ["q3_k_m", "q4_k_m", "q4_k_s", "q5_k_s", "q6_k"]
# A near tie: our token less than this below llama.cpp's choice in its log-probabilities. Its
# median top-two gap on this model is about 7; a rounding of the activations moves the top few
# by about 1 (README), and every parting seen so far was at a gap under 2.
NEAR_TIE = 3.0
MIXES = ["q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k"]


def bench_module():
    spec = importlib.util.spec_from_file_location(
        "kquant_vs_llamacpp", os.path.join(ROOT, "bench", "kquant_vs_llamacpp.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def tensor_sizes(llama, path):
    """name -> bytes of each tensor, as llama-gguf lists them (the type decides the size)."""
    out = run([os.path.join(llama, "llama-gguf"), path, "r", "n"])
    return dict(re.findall(r"tensor\[\d+\]: name = (\S+), size = (\d+)", out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smolvlm", required=True)
    ap.add_argument("--llama", default=os.environ.get(
        "LLAMA_CPP_DIR", os.path.join(os.path.dirname(ROOT), "shared", "tools", "llama.cpp")))
    ap.add_argument("--port", type=int, default=0, help="llama-server's port (default: a free one)")
    a = ap.parse_args()
    needed = ["llama-server", "llama-quantize", "llama-gguf"]
    if not all(os.access(os.path.join(a.llama, n), os.X_OK) for n in needed):
        print(f"SKIP: no llama.cpp binaries ({', '.join(needed)}) in {a.llama}; set LLAMA_CPP_DIR")
        return SKIP
    # A copy without the CPU variants that die here (bench/llama_cpp_dir.sh), for llama-server.
    llama = subprocess.run(["bash", os.path.join(ROOT, "bench", "llama_cpp_dir.sh"), a.llama],
                           capture_output=True, text=True).stdout.strip() or a.llama
    bench = bench_module()
    if not a.port:  # a free port, so that two runs on one machine do not meet
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            a.port = sock.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="smolvlm-llama-agreement-")
    # Our decode panels (Q4_0, Q4_K) of these throwaway models go with them, not to the user's
    # cache folder.
    os.environ["SMOLVLM_CACHE_DIR"] = os.path.join(tmp, "panel-cache")
    try:
        def make_model(label, text_config, extra):
            """A random model folder and its F16 GGUF from the tiny fixture's config."""
            cfg = os.path.join(tmp, label + "-cfg")
            shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "tiny-smolvlm2"), cfg,
                            ignore=shutil.ignore_patterns("*.safetensors*", "golden*", "images"))
            with open(os.path.join(cfg, "config.json")) as f:
                config = json.load(f)
            config["text_config"].update(text_config)
            with open(os.path.join(cfg, "config.json"), "w") as f:
                json.dump(config, f, indent=2)
            model = os.path.join(tmp, label)
            run([a.smolvlm, "random-model", "--config", cfg, "-o", model, "--seed", "1"] + extra)
            run([a.smolvlm, "convert", model, "-o", os.path.join(tmp, label + "-gguf"), "--type",
                 "f16", "--name", "kq"])
            return model, os.path.join(tmp, label + "-gguf")

        def quantize(gguf, q):
            run([os.path.join(a.llama, "llama-quantize"), os.path.join(gguf, "kq-F16.gguf"),
                 os.path.join(gguf, f"kq-{q}.gguf"), q])

        wide = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, head_dim=64)
        failures = 0
        # The mixes' per-tensor types: 24 layers (the layer-dependent rules) and 4 query heads
        # per KV head (Q2_K's attn_v rule).
        model, gguf = make_model("deep", dict(wide, num_hidden_layers=24, num_key_value_heads=1), [])
        ours_dir = os.path.join(tmp, "ours")
        for mix in MIXES:
            quantize(gguf, mix.upper())
            run([a.smolvlm, "convert", model, "-o", ours_dir, "--type", mix, "--name", "kq"])
            name = f"kq-{mix.upper()}.gguf"
            mine = tensor_sizes(a.llama, os.path.join(ours_dir, name))
            theirs = tensor_sizes(a.llama, os.path.join(gguf, name))
            differ = sorted(t for t in theirs if mine.get(t) != theirs[t])
            ok = not differ and mine.keys() == theirs.keys()
            failures += not ok
            print(f"{'SAME' if ok else 'DIFF'}  convert --type {mix}: per-tensor types as "
                  f"llama-quantize's{'' if ok else ' except ' + ', '.join(differ)}", flush=True)
        # Greedy text: 2 layers, peaky logits.
        model, gguf = make_model("peaky", dict(wide, num_key_value_heads=2),
                                 ["--lm-head-std", "2.5"])
        for q in QUANTIZE:
            quantize(gguf, q)
        run([os.path.join(a.llama, "llama-quantize"), "--allow-requantize",
             os.path.join(gguf, "kq-Q4_K_M.gguf"), os.path.join(gguf, "deq-kq-Q4_K_M.gguf"), "F32"])
        converted = os.path.join(tmp, "peaky-ours")
        for mix in CONVERT:
            run([a.smolvlm, "convert", model, "-o", converted, "--type", mix, "--name", "kq"])
        pairs = [(gguf, "kq-F16.gguf"), (gguf, "deq-kq-Q4_K_M.gguf")]
        pairs += [(gguf, f"kq-{q}.gguf") for q in QUANTIZE]
        pairs += [(converted, f"kq-{mix.upper()}.gguf") for mix in CONVERT]
        same = followed = 0
        for folder, name in pairs:
            made_by = "quantize" if folder == gguf else "convert"
            for prompt in PROMPTS:
                path = os.path.join(folder, name)
                mine, err = bench.ours(a.smolvlm, path, prompt, 24, 2)
                ref, steps = bench.theirs(os.path.join(llama, "llama-server"), path, prompt, 24,
                                          a.port, 2)
                label = f"{made_by} {name} {prompt!r}"
                if mine is None:
                    failures += 1
                    print(f"FAIL  {label}: smolvlm ask failed: {err}")
                    continue
                ids = mine[1]
                k = next((i for i, (t, *_) in enumerate(steps) if i >= len(ids) or ids[i] != t),
                         None)
                if k is None and len(ids) == len(steps):
                    same += 1
                    print(f"SAME  {label}", flush=True)
                    continue
                # How far below llama.cpp's choice it ranks ours (inf: not in its top 8).
                below = float("inf")
                if k is not None and k < len(steps) and k < len(ids):
                    below = steps[k][2].get(ids[k], float("inf"))
                ok = below < NEAR_TIE
                failures += not ok
                followed += ok
                print(f"{'TIE ' if ok else 'DIFF'}  {label}: parts at token {(k or 0) + 1} of "
                      f"{len(steps)}, where llama.cpp ranks our token {below:.3f} below its "
                      "choice in log-probability", flush=True)
                if not ok:
                    print(f"   ours:  {mine[0]!r}\n   llama: {ref!r}")
        print(f"{same} pairs the same, {followed} parting at a near tie, "
              f"{failures} failures")
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
