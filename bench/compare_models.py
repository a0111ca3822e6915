#!/usr/bin/python3
"""smolvlm.cpp beside llama.cpp per model size and GGUF type: same files, same machine, one run.

For a full-size random SmolVLM2 (256M or 2.2B, from the config in tests/fixtures/models/) and each
text type asked for (q8_0, q4_0, q4_k_m, q5_k_m, q6_k, ...: `smolvlm convert --type`, which picks
llama-quantize's per-tensor types), measures, alternating the two programs round by round:
  - text decode (tg128) and prefill (pp512): `llama-bench` and `smolvlm bench` (no picture);
  - a vision tile: `smolvlm bench`'s random tile and llama-mtmd-cli's "batch encoding done in
    N ms" per tile of the picture request;
  - the 640x480 request (64 new tokens): `llama-mtmd-cli` and `smolvlm ask`, wall and peak RSS
    from /usr/bin/time -v;
  - the DRAM read bandwidth with the same threads (`smolvlm_kernel_bench --roofline`), in each
    round, and so each decode figure's share of the bound (bandwidth ÷ weight bytes a step).
Models are made when missing (`smolvlm random-model` + `convert`, mmproj F16), under --models.
Every figure is the median of --runs rounds (min–max beside it). Prints a Markdown table, then
the figures as JSON (also to --json-out). bench/compare_llamacpp.py is the 256M Q8_0/Q4_0 table
with the targets of the speed issues; this one is the family and the quantisations.
"""

import argparse
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_llamacpp import ensure_models, gguf_pair, llama_cpp_setup, run, stat, time_v  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "Describe the image."
CONFIGS = {
    "256m": "SmolVLM2-256M-Video-Instruct",
    "500m": "SmolVLM2-500M-Video-Instruct",
    "2.2b": "SmolVLM2-2.2B-Instruct",
}
FIGURES = [  # key, label, format
    ("decode_tok_s", "decode tg128 (tok/s)", "{:.1f}"),
    ("decode_share_of_dram", "decode: weights read ÷ DRAM read of the round", "{:.0%}"),
    ("prefill_tok_s", "prefill pp512 (tok/s)", "{:.1f}"),
    ("vision_s_per_tile", "vision, one tile (s)", "{:.2f}"),
    ("request_wall_s", "640x480 request, 64 new tokens, wall (s)", "{:.1f}"),
    ("request_peak_rss_mb", "peak RSS of that request (MB)", "{:.0f}"),
]
LOWER_IS_BETTER = {"vision_s_per_tile", "request_wall_s", "request_peak_rss_mb"}


