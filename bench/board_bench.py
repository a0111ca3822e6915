#!/usr/bin/python3
"""The figures of one machine, for a board owner to paste into an issue (scripts/bench-board.sh
builds the programs and runs this).

On the full-size random SmolVLM2-256M (`smolvlm random-model` + `convert`: text Q8_0, Q4_0 and
Q4_K_M, mmproj F16; made in --models if missing), with --threads threads, --runs rounds, and in
each round, alternating the programs:
  - the machine's DRAM read bandwidth (`smolvlm_kernel_bench --roofline`);
  - `smolvlm bench` (no picture): decode tg, prefill pp and one random vision tile (Q8_0), and
    the decode of Q4_0 and Q4_K_M;
  - the 640x480 request (64 new tokens) through `smolvlm ask`: wall and peak RSS;
  - llama.cpp beside it where its programs are found (--llama DIR, else PATH): `llama-bench` on
    the same text files, `llama-mtmd-cli` on the same pair (wall, peak RSS, its per-tile
    "batch encoding done in N ms").
Decode gets its DRAM bound: bandwidth (median) / the weight bytes a step reads. Prints the
machine's facts and a Markdown table (medians, min-max), then the figures as JSON.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "Describe the image."
TEXT_TYPES = ("q8_0", "q4_0", "q4_k_m")


def fail(msg):
    sys.exit(f"bench-board: {msg}")


def run_rss(cmd, env=None):
    """Runs cmd; returns (stdout, stderr, wall seconds, peak RSS MB). The child's output goes to
    temporary files and it is reaped by os.wait4, which gives its own rusage (no /usr/bin/time)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        except OSError as e:
            fail(f"cannot start {cmd[0]}: {e}")
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
    if p.returncode != 0:
        fail(f"failed ({p.returncode}): {' '.join(cmd)}\n{e[-2000:]}")
    return o, e, wall, usage.ru_maxrss / 1024.0


def machine_facts():
    facts = {"arch": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    for key, name in (("Model name", "model"), ("Vendor ID", "vendor"),
                      ("Core(s) per socket", "cores_per_socket"), ("Socket(s)", "sockets"),
                      ("Cluster(s)", "clusters"), ("CPU max MHz", "max_mhz"),
                      ("L2 cache", "l2"), ("L3 cache", "l3"), ("Flags", "flags")):
        models = re.findall(rf"^\s*{re.escape(key)}:\s*(.+)$", lscpu, re.M)
        if models:
            # big.LITTLE boards list one "Model name" per cluster: keep them all.
            facts[name] = " / ".join(dict.fromkeys(m.strip() for m in models))
    # The features that pick a kernel path.
    flags = set(facts.pop("flags", "").split())
    if not flags and os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", f.read(), re.M)
            flags = set(m.group(1).split()) if m else set()
    wanted = ["asimd", "asimddp", "i8mm", "bf16", "sve", "sve2", "fphp", "asimdhp", "avx2", "fma",
              "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile"]
    facts["features"] = " ".join(f for f in wanted if f in flags)
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
        facts["memory_gb"] = round(kb / 1024 / 1024, 1)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/device-tree/model") as f:  # ARM boards name themselves here
            facts["board"] = f.read().strip("\x00\n ")
    except OSError:
        pass
    try:
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]+)', f.read(), re.M)
            facts["os"] = m.group(1) if m else ""
    except OSError:
        pass
    return facts


def gguf_pair(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".gguf"))
    mmproj = [f for f in files if f.startswith("mmproj")]
    text = [f for f in files if not f.startswith("mmproj")]
    if len(mmproj) != 1 or len(text) != 1:
        fail(f"{folder}: expected one text GGUF and one mmproj GGUF, found {files}")
    return os.path.join(folder, text[0]), os.path.join(folder, mmproj[0])


def ensure_models(smolvlm, models):
    src = os.path.join(models, "rand-256m")
    config = os.path.join(ROOT, "tests/fixtures/models/SmolVLM2-256M-Video-Instruct")
    pairs = {}
    for qtype in TEXT_TYPES:
        out = os.path.join(models, f"rand-256m-{qtype}")
        if not os.path.isdir(out):
            if not os.path.isdir(src):
                print(f"making the full-size random 256M in {src}", file=sys.stderr)
                run_rss([smolvlm, "random-model", "--config", config, "-o", src])
            print(f"converting it to {out} ({qtype})", file=sys.stderr)
            run_rss([smolvlm, "convert", src, "-o", out + ".partial", "--type", qtype,
                 "--vision-type", "f16"])
            os.rename(out + ".partial", out)
        pairs[qtype] = out
    return pairs


def find_llama(given):
    """The folder holding llama-bench / llama-mtmd-cli, or None."""
    if given:
        if not os.path.isdir(given):
            fail(f"--llama {given}: not a folder")
        return given
    exe = shutil.which("llama-bench") or shutil.which("llama-mtmd-cli")
    return os.path.dirname(exe) if exe else None


