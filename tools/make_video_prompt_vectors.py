#!/usr/bin/python3
"""Makes tests/fixtures/reference/video_prompts.json: the prompt HF gives SmolVLM2 for a 10-frame
and a 64-frame video, and its token ids, from the two independent oracles in shared/oracle:

  * the chat template rendered by the node oracle (js_tokenizer_oracle.mjs --render, HF's
    template and jinja), with the video branch ("User: <video>...");
  * the <video> placeholder expanded as HF's SmolVLM processor does (smolvlm2_numpy.expand_prompt:
    "You are provided the following series of {N in words} frames ...", "\\nFrame from MM:SS:"
    and 64 image tokens per frame);
  * the frame indices by HF's sample_frames (tools/hf_sample_frames.py), timestamps index / fps;
  * the ids by the node oracle's tokenizer (HF tokenizers' rules, incl. the Unicode-digit fix).

Run (once, after npm install of the oracle's two packages, see its header):
    NODE_PATH=~/jsoracle/node_modules /usr/bin/python3 tools/make_video_prompt_vectors.py \\
        ../shared/oracle
The tests never call Python or node; they read what this writes.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../shared/oracle"))
sys.path.insert(0, ORACLE)
sys.path.insert(0, HERE)
import smolvlm2_numpy as oracle  # noqa: E402

from hf_sample_frames import sample_frames  # noqa: E402

TOKENIZER_DIR = os.path.join(HERE, "../tests/fixtures/tiny-smolvlm2")  # the real tokenizer
IMAGE_SEQ_LEN = 64  # the real 256M/500M models: (512 / 16)² / 4²
QUESTION = "What happens in this video?"
CASES = [  # name, total frames, native fps: at HF's defaults (1 fps, at most 64, skip 1 s)
    ("ten_frames", 300, 30.0),     # 10 s at 30 fps: 10 frames
    ("sixty_four_frames", 3000, 30.0),  # 100 s: 64 frames, 1 s skipped at each end
]


def node(mode, value):
    out = subprocess.run(
        ["node", os.path.join(ORACLE, "js_tokenizer_oracle.mjs"), "--model", TOKENIZER_DIR] +
        ([mode] if mode else []),
        input=json.dumps(value), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    rendered = node("--render", [[{"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": QUESTION}]}]])[0]
    cases = []
    for name, total, fps in CASES:
        indices = [int(i) for i in sample_frames(total, fps, 1.0, 64, 1.0)]
        timestamps = [i / fps for i in indices]
        duration = total / fps
        prompt = oracle.expand_prompt(rendered, [], IMAGE_SEQ_LEN, (timestamps, duration))
        ids = node(None, [prompt])[0]
        cases.append({"name": name, "total_frames": total, "native_fps": fps, "indices": indices,
                      "timestamps": timestamps, "duration_s": duration, "question": QUESTION,
                      "image_seq_len": IMAGE_SEQ_LEN, "rendered_template": rendered,
                      "prompt": prompt, "input_ids": ids})
        print(f"{name}: {len(indices)} frames, {len(ids)} ids", file=sys.stderr)
    path = os.path.join(HERE, "../tests/fixtures/reference/video_prompts.json")
    with open(path, "w") as f:
        json.dump({"generator": "tools/make_video_prompt_vectors.py", "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