def config_dir(size, given):
    """The config folder random-model reads: --config, else the project's copy when it holds a
    tokenizer, else ../shared/models/ (the 2.2B's tokenizer is kept there, not in the repo)."""
    if given:
        return given
    for base in (os.path.join(ROOT, "tests/fixtures/models"), os.path.join(ROOT, "../shared/models")):
        folder = os.path.join(base, CONFIGS[size])
        if os.path.isfile(os.path.join(folder, "tokenizer.json")):
            return folder
    sys.exit(f"no config folder with a tokenizer.json for {CONFIGS[size]}: give --config DIR")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="smolvlm build folder")
    ap.add_argument("--llama", default="/work/shared/tools/llama.cpp", help="llama.cpp binaries")
    ap.add_argument("--models", default="/tmp/smolvlm-bench-models", help="GGUF pairs (made if missing)")
    ap.add_argument("--model-size", choices=sorted(CONFIGS), default="256m")
    ap.add_argument("--config", default="", help="config + tokenizer folder for random-model")
    ap.add_argument("--types", default="q8_0,q4_k_m", help="text GGUF types, comma-separated")
    ap.add_argument("--request-types", default="",
                    help="types that also run the picture request (default: all of --types)")
    ap.add_argument("--image", default=os.path.join(ROOT, "tests/fixtures/reference/proc_640x480.png"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512, help="prefill tokens")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--skip-request", action="store_true", help="no picture requests (quick)")
    ap.add_argument("--isa", choices=("native", "avx2"), default="native",
                    help="avx2: both programs on their AVX2 code (smolvlm's avx2 path, llama.cpp's haswell variant)")
    args = ap.parse_args()
    types = [t for t in args.types.split(",") if t]
    request_types = [t for t in args.request_types.split(",") if t] or types
    if args.skip_request:
        request_types = []

    smolvlm = os.path.join(args.build, "smolvlm")
    kernel_bench = os.path.join(args.build, "smolvlm_kernel_bench")
    args.llama, env, ours_env = llama_cpp_setup(args.llama, args.isa)
    llama_bench = os.path.join(args.llama, "llama-bench")
    mtmd = os.path.join(args.llama, "llama-mtmd-cli")
    pairs = ensure_models(smolvlm, args.models, args.model_size, types,
                          config_dir(args.model_size, args.config))
    t, p = str(args.threads), str(args.prompt)
    load_before = os.getloadavg()

    names = ("smolvlm", "llama.cpp")
    figures = {n: {q: {k: [] for k, _, _ in FIGURES} for q in types} for n in names}
    dram, step_mb, info, tiles = [], {}, {}, {}
    for rep in range(args.runs):
        out, _ = run([kernel_bench, "--roofline", "--threads", t, "--repeat", "3", "--json"])
        dram.append(json.loads(out)["dram_read_gb_s"])
        for qtype in types:
            text, mmproj = gguf_pair(pairs[qtype])
            ours, theirs = figures["smolvlm"][qtype], figures["llama.cpp"][qtype]
            out, _ = run([llama_bench, "-m", text, "-p", p, "-n", "128", "-t", t, "-r", "1",
                          "-o", "json"], env=env)
            for test in json.loads(out):
                key = "decode_tok_s" if test["n_gen"] == 128 else "prefill_tok_s"
                theirs[key].append(test["avg_ts"])
            out, _ = run([smolvlm, "bench", "-m", pairs[qtype], "-p", p, "-n", "128", "-t", t,
                          "-r", "1", "--json"], env=ours_env)
            b = json.loads(out)
            ours["decode_tok_s"].append(b["decode_tok_s"])
            ours["prefill_tok_s"].append(b["prefill_tok_s"])
            ours["vision_s_per_tile"].append(b["vision_ms_per_tile"] / 1000.0)
            step_mb[qtype] = b["decode_weight_mb_per_token"]
            info = {"kernels": b["kernels"], "vision_precision": b["vision_precision"]}
            for fig in (ours, theirs):  # the weights a step reads against this round's DRAM read
                fig["decode_share_of_dram"].append(fig["decode_tok_s"][-1] * step_mb[qtype] / 1000.0 / dram[-1])
            if qtype not in request_types:
                continue
            _, err = run([mtmd, "-m", text, "--mmproj", mmproj, "--image", args.image, "-p", PROMPT,
                          "-n", "64", "-t", t, "--temp", "0"], env=env, timed=True)
            wall, rss = time_v(err)
            theirs["request_wall_s"].append(wall)
            theirs["request_peak_rss_mb"].append(rss)
            per_tile = [float(ms) for ms in re.findall(r"batch encoding done in (\d+) ms", err)]
            if per_tile:
                theirs["vision_s_per_tile"].append(statistics.median(per_tile) / 1000.0)
            out, err = run([smolvlm, "ask", "-m", pairs[qtype], "-i", args.image, "-p", PROMPT, "-n",
                            "64", "-c", "4096", "-t", t, "--json"], env=ours_env, timed=True)
            wall, rss = time_v(err)
            tiles[qtype] = json.loads(out)["tiles"]
            ours["request_wall_s"].append(wall)
            ours["request_peak_rss_mb"].append(rss)
        print(f"round {rep + 1}/{args.runs} done", file=sys.stderr)

    load_after = os.getloadavg()
    result = {"model_size": args.model_size, "types": types, "threads": args.threads, "runs": args.runs,
              "isa": args.isa, "prompt_tokens": args.prompt, "load_average_before": load_before,
              "load_average_after": load_after, "dram_read_gb_s": stat(dram),
              "decode_weight_mb_per_token": step_mb, "request_tiles": tiles, **info}
    for n in names:
        result[n] = {q: {k: stat(v) for k, v in figs.items() if v} for q, figs in figures[n].items()}

    def cell(n, q, k, fmt):
        s = result[n][q].get(k)
        if not s:
            return "—"
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"

    print(f"SmolVLM2-{args.model_size.upper()} (random weights, full size), {args.threads} threads, "
          f"prefill {args.prompt} tokens, medians of {args.runs} rounds (min–max); smolvlm kernels "
          f"{info.get('kernels')}, vision {info.get('vision_precision')}, mmproj F16"
          + (f"; llama.cpp {args.llama} (haswell variant only)" if args.isa == "avx2" else "")
          + f"; DRAM read {result['dram_read_gb_s']['median']:.1f} GB/s; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after\n")
    print("| type | figure | llama.cpp | smolvlm.cpp | smolvlm better by (>1: better) |")
    print("|---|---|---|---|---|")
    for q in types:
        for k, label, fmt in FIGURES:
            a, b = result["llama.cpp"][q].get(k), result["smolvlm"][q].get(k)
            if not a and not b:
                continue
            ratio = "—"
            if a and b and k != "decode_share_of_dram":
                r = b["median"] / a["median"]
                # How many times better ours is: for times and memory, llama.cpp's ÷ ours.
                ratio = f"{1 / r:.2f}×" if k in LOWER_IS_BETTER else f"{r:.2f}×"
            print(f"| {q} | {label} | {cell('llama.cpp', q, k, fmt)} | {cell('smolvlm', q, k, fmt)} | {ratio} |")
    print()
    print(json.dumps(result, indent=2))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
