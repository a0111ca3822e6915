#!/usr/bin/python3
"""Makes the image test vectors in tests/fixtures/images/ with Pillow (the reference).

Run with Debian's Python and Pillow 9.4 (apt-get install python3-pil python3-numpy):
    /usr/bin/python3 tools/make_image_vectors.py
The tests never call Python; they read what this writes:

  resize_cases.json + resize_expected.bin
      PIL Image.resize(..., LANCZOS / BICUBIC) of synthetic RGB pictures. The sources are made by a
      tiny generator (kinds "noise", "blocks", "gradient" from a 32-bit LCG) that the C++ test
      re-implements, so only the expected outputs are stored: raw RGB bytes in resize_expected.bin
      (offset/nbytes) for small outputs, an FNV-1a 64 hash of the bytes for large ones.

  decode/*.png, decode/*.jpg + decode_cases.json
      Files in many PNG/JPEG variants and the RGB pixels transformers' SmolVLM processor sees for
      each: mode "RGB" as decoded; any other mode convert("RGBA"), alpha_composite over opaque white,
      convert("RGB") (HF convert_to_rgb). Pixels as hex ("rgb_hex") or FNV-1a 64 ("fnv64").
      PNGs are written by a small encoder here (every colour type, bit depth, tRNS, Adam7) and some
      by Pillow itself (adaptive row filters); JPEGs by Pillow (libjpeg-turbo).
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "images")
DEC = os.path.join(OUT, "decode")

MAX_RAW = 24 * 1024  # outputs above this many bytes are stored as a hash


def fnv64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def fnv64_np(a: np.ndarray) -> str:
    # Same as fnv64, vectorised over nothing (it is inherently serial) but fine for a few MB.
    return fnv64(a.tobytes())


class Lcg:
    """x <- x * 1664525 + 1013904223 (mod 2^32); a byte is the top 8 bits."""

    def __init__(self, seed):
        self.x = seed & 0xFFFFFFFF

    def byte(self):
        self.x = (self.x * 1664525 + 1013904223) & 0xFFFFFFFF
        return self.x >> 24

    def bytes(self, n):
        out = np.empty(n, dtype=np.uint8)
        x = self.x
        for i in range(n):
            x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
            out[i] = x >> 24
        self.x = x
        return out


def make_source(kind, w, h, seed):
    """Must match make_source() in tests/test_image.cpp."""
    if kind == "noise":
        return Lcg(seed).bytes(w * h * 3).reshape(h, w, 3)
    if kind == "blocks":  # 3x3 blocks of random colours, block-row-major
        bw, bh = (w + 2) // 3, (h + 2) // 3
        cols = Lcg(seed).bytes(bw * bh * 3).reshape(bh, bw, 3)
        ys, xs = np.arange(h) // 3, np.arange(w) // 3
        return cols[ys][:, xs]
    if kind == "gradient":
        a = np.zeros((h, w, 3), dtype=np.uint8)
        for y in range(h):
            for x in range(w):
                a[y, x, 0] = (x * 255) // max(w - 1, 1)
                a[y, x, 1] = (y * 255) // max(h - 1, 1)
                a[y, x, 2] = ((x + y) * 7 + seed) & 255
        return a
    raise ValueError(kind)


def resize_cases():
    cases = []
    small = [
        # (kind, seed, sw, sh, dw, dh)
        ("noise", 1, 37, 23, 64, 40),      # up
        ("noise", 2, 37, 23, 13, 9),       # down
        ("blocks", 3, 64, 48, 17, 31),     # down x, up y
        ("gradient", 4, 40, 30, 128, 96),  # x3.2 up, like img_d
        ("noise", 5, 1, 1, 5, 7),          # 1-pixel source
        ("noise", 6, 1, 9, 4, 3),
        ("blocks", 7, 9, 1, 9, 5),         # width unchanged: vertical pass only
        ("blocks", 8, 20, 20, 20, 7),      # vertical pass only
        ("blocks", 9, 20, 20, 7, 20),      # horizontal pass only
        ("noise", 10, 23, 17, 23, 17),     # same size: a copy
        ("noise", 11, 50, 40, 1, 1),       # to one pixel
        ("gradient", 12, 7, 5, 1, 8),
        ("blocks", 13, 300, 200, 64, 64),  # strong down-scale, like a global tile
        ("noise", 14, 33, 33, 32, 34),     # scales near 1
        ("blocks", 15, 101, 3, 17, 60),
        ("noise", 16, 5, 200, 3, 11),      # x66 down vertically
        ("gradient", 17, 64, 64, 256, 2),
    ]
    large = [
        ("blocks", 21, 640, 480, 2048, 1536),
        ("noise", 22, 2048, 1536, 512, 512),
        ("blocks", 23, 120, 80, 256, 170),
        ("noise", 24, 1000, 3, 3, 1000),
        ("gradient", 25, 300, 200, 256, 170),
    ]
    blob = bytearray()
    for filt, pil_filter in (("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC)):
        for kind, seed, sw, sh, dw, dh in small + large:
            src = make_source(kind, sw, sh, seed)
            out = np.asarray(Image.fromarray(src, "RGB").resize((dw, dh), resample=pil_filter))
            data = out.tobytes()
            case = {"filter": filt, "kind": kind, "seed": seed, "src": [sw, sh], "dst": [dw, dh]}
            if len(data) <= MAX_RAW:
                case["offset"] = len(blob)
                case["nbytes"] = len(data)
                blob += data
            else:
                case["fnv64"] = fnv64(data)
            cases.append(case)
    with open(os.path.join(OUT, "resize_expected.bin"), "wb") as f:
        f.write(blob)
    with open(os.path.join(OUT, "resize_cases.json"), "w") as f:
        json.dump({"generator": "tools/make_image_vectors.py", "pillow": Image.__version__,
                   "cases": cases}, f, indent=1)
    print("resize: %d cases, %d raw bytes" % (len(cases), len(blob)))


# --------------------------------------------------------------------------------- PNG encoder
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(tag, data):
    c = struct.pack(">I", len(data)) + tag + data
    return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """samples: 1-D ints (all channels of one row, interleaved)."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if bit_depth == 8:
        return bytes(int(v) for v in samples)
    per = 8 // bit_depth
    out = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        grp = list(samples[i:i + per]) + [0] * (per - len(samples[i:i + per]))
        for v in grp:
            byte = (byte << bit_depth) | int(v)
        out.append(byte)
    return bytes(out)


