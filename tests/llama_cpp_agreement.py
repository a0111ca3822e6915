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
  - on a 2-layer model with an lm_head of std 2.5, `smolvlm ask` gives the same 24 greedy tokens
    as llama-server's /completion for the (file, prompt) pairs of AGREEING: F16, llama-quantize's
    Q4_K_M widened back to F32, the quantised files and our converted ones where the two readers
    agree. The other pairs part at a near tie, where the readers' activation rounding (llama.cpp
    int8 per 256 values for K-quants, we per 32) flips a choice: llama.cpp itself parts from its
    own F32 reading of the same weights in half of them (bench/kquant_vs_llamacpp.py
    --llama-float; README, "K-quants, legacy and IQ4 files").

    python3 tests/llama_cpp_agreement.py --smolvlm build/smolvlm [--llama DIR]
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = 77
PROMPTS = ["What is the capital of France?", "Write a short poem about the sea."]
QUANTIZE = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q2_K", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL"]
CONVERT = ["q3_k_m", "q4_k_m", "q4_k_s", "q5_k_s", "q6_k"]
# (made by, file, prompt index): the pairs where both readers gave the same 24 greedy tokens on
# a Zen 4 (the others part at a near tie; another CPU's kernels may part on one of these too).
# deq-kq-Q4_K_M.gguf is llama-quantize's Q4_K_M widened back to F32 by llama-quantize.
AGREEING = [
    ("quantize", "kq-F16.gguf", 0), ("quantize", "kq-F16.gguf", 1),
    ("quantize", "deq-kq-Q4_K_M.gguf", 0), ("quantize", "deq-kq-Q4_K_M.gguf", 1),
    ("quantize", "kq-Q4_K_M.gguf", 1), ("quantize", "kq-Q5_K_M.gguf", 0),
    ("quantize", "kq-Q6_K.gguf", 0), ("quantize", "kq-Q2_K.gguf", 1),
    ("quantize", "kq-Q4_1.gguf", 0), ("quantize", "kq-Q4_1.gguf", 1),
    ("quantize", "kq-Q5_0.gguf", 1), ("quantize", "kq-Q5_1.gguf", 1),
    ("quantize", "kq-IQ4_NL.gguf", 0),
    ("convert", "kq-Q4_K_M.gguf", 0), ("convert", "kq-Q4_K_M.gguf", 1),
    ("convert", "kq-Q3_K_M.gguf", 0), ("convert", "kq-Q4_K_S.gguf", 0),
    ("convert", "kq-Q5_K_S.gguf", 1), ("convert", "kq-Q6_K.gguf", 0),
]
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
    ap.add_argument("--port", type=int, default=8097)
    a = ap.parse_args()
    needed = ["llama-server", "llama-quantize", "llama-gguf"]
    if not all(os.access(os.path.join(a.llama, n), os.X_OK) for n in needed):
        print(f"SKIP: no llama.cpp binaries ({', '.join(needed)}) in {a.llama}; set LLAMA_CPP_DIR")
        return SKIP
    # A copy without the CPU variants that die here (bench/llama_cpp_dir.sh), for llama-server.
    llama = subprocess.run(["bash", os.path.join(ROOT, "bench", "llama_cpp_dir.sh"), a.llama],
                           capture_output=True, text=True).stdout.strip() or a.llama
    bench = bench_module()
    tmp = tempfile.mkdtemp(prefix="smolvlm-llama-agreement-")
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
        folders = {"quantize": gguf, "convert": converted}
        for made_by, name, k in AGREEING:
            path = os.path.join(folders[made_by], name)
            mine, err = bench.ours(a.smolvlm, path, PROMPTS[k], 24, 2)
            ref, _ = bench.theirs(os.path.join(llama, "llama-server"), path, PROMPTS[k], 24,
                                  a.port, 2)
            ok = mine is not None and mine[0].strip() == ref.strip()
            failures += not ok
            print(f"{'SAME' if ok else 'DIFF'}  ask / llama-server: {made_by} {name} {PROMPTS[k]!r}",
                  flush=True)
            if not ok:
                print(f"   ours:  {mine[0] if mine else err!r}\n   llama: {ref!r}")
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
