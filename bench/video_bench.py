#!/usr/bin/python3
"""The video benchmark of issue 15: `smolvlm ask --video` on a 10 s 720p H.264 clip at the model's
defaults (10 frames), beside what its parts cost alone in the same run.

  budget = 10 x one 512x512 tile's encode + prefill of the video prompt + decode of N tokens

(the tile, prefill and decode figures from `smolvlm bench` on the same model and threads). The
request's wall time (the process's, less its model load) should stay within the budget, and the
video decoding within 10% of the wall. Prints a table and, with --json, one JSON object. Medians
of --runs runs.

    /usr/bin/python3 bench/video_bench.py -m /tmp/rand-256m [--smolvlm build/smolvlm] [-t 2]

Needs Debian's python3-av (PyAV) with libx264 to write the clip (or give one with --clip).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def write_clip(path, seconds=10, fps=30, width=1280, height=720):
    import av
    import numpy as np
    with av.open(path, "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "medium"}
        yy, xx = np.mgrid[0:height, 0:width]
        for k in range(seconds * fps):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = (xx * 255 // width + 3 * k) % 256
            img[..., 1] = (yy * 255 // height) % 256
            img[..., 2] = (k * 8) % 256
            x0 = (k * 13) % (width - 200)
            img[200:400, x0:x0 + 200] = 255  # a moving block
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def run_json(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = (time.perf_counter() - t) * 1000.0
    if r.returncode != 0:
        sys.exit(f"video_bench: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout), wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--smolvlm", default="build/smolvlm")
    ap.add_argument("--clip", help="a video to use instead of the generated 10 s 720p clip")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-n", "--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clip = a.clip
        if not clip:
            clip = os.path.join(tmp, "clip720.mp4")
            print("video_bench: writing a 10 s 1280x720 30 fps H.264 clip ...", file=sys.stderr)
            write_clip(clip)
        asks = []
        for r in range(a.runs):
            print(f"video_bench: ask --video, run {r + 1}/{a.runs} ...", file=sys.stderr)
            j, wall = run_json([a.smolvlm, "ask", "-m", a.model, "--video", clip, "-p",
                                "What happens in this video?", "-n", str(a.tokens), "-t",
                                str(a.threads), "--json"])
            j["request_ms"] = wall - j["timings"]["load_ms"]
            asks.append(j)
        prompt_tokens = asks[0]["prompt_tokens"]
        frames = asks[0]["tiles"]
        print("video_bench: smolvlm bench (tile, prefill, decode) ...", file=sys.stderr)
        b, _ = run_json([a.smolvlm, "bench", "-m", a.model, "-p", str(prompt_tokens), "-n",
                         str(a.tokens), "-t", str(a.threads), "-r", str(a.runs), "--json"])

    def med(key):
        return statistics.median(x["timings"][key] if key in x["timings"] else x[key]
                                 for x in asks)

    def bench_figure(name):
        v = b[name]
        return v["median"] if isinstance(v, dict) else v

    tile_ms = bench_figure("vision_ms_per_tile")
    prefill_ms = prompt_tokens * 1000.0 / bench_figure("prefill_tok_s")
    decode_ms = a.tokens * 1000.0 / bench_figure("decode_tok_s")
    budget_ms = 10 * tile_ms + prefill_ms + decode_ms
    request_ms = med("request_ms")
    video_decode_ms = med("video_decode_ms")
    out = {
        "clip": a.clip or "generated 10 s 1280x720 30 fps H.264 (libx264 medium)",
        "threads": a.threads, "runs": a.runs, "frames": frames, "prompt_tokens": prompt_tokens,
        "new_tokens": a.tokens,
        "request_ms": request_ms, "video_decode_ms": video_decode_ms,
        "vision_ms": med("vision_ms"), "prefill_ms": med("prefill_ms"), "decode_ms": med("decode_ms"),
        "decode_share": video_decode_ms / request_ms,
        "alone": {"tile_ms": tile_ms, "prefill_ms": prefill_ms, "decode_ms": decode_ms},
        "budget_ms": budget_ms, "within_budget": request_ms <= budget_ms,
        "request_runs_ms": [x["request_ms"] for x in asks],
    }
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print(f"| figure (median of {a.runs}) | ms |")
    print("|---|---|")
    print(f"| video decode ({frames} frames) | {video_decode_ms:.0f} |")
    print(f"| vision ({frames} tiles, pipelined with decoding) | {out['vision_ms']:.0f} |")
    print(f"| prefill ({prompt_tokens} tokens) | {out['prefill_ms']:.0f} |")
    print(f"| decode ({a.tokens} tokens) | {out['decode_ms']:.0f} |")
    print(f"| **request wall** (process less model load) | **{request_ms:.0f}** |")
    print(f"| budget: 10 x tile {tile_ms:.0f} + prefill {prefill_ms:.0f} + decode {decode_ms:.0f}"
          f" (smolvlm bench) | {budget_ms:.0f} |")
    print(f"\nvideo decoding {100 * out['decode_share']:.1f}% of the wall (target <= 10%); "
          f"wall / budget {request_ms / budget_ms:.3f} (target <= 1)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