def write_png(path, pixels, color_type, bit_depth, plte=None, trns=None, interlace=False):
    """pixels: array [h, w, channels] of raw sample values."""
    h, w = pixels.shape[:2]
    ch = CHANNELS[color_type]
    assert pixels.shape[2] == ch
    raw = bytearray()
    if not interlace:
        for y in range(h):
            raw += b"\x00" + pack_row(pixels[y].reshape(-1), bit_depth)
    else:
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for y in range(sub.shape[0]):
                raw += b"\x00" + pack_row(sub[y].reshape(-1), bit_depth)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                      1 if interlace else 0))
    if plte is not None:
        png += chunk(b"PLTE", bytes(int(v) for v in np.asarray(plte).reshape(-1)))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def hf_rgb(path):
    """What transformers' SmolVLM image processor works on for Image.open(path)."""
    im = Image.open(path)
    im.load()
    if im.mode == "RGB":
        return np.asarray(im)
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255))
    return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))


def decode_cases():
    os.makedirs(DEC, exist_ok=True)
    rng = np.random.default_rng(1234)
    W, H = 17, 13
    cases = []

    def add(name, note):
        path = os.path.join(DEC, name)
        rgb = hf_rgb(path)
        mode = Image.open(path).mode
        case = {"file": "decode/" + name, "w": int(rgb.shape[1]), "h": int(rgb.shape[0]),
                "pil_mode": mode, "note": note}
        data = rgb.tobytes()
        if len(data) <= 2048:
            case["rgb_hex"] = data.hex()
        else:
            case["fnv64"] = fnv64(data)
        cases.append(case)

    def samples(bits, shape):
        return rng.integers(0, 1 << bits, size=shape, dtype=np.int64)

    # Greyscale, every bit depth.
    for bits in (1, 2, 4, 8, 16):
        write_png(os.path.join(DEC, "g%d.png" % bits), samples(bits, (H, W, 1)), 0, bits)
        add("g%d.png" % bits, "grey %d-bit" % bits)
    # 16-bit grey with small values too (PIL clips mode I to 255 on conversion).
    g16 = samples(9, (H, W, 1))
    write_png(os.path.join(DEC, "g16_small.png"), g16, 0, 16)
    add("g16_small.png", "grey 16-bit, values 0..511")
    # Grey with a tRNS colour key.
    g8 = samples(8, (H, W, 1))
    g8[::3, ::2] = 77
    write_png(os.path.join(DEC, "g8_trns.png"), g8, 0, 8, trns=struct.pack(">H", 77))
    add("g8_trns.png", "grey 8-bit, tRNS key 77")
    g2 = samples(2, (H, W, 1))
    write_png(os.path.join(DEC, "g2_trns.png"), g2, 0, 2, trns=struct.pack(">H", 2))
    add("g2_trns.png", "grey 2-bit, tRNS key 2 (PIL compares the scaled value: never matches)")
    g1 = samples(1, (H, W, 1))
    write_png(os.path.join(DEC, "g1_trns0.png"), g1, 0, 1, trns=struct.pack(">H", 0))
    add("g1_trns0.png", "grey 1-bit, tRNS key 0")
    g16t = samples(8, (H, W, 1))
    g16t[1::2, ::3] = 100
    write_png(os.path.join(DEC, "g16_trns.png"), g16t, 0, 16, trns=struct.pack(">H", 100))
    add("g16_trns.png", "grey 16-bit, tRNS key 100")
    # Grey + alpha.
    for bits in (8, 16):
        px = samples(bits, (H, W, 2))
        px[0, :, 1] = 0
        px[1, :, 1] = (1 << bits) - 1
        write_png(os.path.join(DEC, "ga%d.png" % bits), px, 4, bits)
        add("ga%d.png" % bits, "grey+alpha %d-bit" % bits)
    # RGB.
    for bits in (8, 16):
        write_png(os.path.join(DEC, "rgb%d.png" % bits), samples(bits, (H, W, 3)), 2, bits)
        add("rgb%d.png" % bits, "RGB %d-bit" % bits)
    rgbt = samples(8, (H, W, 3))
    rgbt[2, 3] = (10, 20, 30)
    write_png(os.path.join(DEC, "rgb8_trns.png"), rgbt, 2, 8, trns=struct.pack(">HHH", 10, 20, 30))
    add("rgb8_trns.png", "RGB 8-bit with tRNS key (HF keeps RGB as is)")
    # RGBA.
    for bits in (8, 16):
        px = samples(bits, (H, W, 4))
        px[0, :, 3] = 0
        px[1, :, 3] = (1 << bits) - 1
        write_png(os.path.join(DEC, "rgba%d.png" % bits), px, 6, bits)
        add("rgba%d.png" % bits, "RGBA %d-bit" % bits)
    # Palette.
    for bits in (1, 2, 4, 8):
        n = 1 << bits
        plte = rng.integers(0, 256, size=(n, 3))
        write_png(os.path.join(DEC, "p%d.png" % bits), samples(bits, (H, W, 1)), 3, bits, plte=plte)
        add("p%d.png" % bits, "palette %d-bit" % bits)
    plte = rng.integers(0, 256, size=(256, 3))
    alphas = bytes(int(v) for v in rng.integers(0, 256, size=256))
    write_png(os.path.join(DEC, "p8_trns.png"), samples(8, (H, W, 1)), 3, 8, plte=plte, trns=alphas)
    add("p8_trns.png", "palette 8-bit, an alpha per entry")
    plte = rng.integers(0, 256, size=(16, 3))
    write_png(os.path.join(DEC, "p4_trns_short.png"), samples(4, (H, W, 1)), 3, 4, plte=plte,
              trns=bytes([0, 128, 255, 7, 200]))
    add("p4_trns_short.png", "palette 4-bit, tRNS shorter than PLTE")
    write_png(os.path.join(DEC, "p4_trns_one.png"), samples(4, (H, W, 1)), 3, 4, plte=plte,
              trns=bytes([255, 255, 0]))
    add("p4_trns_one.png", "palette 4-bit, one transparent entry")
    plte6 = rng.integers(0, 256, size=(6, 3))
    write_png(os.path.join(DEC, "p4_short_plte.png"), samples(4, (H, W, 1)), 3, 4, plte=plte6)
    add("p4_short_plte.png", "palette 4-bit, indices past PLTE's 6 entries")
    # Adam7.
    write_png(os.path.join(DEC, "rgb8_i.png"), samples(8, (H, W, 3)), 2, 8, interlace=True)
    add("rgb8_i.png", "RGB 8-bit interlaced")
    write_png(os.path.join(DEC, "p2_i.png"), samples(2, (H, W, 1)), 3, 2,
              plte=rng.integers(0, 256, size=(4, 3)), interlace=True)
    add("p2_i.png", "palette 2-bit interlaced")
    write_png(os.path.join(DEC, "ga16_i.png"), samples(16, (H, W, 2)), 4, 16, interlace=True)
    add("ga16_i.png", "grey+alpha 16-bit interlaced")
    write_png(os.path.join(DEC, "g1_i.png"), samples(1, (3, 5, 1)), 0, 1, interlace=True)
    add("g1_i.png", "grey 1-bit interlaced 5x3 (some passes empty)")
    # Every alpha against assorted colours: 256 x 64 RGBA.
    ya, xa = np.mgrid[0:64, 0:256]
    allalpha = np.stack([(ya * 4) & 255, (255 - ya * 4) & 255, (ya * 37 + 11) & 255, xa], axis=2)
    write_png(os.path.join(DEC, "rgba_all_alphas.png"), allalpha, 6, 8)
    add("rgba_all_alphas.png", "RGBA 8-bit, every alpha over 64 colours")

    # Pillow-written PNGs (adaptive row filters).
    base = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    base[:, :8] = (np.arange(8)[None, :, None] * 30).astype(np.uint8)  # smooth part
    rgb_im = Image.fromarray(base, "RGB")
    rgb_im.save(os.path.join(DEC, "pil_rgb.png"))
    add("pil_rgb.png", "RGB by Pillow")
    rgb_im.convert("L").save(os.path.join(DEC, "pil_l.png"))
    add("pil_l.png", "L by Pillow")
    rgba = np.concatenate([base, rng.integers(0, 256, size=(H, W, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(os.path.join(DEC, "pil_rgba.png"))
    add("pil_rgba.png", "RGBA by Pillow")
    Image.fromarray(rgba, "RGBA").convert("LA").save(os.path.join(DEC, "pil_la.png"))
    add("pil_la.png", "LA by Pillow")
    pim = rgb_im.quantize(colors=12)
    pim.save(os.path.join(DEC, "pil_p.png"))
    add("pil_p.png", "P by Pillow")
    pim.save(os.path.join(DEC, "pil_p_trns.png"), transparency=3)
    add("pil_p_trns.png", "P by Pillow, transparency index 3")

    # JPEG (Pillow / libjpeg-turbo), a smooth picture with some texture; odd sizes.
    def photo(w, h, seed):
        r = np.random.default_rng(seed)
        y, x = np.mgrid[0:h, 0:w]
        a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                      (x * y) % 256], axis=2).astype(np.int64)
        a += r.integers(-20, 21, size=a.shape)
        return np.clip(a, 0, 255).astype(np.uint8)

    jp = Image.fromarray(photo(W, H, 1), "RGB")
    jpeg_variants = [
        ("j420.jpg", dict(quality=85, subsampling=2), "baseline 4:2:0"),
        ("j444.jpg", dict(quality=92, subsampling=0), "baseline 4:4:4"),
        ("j422.jpg", dict(quality=75, subsampling=1), "baseline 4:2:2"),
        ("j420_prog.jpg", dict(quality=85, subsampling=2, progressive=True), "progressive 4:2:0"),
        ("j444_opt.jpg", dict(quality=60, subsampling=0, optimize=True), "optimised Huffman"),
    ]
    for name, kw, note in jpeg_variants:
        jp.save(os.path.join(DEC, name), "JPEG", **kw)
        add(name, "JPEG " + note)
    jp.convert("L").save(os.path.join(DEC, "jgrey.jpg"), "JPEG", quality=90)
    add("jgrey.jpg", "JPEG greyscale")
    jp.convert("CMYK").save(os.path.join(DEC, "jcmyk.jpg"), "JPEG", quality=90)
    add("jcmyk.jpg", "JPEG CMYK (Adobe)")
    big = Image.fromarray(photo(333, 251, 2), "RGB")
    big.save(os.path.join(DEC, "j420_big_prog.jpg"), "JPEG", quality=80, subsampling=2,
             progressive=True)
    add("j420_big_prog.jpg", "JPEG progressive 4:2:0, 333x251")
    big.save(os.path.join(DEC, "j420_big.jpg"), "JPEG", quality=85, subsampling=2)
    add("j420_big.jpg", "JPEG baseline 4:2:0, 333x251")

    with open(os.path.join(OUT, "decode_cases.json"), "w") as f:
        json.dump({"generator": "tools/make_image_vectors.py", "pillow": Image.__version__,
                   "cases": cases}, f, indent=1)
    print("decode: %d cases" % len(cases))


def main():
    os.makedirs(OUT, exist_ok=True)
    which = sys.argv[1:] or ["resize", "decode"]
    if "resize" in which:
        resize_cases()
    if "decode" in which:
        decode_cases()


if __name__ == "__main__":
    main()