def stat(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


LABELS = [
    ("decode_tok_s", "decode tg{n}, Q8_0 (tok/s)"),
    ("prefill_tok_s", "prefill pp{p}, Q8_0 (tok/s)"),
    ("q4_decode_tok_s", "decode tg{n}, Q4_0 (tok/s)"),
    ("q4k_decode_tok_s", "decode tg{n}, Q4_K_M (tok/s)"),
    ("vision_s_per_tile", "vision, one 512x512 tile (s)"),
    ("request_wall_s", "640x480 request, {g} new tokens, wall (s)"),
    ("request_peak_rss_mb", "peak RSS of that request (MB)"),
]
LOWER_IS_BETTER = {"vision_s_per_tile", "request_wall_s", "request_peak_rss_mb"}
DECODE_KEYS = {"decode_tok_s": "q8_0", "q4_decode_tok_s": "q4_0", "q4k_decode_tok_s": "q4_k_m"}


def print_report(result):
    """The Markdown for the issue: the machine, the table, then the JSON (folded)."""
    f, work, info = result["machine"], result["work"], result
    threads, runs, quick = result["threads"], result["runs"], result["quick"]
    n_prompt, n_gen, n_answer = result["n_prompt"], result["n_gen"], result["n_answer"]
    bw = result["dram_read_gb_s"]["median"]
    llama = result["llama.cpp_folder"]
    load_before = result["load_average_before"]
    mhz = re.sub(r"[.]0+\b", "", f.get("max_mhz", ""))  # "2256.0000 / 1800.0000" (big.LITTLE)

    def cell(name, k):
        s = result[name].get(k)
        if not s:
            return "—"
        fmt = "{:.2f}" if s["median"] < 20 else "{:.0f}"
        if len(s["runs"]) == 1:
            return fmt.format(s["median"])
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"

    print("### smolvlm.cpp on " + (f.get("board") or f.get("model") or f["arch"]))
    print()
    print(f"- CPU: {f.get('model', '?')} ({f['arch']}), {f['cpus']} CPUs"
          + (f", {f['cores_per_socket']} cores a socket" if "cores_per_socket" in f else "")
          + (f", max {mhz} MHz" if mhz else "")
          + (f"; L2 {f['l2']}" if "l2" in f else "") + (f", L3 {f['l3']}" if "l3" in f else ""))
    print(f"- features: {f['features'] or '—'}; memory {f.get('memory_gb', '?')} GB; "
          f"{f.get('os', '?')}, Linux {f['kernel']}")
    print(f"- DRAM read: {bw:.1f} GB/s with {threads} threads "
          f"({result['dram_read_gb_s']['min']:.1f}–{result['dram_read_gb_s']['max']:.1f}, "
          "`smolvlm_kernel_bench --roofline`)")
    print(f"- smolvlm kernels: {info.get('kernels')}, vision {info.get('vision_precision')}; "
          f"llama.cpp: {llama or 'not found'}")
    rounds = "one round" if runs == 1 else f"medians of {runs} rounds (min–max)"
    print(f"- {threads} threads, {rounds}; load average "
          f"{load_before[0]:.1f} before, {result['load_average_after'][0]:.1f} after"
          + ("; **--quick: short runs, not figures to compare**" if quick else ""))
    print()
    print("| figure | llama.cpp | smolvlm.cpp | smolvlm / llama.cpp | DRAM bound | smolvlm / bound |")
    print("|---|---|---|---|---|---|")
    for k, label in LABELS:
        a, b = result["llama.cpp"].get(k), result["smolvlm"].get(k)
        lower = k in LOWER_IS_BETTER
        ratio = "—"
        if a and b:
            r = b["median"] / a["median"]
            ratio = f"{r:.2f}×" + (" (lower is better)" if lower else "")
        bound = share = ""
        if k in result["bounds"]:
            bound = f"≤ {result['bounds'][k]:.0f}"
            if b:
                share = f"{b['median'] / result['bounds'][k]:.0%}"
        print(f"| {label.format(n=n_gen, p=n_prompt, g=n_answer)} | {cell('llama.cpp', k)} | "
              f"{cell('smolvlm', k)} | {ratio} | {bound} | {share} |")
    print()
    print("Weights a decode step reads: " + ", ".join(
        f"{work[f'decode_weight_mb_{q}']:.1f} MB ({q})" for q in TEXT_TYPES)
        + f"; a vision tile {work['vision_gflop_per_tile']:.1f} GFLOP; the request has "
        f"{work['request_tiles']} tiles.")
    print()
    print("<details><summary>JSON</summary>\n\n```json")
    print(json.dumps(result, indent=2))
    print("```\n</details>")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-board"),
                    help="folder with smolvlm and smolvlm_kernel_bench")
    ap.add_argument("--llama", default="", help="llama.cpp's binaries (default: found on PATH)")
    ap.add_argument("--models", default=os.path.expanduser("~/.cache/smolvlm-board"),
                    help="the random GGUF pairs (made if missing)")
    ap.add_argument("--image", default=os.path.join(ROOT, "tests/fixtures/reference/proc_640x480.png"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="a check that everything runs: one round, pp64, tg16, 8 new tokens")
    ap.add_argument("--json-out", default="")
    ap.add_argument("--report", default="", help="print the Markdown again from a --json-out file")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as fh:
            print_report(json.load(fh))
        return
    if args.threads < 1 or args.runs < 1:
        fail("--threads and --runs must be at least 1")
    n_prompt, n_gen, n_answer = (64, 16, 8) if args.quick else (512, 128, 64)
    if args.quick:
        args.runs = 1

    smolvlm = os.path.join(args.build, "smolvlm")
    kernel_bench = os.path.join(args.build, "smolvlm_kernel_bench")
    for exe in (smolvlm, kernel_bench):
        if not os.access(exe, os.X_OK):
            fail(f"{exe} not found: build it first (scripts/bench-board.sh does)")
    if not os.path.exists(args.image):
        fail(f"{args.image}: no such picture")
    llama = find_llama(args.llama)
    env = dict(os.environ)
    llama_bench = mtmd = None
    if llama:
        env["LD_LIBRARY_PATH"] = llama + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        llama_bench = os.path.join(llama, "llama-bench")
        mtmd = os.path.join(llama, "llama-mtmd-cli")
        llama_bench = llama_bench if os.access(llama_bench, os.X_OK) else None
        mtmd = mtmd if os.access(mtmd, os.X_OK) else None
    pairs = ensure_models(smolvlm, args.models)
    t = str(args.threads)
    facts = machine_facts()
    load_before = os.getloadavg()

    ours = {k: [] for k, _ in LABELS}
    theirs = {k: [] for k, _ in LABELS}
    dram = []
    work = {}
    info = {}
    for rep in range(args.runs):
        print(f"round {rep + 1} of {args.runs}", file=sys.stderr)
        out, _, _, _ = run_rss([kernel_bench, "--roofline", "--threads", t, "--repeat", "3", "--json"])
        dram.append(json.loads(out)["dram_read_gb_s"])
        for qtype in TEXT_TYPES:
            key = next(k for k, v in DECODE_KEYS.items() if v == qtype)
            text, _ = gguf_pair(pairs[qtype])
            if llama_bench:
                out, _, _, _ = run_rss([llama_bench, "-m", text, "-p", str(n_prompt), "-n", str(n_gen),
                                        "-t", t, "-r", "1", "-o", "json"], env=env)
                for test in json.loads(out):
                    if test["n_gen"] == n_gen:
                        theirs[key].append(test["avg_ts"])
                    elif test["n_prompt"] == n_prompt and qtype == "q8_0":
                        theirs["prefill_tok_s"].append(test["avg_ts"])
            out, _, _, _ = run_rss([smolvlm, "bench", "-m", pairs[qtype], "-p", str(n_prompt), "-n",
                                    str(n_gen), "-t", t, "-r", "1", "--json"])
            b = json.loads(out)
            work[f"decode_weight_mb_{qtype}"] = b["decode_weight_mb_per_token"]
            ours[key].append(b["decode_tok_s"])
            if qtype == "q8_0":
                ours["prefill_tok_s"].append(b["prefill_tok_s"])
                ours["vision_s_per_tile"].append(b["vision_ms_per_tile"] / 1000.0)
                work["vision_gflop_per_tile"] = b["vision_gflop_per_tile"]
                info = {"kernels": b["kernels"], "vision_precision": b["vision_precision"]}
        text, mmproj = gguf_pair(pairs["q8_0"])
        if mtmd:
            _, err, wall, rss = run_rss([mtmd, "-m", text, "--mmproj", mmproj, "--image", args.image,
                                         "-p", PROMPT, "-n", str(n_answer), "-t", t, "--temp", "0"],
                                        env=env)
            theirs["request_wall_s"].append(wall)
            theirs["request_peak_rss_mb"].append(rss)
            tiles = [float(ms) for ms in re.findall(r"batch encoding done in (\d+) ms", err)]
            if tiles:
                theirs["vision_s_per_tile"].append(statistics.median(tiles) / 1000.0)
        out, _, wall, rss = run_rss([smolvlm, "ask", "-m", pairs["q8_0"], "-i", args.image, "-p",
                                     PROMPT, "-n", str(n_answer), "-c", "4096", "-t", t, "--json"])
        work["request_tiles"] = json.loads(out)["tiles"]
        ours["request_wall_s"].append(wall)
        ours["request_peak_rss_mb"].append(rss)

    result = {"machine": facts, "threads": args.threads, "runs": args.runs, "quick": args.quick,
              "n_prompt": n_prompt, "n_gen": n_gen, "n_answer": n_answer,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "llama.cpp_folder": llama, **info,
              "dram_read_gb_s": stat(dram), "work": work, "smolvlm": {}, "llama.cpp": {}}
    for name, figures in (("smolvlm", ours), ("llama.cpp", theirs)):
        for k, v in figures.items():
            if v:
                result[name][k] = stat(v)
    bw = result["dram_read_gb_s"]["median"]
    result["bounds"] = {k: bw * 1000.0 / work[f"decode_weight_mb_{q}"] for k, q in DECODE_KEYS.items()}

    print_report(result)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
