#!/usr/bin/python3
"""Makes tests/fixtures/reference/video_oracle_cases.json: the tiny model's answer to a video, end
to end (frames -> pixel values -> features -> 24 greedy ids), computed by the independent numpy
oracle (shared/oracle/smolvlm2_numpy.py) for frame samplings the HF fixture does not cover.

The frames are the golden video case's eight 120x80 frames (tests/fixtures/tiny-smolvlm2/images/
frame_K.png, "a video" at 2 fps, 4 s); the C++ test writes them into a lossless FFV1 file and reads
it back through the engine. Cases:
  * hf_golden_8: all 8 frames (the HF fixture's case): a self-check, the oracle must give HF's ids;
  * one_fps: HF's sample_frames at 1 fps (the model's default): frames 0, 2, 4, 7;
  * max_three: 2 fps capped at 3 frames: frames 0, 3, 7.
Prompt: the node oracle's chat template render + the numpy oracle's <video> expansion, tokenised by
the node oracle. Pixels: the oracle's preprocess_video_frame (PIL bicubic, as the engine).

    NODE_PATH=~/jsoracle/node_modules /usr/bin/python3 tools/make_video_oracle_vectors.py ../shared/oracle
"""
import json
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../shared/oracle"))
sys.path.insert(0, ORACLE)
sys.path.insert(0, HERE)
import smolvlm2_numpy as oracle  # noqa: E402
from hf_sample_frames import sample_frames  # noqa: E402
from make_video_prompt_vectors import node  # noqa: E402  (the node oracle, the same tokenizer)

TINY = os.path.join(HERE, "../tests/fixtures/tiny-smolvlm2")
QUESTION = "What happens in this video?"
N_NEW = 24


def main():
    cfg = json.load(open(os.path.join(TINY, "preprocessor_config.json")))
    longest, tile = cfg["size"]["longest_edge"], cfg["max_image_size"]["longest_edge"]
    model = oracle.Model(TINY)
    golden = json.load(open(os.path.join(TINY, "golden.json")))["cases"]["video"]
    # the image tokens per frame, as the HF fixture's expansion writes them
    seq = golden["expanded_prompt"].split("<global-img>")[1].split("<fake_token_around_image>")[0] \
        .count("<image>")
    rendered = node("--render", [[{"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": QUESTION}]}]])[0]
    assert rendered == golden["prompt"], (rendered, golden["prompt"])
    frames = [Image.open(os.path.join(TINY, "images", f"frame_{k}.png")) for k in range(8)]
    native_fps, total = 2.0, 8
    cases = []
    for name, fps, max_frames in (("hf_golden_8", None, None), ("one_fps", 1.0, 64),
                                  ("max_three", 2.0, 3)):
        if fps is None:
            indices = list(range(total))
        else:
            indices = [int(i) for i in sample_frames(total, native_fps, fps, max_frames, 1.0)]
        timestamps = [i / native_fps for i in indices]
        prompt = oracle.expand_prompt(rendered, [], seq, (timestamps, total / native_fps))
        ids = node(None, [prompt])[0]
        pixels = np.stack([oracle.preprocess_video_frame(frames[i], longest, tile) for i in indices])
        feats = model.image_features(pixels)
        new = model.greedy(ids, feats, N_NEW)
        if name == "hf_golden_8":
            assert ids == json.loads(golden["input_ids"]) if isinstance(golden["input_ids"], str) \
                else ids == golden["input_ids"], "input ids differ from HF's"
            assert new == golden["greedy_new_ids"], f"oracle {new} vs HF {golden['greedy_new_ids']}"
        cases.append({"name": name, "fps": fps or native_fps, "max_frames": max_frames or 64,
                      "indices": indices, "timestamps": timestamps, "input_ids": ids,
                      "greedy_new_ids": new})
        print(f"{name}: frames {indices}, {len(ids)} ids, greedy {new[:6]}...", file=sys.stderr)
    path = os.path.join(HERE, "../tests/fixtures/reference/video_oracle_cases.json")
    with open(path, "w") as f:
        json.dump({"generator": "tools/make_video_oracle_vectors.py", "question": QUESTION,
                   "native_fps": native_fps, "total_frames": total, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
