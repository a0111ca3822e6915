#!/usr/bin/python3
"""Makes tests/fixtures/reference/tiny22b_oracle.json and tiny22b_oracle.safetensors: what the
independent numpy oracle (shared/oracle/smolvlm2_numpy.py) computes for a tiny model with the
SmolVLM2-2.2B's geometry, for the C++ golden test tests/test_golden_22b.cpp.

The model: `smolvlm random-model --config DIR --seed 1` where DIR holds
tests/fixtures/tiny-smolvlm2-22b/*.json (the 2.2B's shape in small: patch 14 on 132-pixel tiles,
9 patches a side and 6 pixels dropped, scale 3 so 9 tokens a tile, the text head counts left out so
LlamaConfig's 32 heads and 32 KV heads (no GQA) apply with head_dim 4, rope_theta 130000, untied
lm_head, longest edge 4 tiles) and the real tokenizer of tests/fixtures/tiny-smolvlm2. The test
makes the same model the same way (random-model is deterministic), so no weights are stored.

Cases (the HF fixture's messages): text_only; image_split (img_b 300x200: 3x4 tiles + global);
image_nosplit (img_a, do_image_splitting False: one squashed tile); video (frame_0..7 at 2 fps,
4 s: eight 132-pixel frames). For each: the rendered and expanded prompt and its ids (chat template
and tokenizer: the node oracle; expansion: the numpy oracle), an FNV-1a 64 hash of each tile's
8-bit values (CHW order, recovered exactly from the normalised pixels), the image features of every
tile and the vision output of tile 0, the last prompt position's logits at up to 512 ids (its 256
largest and every 193rd id), the argmax at every prompt position, and 24 greedy ids (KV cache).
The smallest top-1/top-2 gap on the prompt and greedy paths is printed and stored: a tie that close could flip.
Seed 1 keeps every gap at 3.6e-4 or more (the engine agrees with the oracle to ~1e-6); seeds 2, 4
and 5 had ties within 2e-5.

    NODE_PATH=~/jsoracle/node_modules /usr/bin/python3 tools/make_22b_oracle_vectors.py \\
        ../shared/oracle build-release/smolvlm
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
# the oracle folder first, as tools/make_video_prompt_vectors.py (imported below) reads it
ORACLE = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../shared/oracle"))
SMOLVLM = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "../build-release/smolvlm"))
sys.path.insert(0, ORACLE)
sys.path.insert(0, HERE)
import smolvlm2_numpy as oracle  # noqa: E402
from make_video_prompt_vectors import node  # noqa: E402  (the node oracle, the same tokenizer)

FIX = os.path.join(HERE, "../tests/fixtures")
TINY = os.path.join(FIX, "tiny-smolvlm2")
CONFIG = os.path.join(FIX, "tiny-smolvlm2-22b")
SEED = 1
N_NEW = 24
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.json")


def fnv64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def tile_bytes(tile):
    """Normalised [3, T, T] float32 -> the 8-bit values it came from (exact: x = v / 127.5 - 1)."""
    v = np.rint((tile.astype(np.float64) + 1.0) * 127.5)
    assert np.all(np.abs((tile.astype(np.float64) + 1.0) * 127.5 - v) < 1e-3)
    return v.astype(np.uint8).tobytes()


def make_model(tmp):
    cfg_dir = os.path.join(tmp, "config")
    os.makedirs(cfg_dir)
    for name in os.listdir(CONFIG):
        shutil.copy(os.path.join(CONFIG, name), cfg_dir)
    for name in TOKENIZER_FILES:
        shutil.copy(os.path.join(TINY, name), cfg_dir)
    out = os.path.join(tmp, "model")
    subprocess.run([SMOLVLM, "random-model", "--config", cfg_dir, "-o", out, "--seed", str(SEED)],
                   check=True, capture_output=True)
    return out


def gaps(logits):
    """Top-1 minus top-2 at every row."""
    part = np.partition(logits, -2, axis=-1)
    return part[..., -1] - part[..., -2]


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    golden = json.load(open(os.path.join(TINY, "golden.json")))["cases"]
    pc = json.load(open(os.path.join(CONFIG, "preprocessor_config.json")))
    longest, tile = pc["size"]["longest_edge"], pc["max_image_size"]["longest_edge"]
    seq = json.load(open(os.path.join(CONFIG, "processor_config.json")))["image_seq_len"]
    with tempfile.TemporaryDirectory() as tmp:
        model = oracle.Model(make_model(tmp))
    v = model.cfg["vision"]
    assert (v["image"] // v["patch"]) ** 2 // model.cfg["scale_factor"] ** 2 == seq
    assert model.cfg["text"]["heads"] == model.cfg["text"]["kv_heads"] == 32
    assert "lm_head.weight" in model.W and not np.array_equal(model.W["lm_head.weight"],
                                                              model.W["T.embed_tokens.weight"])
    cases, tensors = [], {}
    for name, images, split in (("text_only", [], True), ("image_split", ["img_b"], True),
                                ("image_nosplit", ["img_a"], False), ("video", [], True)):
        g = golden[name]
        rendered = node("--render", [g["messages"]])[0]
        assert rendered == g["prompt"], (rendered, g["prompt"])
        grids, pixels, video = [], [], None
        for k in images:
            t, r, c = oracle.preprocess_image(Image.open(os.path.join(TINY, "images", k + ".png")),
                                              longest, tile, split)
            grids.append((r, c))
            pixels.append(t)
        if name == "video":
            frames = [Image.open(os.path.join(TINY, "images", f"frame_{i}.png")) for i in range(8)]
            pixels.append(np.stack([oracle.preprocess_video_frame(f, longest, tile) for f in frames]))
            video = ([i / 2.0 for i in range(8)], 4.0)
        prompt = oracle.expand_prompt(rendered, grids, seq, video)
        ids = node(None, [prompt])[0]
        feats = None
        case = {"name": name, "images": images, "split": split, "grids": grids,
                "prompt": rendered, "expanded_prompt": prompt, "input_ids": ids}
        if pixels:
            pv = np.concatenate(pixels).astype(np.float32)
            case["n_tiles"] = int(pv.shape[0])
            case["tile_fnv64"] = [fnv64(tile_bytes(t)) for t in pv]
            hidden0 = model.vision(pv[:1])
            feats = model.image_features(pv)
            tensors[f"{name}.vision_last_hidden0"] = hidden0[0].astype(np.float32)
            tensors[f"{name}.image_features"] = feats.astype(np.float32)
        if name == "video":
            case.update(frames=list(range(8)), timestamps=video[0], duration_s=video[1])
        logits = model.forward_ids(ids, feats)
        last = logits[-1].astype(np.float32)
        top = np.argsort(-last, kind="stable")[:256]
        pick = np.unique(np.concatenate([top, np.arange(0, last.size, 193)])).astype(np.int32)
        tensors[f"{name}.logits_ids"] = pick
        tensors[f"{name}.logits_values"] = last[pick]
        tensors[f"{name}.argmax_all"] = np.argmax(logits, -1).astype(np.int32)
        new = model.greedy(ids, feats, N_NEW)
        # the greedy path's own logits, to see how close each choice was
        path_logits = model.forward_ids(ids + new[:-1], feats)[len(ids) - 1:]
        assert list(np.argmax(path_logits, -1)) == new, "greedy with and without the KV cache differ"
        case["greedy_new_ids"] = new
        case["min_gap_prompt"] = float(gaps(logits).min())
        case["min_gap_greedy"] = float(gaps(path_logits).min())
        cases.append(case)
        print(f"{name}: {len(ids)} ids, {case.get('n_tiles', 0)} tiles, greedy {new[:6]}..., "
              f"smallest gap prompt {case['min_gap_prompt']:.3g} greedy {case['min_gap_greedy']:.3g}",
              file=sys.stderr)
    out = os.path.join(FIX, "reference")
    with open(os.path.join(out, "tiny22b_oracle.json"), "w") as f:
        json.dump({"generator": "tools/make_22b_oracle_vectors.py", "seed": SEED,
                   "config": "tests/fixtures/tiny-smolvlm2-22b", "tokenizer_files": TOKENIZER_FILES,
                   "image_seq_len": seq, "cases": cases}, f, indent=1)
        f.write("\n")
    write_safetensors(os.path.join(out, "tiny22b_oracle.safetensors"), tensors)


if __name__ == "__main__":
    main()
