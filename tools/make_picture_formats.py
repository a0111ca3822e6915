"""Writes small pictures of every format and variant smolvlm decodes besides JPEG and PNG (WebP,
GIF, BMP, TIFF), with what HF's loader sees for each: convert_to_rgb(Image.open(path)) with this
machine's Pillow (Debian's /usr/bin/python3, Pillow 9.4). tests/test_picture_formats.cpp runs it
at test time and compares the engine's pixels with these, byte for byte.

    /usr/bin/python3 tools/make_picture_formats.py OUT_DIR

OUT_DIR/manifest.json lists {"file", "w", "h", "note"}; OUT_DIR/<file>.rgb holds the expected
pixels (RGB, rows top first). Pillow writes what it can; the variants it cannot write (4-bit,
16-bit, RLE and bit-field BMPs, top-down and OS/2 BMPs, GIFs with a frame offset or indices past
the palette, 16-bit RGB TIFFs) are written here byte by byte, and Pillow reads them back for the
reference like any other file.
"""
import io
import json
import os
import struct
import sys

import numpy as np
from PIL import Image


def hf_rgb(im):
    """transformers' convert_to_rgb: RGB as it is, anything else over opaque white."""
    if im.mode == "RGB":
        return im
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def pattern(w, h, seed, alpha=False):
    """A picture with edges, gradients and noise (lossy codecs have something to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = ((x // 4 + y // 4) % 2 * 200 + rng.integers(0, 40, (h, w))).astype(np.uint8)
    chans = [r, g, b]
    if alpha:
        a = ((x + y) * 255 // max(w + h - 2, 1)).astype(np.uint8)
        a[: h // 3, : w // 3] = 0
        a[h // 3 : 2 * h // 3, : w // 3] = 255
        chans.append(a)
    return np.stack(chans, axis=-1)


def bmp_file(w, h, bits, pixel_rows, palette=None, compression=0, header=40, masks=None,
             top_down=False, palette_entry=4, colors=None):
    """A BMP: pixel_rows is the pixel data as stored (bottom-up unless top_down)."""
    pal = b""
    if palette is not None:
        for (r, g, b) in palette:
            pal += bytes([b, g, r]) + (b"\0" if palette_entry == 4 else b"")
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hh = (2**32 - h) if top_down else h
        ncolors = colors if colors is not None else (len(palette) if palette else 0)
        info = struct.pack("<IIIHHIIiiII", header, w, hh, 1, bits, compression, len(pixel_rows),
                           2835, 2835, ncolors, 0)
        if header > 40:
            m = list(masks or (0, 0, 0, 0)) + [0] * 4
            extra = struct.pack("<IIII", *m[:4])
            info += extra + b"\0" * (header - 40 - len(extra))
        elif masks is not None:
            info += struct.pack("<III", *masks[:3])
    offset = 14 + len(info) + len(pal)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixel_rows), 0, 0, offset)
    return head + info + pal + pixel_rows


def pack_rows(indices, bits, top_down=False):
    """Indices (h x w) packed MSB first, rows padded to 4 bytes, bottom-up unless top_down."""
    h, w = indices.shape
    stride = ((w * bits + 31) >> 3) & ~3
    out = b""
    rows = range(h) if top_down else range(h - 1, -1, -1)
    for y in rows:
        bitstr = 0
        nbits = 0
        row = bytearray()
        for x in range(w):
            bitstr = (bitstr << bits) | int(indices[y, x])
            nbits += bits
            while nbits >= 8:
                row.append((bitstr >> (nbits - 8)) & 255)
                nbits -= 8
        if nbits:
            row.append((bitstr << (8 - nbits)) & 255)
        out += bytes(row) + b"\0" * (stride - len(row))
    return out


def rle_encode(indices, rle4, delta=False):
    """RLE8/RLE4 with runs, absolute runs, end-of-line (and a delta), bottom-up. Pillow 9.4 reads
    a delta's offsets from the two bytes after them (it reads twice): the engine must too."""
    h, w = indices.shape
    out = bytearray()
    for y in range(h - 1, -1, -1):
        row = [int(v) for v in indices[y]]
        x = 0
        while x < w:
            if delta and y == h // 2 and x == 0 and w > 4 and h > 2:
                # A delta over two pixels of this row (they decode as index 0).
                out += bytes([0, 2, 2, 0])
                x = 2
                continue
            run = 1
            while x + run < w and run < 255 and row[x + run] == row[x]:
                run += 1
            if run >= 3 or w - x < 3:
                if rle4:
                    out += bytes([run, (row[x] << 4) | row[x]])
                else:
                    out += bytes([run, row[x]])
                x += run
            else:
                n = min(w - x, 254 if not rle4 else 252)
                chunk = row[x:x + n]
                if rle4:
                    n -= n % 2
                    chunk = chunk[:n]
                    if n < 3:
                        out += bytes([1, row[x] << 4])
                        x += 1
                        continue
                    data = bytes((chunk[i] << 4) | chunk[i + 1] for i in range(0, n, 2))
                else:
                    data = bytes(chunk)
                out += bytes([0, n]) + data
                if len(data) % 2:
                    out += b"\0"
                x += n
        out += bytes([0, 0])
    out += bytes([0, 1])
    return bytes(out)


def lzw_gif_data(indices, min_code):
    """GIF image data without compression: a clear code before the table would grow."""
    clear = 1 << min_code
    eoi = clear + 1
    width = min_code + 1
    codes = []
    limit = (1 << width) - 2 - clear  # literal codes before the code size would change
    n = 0
    codes.append(clear)
    for v in indices.flatten():
        if n == limit:
            codes.append(clear)
            n = 0
        codes.append(int(v))
        n += 1
    codes.append(eoi)
    acc = 0
    nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 255)
    blocks = bytearray([min_code])
    for i in range(0, len(out), 255):
        chunk = out[i:i + 255]
        blocks += bytes([len(chunk)]) + chunk
    return bytes(blocks + b"\0")


def gif_file(sw, sh, frames, global_palette=None, transparent=None):
    """frames: list of (x, y, indices, local_palette or None, interlaced=False)."""
    def pal_bytes(p):
        n = 2
        while n < len(p):
            n *= 2
        p = list(p) + [(0, 0, 0)] * (n - len(p))
        return bytes(c for e in p for c in e), n.bit_length() - 2
    out = b"GIF89a" + struct.pack("<HH", sw, sh)
    if global_palette:
        pb, bits = pal_bytes(global_palette)
        out += bytes([0x80 | bits, 0, 0]) + pb
    else:
        out += bytes([0, 0, 0])
    for (x, y, ind, local, *rest) in frames:
        if transparent is not None:
            out += bytes([0x21, 0xF9, 4, 1 | (2 << 2), 10, 0, transparent, 0])
        h, w = ind.shape
        flags = 0
        lp = b""
        if local:
            lp, bits = pal_bytes(local)
            flags = 0x80 | bits
        out += b"," + struct.pack("<HHHH", x, y, w, h) + bytes([flags]) + lp
        out += lzw_gif_data(ind, 8 if ind.max() > 15 else 4)
    return out + b";"


def tiff16_rgb(w, h, pixels, big_endian):
    """An uncompressed 16-bit RGB TIFF (Pillow cannot write one)."""
    e = ">" if big_endian else "<"
    data = pixels.astype(e + "u2").tobytes()
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, h), (279, 4, 1, len(data)),
               (284, 3, 1, 1)]
    ifd_at = 8
    n = len(entries)
    bits_at = ifd_at + 2 + 12 * n + 4
    data_at = bits_at + 6
    out = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", ifd_at)
    out += struct.pack(e + "H", n)
    for tag, typ, count, value in entries:
        if tag == 258:
            value = bits_at
        if tag == 273:
            value = data_at
        if typ == 3 and count == 1:
            out += struct.pack(e + "HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack(e + "HHII", tag, typ, count, value)
    out += struct.pack(e + "I", 0) + struct.pack(e + "HHH", 16, 16, 16) + data
    return out


def tiff_tiled_rgb(w, h, pixels, tile=16):
    """An uncompressed 8-bit RGB TIFF in 16x16 tiles (Pillow writes strips only)."""
    tiles = []
    for ty in range(0, h, tile):
        for tx in range(0, w, tile):
            t = np.zeros((tile, tile, 3), np.uint8)
            part = pixels[ty:ty + tile, tx:tx + tile]
            t[:part.shape[0], :part.shape[1]] = part
            tiles.append(t.tobytes())
    n = len(tiles)
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, "bits"), (259, 3, 1, 1),
               (262, 3, 1, 2), (277, 3, 1, 3), (284, 3, 1, 1), (322, 3, 1, tile),
               (323, 3, 1, tile), (324, 4, n, "offsets"), (325, 4, n, "counts")]
    ifd = 8
    bits_at = ifd + 2 + 12 * len(entries) + 4
    offsets_at = bits_at + 6
    counts_at = offsets_at + 4 * n
    data_at = counts_at + 4 * n
    where = {"bits": bits_at, "offsets": offsets_at, "counts": counts_at}
    out = b"II*\0" + struct.pack("<I", ifd) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        value = where.get(value, value) if isinstance(value, str) else value
        if n == 1 and tag in (324, 325):
            value = data_at if tag == 324 else len(tiles[0])
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8)
    out += b"".join(struct.pack("<I", data_at + i * len(tiles[0])) for i in range(n))
    out += b"".join(struct.pack("<I", len(t)) for t in tiles)
    return out + b"".join(tiles)


def bigtiff_rgb(w, h, pixels):
    """An uncompressed 8-bit RGB BigTIFF (64-bit offsets; Pillow writes classic TIFF only)."""
    data = pixels.astype(np.uint8).tobytes()
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 16, 1, None), (277, 3, 1, 3), (278, 4, 1, h), (279, 16, 1, len(data))]
    ifd_at = 16
    data_at = ifd_at + 8 + 20 * len(entries) + 8
    out = b"II+\0" + struct.pack("<HHQ", 8, 0, ifd_at) + struct.pack("<Q", len(entries))
    for tag, typ, count, value in entries:
        if tag == 258:  # three SHORTs fit in the 8-byte value field
            out += struct.pack("<HHQ", tag, typ, count) + struct.pack("<HHHH", 8, 8, 8, 0)
            continue
        if tag == 273:
            value = data_at
        if typ == 3:
            out += struct.pack("<HHQHHI", tag, typ, count, value, 0, 0)
        elif typ == 4:
            out += struct.pack("<HHQII", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHQQ", tag, typ, count, value)
    out += struct.pack("<Q", 0)
    return out + data


def retag(data, tag, value):
    """The file with a SHORT tag of its first IFD set to another value."""
    bo = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(bo + "I", data[4:8])[0]
    out = bytearray(data)
    for i in range(struct.unpack(bo + "H", data[ifd:ifd + 2])[0]):
        at = ifd + 2 + 12 * i
        if struct.unpack(bo + "H", data[at:at + 2])[0] == tag:
            out[at + 8:at + 10] = struct.pack(bo + "H", value)
            return bytes(out)
    raise KeyError(tag)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    manifest = []

    def add(name, data, note):
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        im = Image.open(path)
        rgb = np.asarray(hf_rgb(im))
        with open(path + ".rgb", "wb") as f:
            f.write(rgb.tobytes())
        manifest.append({"file": name, "w": rgb.shape[1], "h": rgb.shape[0], "note": note})

    def saved(im, fmt, **kw):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        return b.getvalue()

    rgb = Image.fromarray(pattern(37, 23, 1))
    rgba = Image.fromarray(pattern(37, 23, 2, alpha=True))

    # WebP: lossy, lossless, alpha, animated (the first frame).
    add("lossy.webp", saved(rgb, "WEBP", quality=80), "WebP lossy")
    add("lossless.webp", saved(rgb, "WEBP", lossless=True), "WebP lossless")
    add("alpha_lossy.webp", saved(rgba, "WEBP", quality=70), "WebP lossy with alpha")
    add("alpha_lossless.webp", saved(rgba, "WEBP", lossless=True), "WebP lossless with alpha")
    second = Image.fromarray(pattern(37, 23, 3, alpha=True))
    add("anim.webp", saved(rgba, "WEBP", save_all=True, append_images=[second], duration=100),
        "WebP animated, alpha")
    add("anim_rgb.webp", saved(rgb, "WEBP", save_all=True, lossless=True,
                               append_images=[Image.fromarray(pattern(37, 23, 4))], duration=100),
        "WebP animated, no alpha")

    # GIF: palette, transparency, interlace, animation, grey ramp, offsets, indices past the end.
    p = rgb.quantize(colors=200)
    add("palette.gif", saved(p, "GIF"), "GIF palette")
    add("interlaced.gif", saved(p, "GIF", interlace=True), "GIF interlaced")
    add("transparent.gif", saved(p, "GIF", transparency=5), "GIF transparent index")
    add("anim.gif", saved(p, "GIF", save_all=True, duration=100, loop=0,
                          append_images=[Image.fromarray(pattern(37, 23, 5)).quantize(64)]),
        "GIF animated (first frame)")
    add("grey.gif", saved(rgb.convert("L"), "GIF"), "GIF greyscale")
    ind = (pattern(9, 7, 6)[..., 0] // 64).astype(np.uint8)  # indices 0..3, palette of 2
    add("offset_frame.gif", gif_file(14, 11, [(3, 2, ind, None)],
                                     global_palette=[(200, 10, 10), (10, 200, 10)]),
        "GIF frame smaller than the screen, indices past the palette")
    add("offset_transparent.gif",
        gif_file(14, 11, [(3, 2, ind, [(1, 2, 3), (250, 40, 90), (9, 9, 200), (70, 70, 70)])],
                 global_palette=[(200, 10, 10), (10, 200, 10)], transparent=2),
        "GIF local palette, transparency, frame offset")
    add("beyond_screen.gif", gif_file(6, 5, [(2, 1, ind, None)],
                                      global_palette=[(1, 100, 200), (255, 0, 0), (0, 0, 255)]),
        "GIF frame reaching past the screen")

    # BMP: every depth, RLE, bit fields, top-down, OS/2.
    add("rgb24.bmp", saved(rgb, "BMP"), "BMP 24-bit")
    add("rgba32.bmp", saved(rgba, "BMP"), "BMP 32-bit (Pillow ignores the fourth byte)")
    add("bw1.bmp", saved(rgb.convert("1"), "BMP"), "BMP 1-bit black and white")
    add("grey8.bmp", saved(rgb.convert("L"), "BMP"), "BMP 8-bit grey")
    add("pal8.bmp", saved(p, "BMP"), "BMP 8-bit palette")
    w, h = 13, 9
    idx4 = (pattern(w, h, 7)[..., 0] // 16).astype(np.uint8)
    pal16 = [(i * 16, 255 - i * 16, (i * 97) % 256) for i in range(16)]
    add("pal4.bmp", bmp_file(w, h, 4, pack_rows(idx4, 4), palette=pal16), "BMP 4-bit palette")
    idx1 = (idx4 % 2).astype(np.uint8)
    add("pal1.bmp", bmp_file(w, h, 1, pack_rows(idx1, 1), palette=[(200, 0, 0), (0, 0, 180)]),
        "BMP 1-bit colour palette")
    add("pal4_short.bmp", bmp_file(w, h, 4, pack_rows(idx4, 4), palette=pal16[:5], colors=5),
        "BMP 4-bit, 5-colour palette, indices past it")
    idx_rle = idx4.copy()
    idx_rle[::2, 3:9] = 5  # runs as well as absolute stretches
    pal256 = [(i, (i * 3) % 256, 255 - i) for i in range(256)]
    add("rle8.bmp", bmp_file(w, h, 8, rle_encode(idx_rle * 7, False), palette=pal256,
                             compression=1), "BMP RLE8")
    add("rle4.bmp", bmp_file(w, h, 4, rle_encode(idx_rle, True), palette=pal16, compression=2),
        "BMP RLE4")
    add("rle8_delta.bmp", bmp_file(w, h, 8, rle_encode(idx_rle * 7, False, delta=True),
                                   palette=pal256, compression=1), "BMP RLE8 with a delta")
    add("rle4_delta.bmp", bmp_file(w, h, 4, rle_encode(idx_rle, True, delta=True), palette=pal16,
                                   compression=2), "BMP RLE4 with a delta")
    px = pattern(w, h, 8)
    add("topdown24.bmp", bmp_file(w, h, 24, b"".join(
        px[y, :, ::-1].tobytes() + b"\0" * ((4 - w * 3 % 4) % 4) for y in range(h)),
        top_down=True), "BMP 24-bit top-down")
    add("os2.bmp", bmp_file(w, h, 8, pack_rows(idx4, 8), palette=pal16, header=12,
                            palette_entry=3), "BMP OS/2 header, 8-bit")
    for name, bits_, masks_, v in [("rgb555", 16, None, 0x7FFF), ("rgb565", 16, (0xF800, 0x7E0, 0x1F), 0xFFFF)]:
        vals = ((pattern(w, h, 9)[..., 0].astype(np.uint32) * 257 + np.arange(w)) & v).astype("<u2")
        rows = b"".join(vals[y].tobytes() + b"\0" * ((4 - w * 2 % 4) % 4) for y in range(h - 1, -1, -1))
        add(name + ".bmp", bmp_file(w, h, 16, rows, compression=3 if masks_ else 0, masks=masks_),
            "BMP 16-bit " + name[3:])
    px4 = pattern(w, h, 10, alpha=True)
    rows = b"".join(px4[y][:, [2, 1, 0, 3]].tobytes() for y in range(h - 1, -1, -1))
    add("bgra_v4.bmp", bmp_file(w, h, 32, rows, compression=3, header=108,
                                masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)),
        "BMP 32-bit V4 with an alpha mask")
    add("bgrx_v5.bmp", bmp_file(w, h, 32, rows, compression=3, header=124,
                                masks=(0xFF0000, 0xFF00, 0xFF, 0)), "BMP 32-bit V5, no alpha mask")

    # TIFF: modes x compressions, multi-page, 16-bit.
    grey16 = Image.fromarray((pattern(w, h, 11)[..., 0].astype(np.uint16) * 3))
    modes = {"1": rgb.convert("1"), "L": rgb.convert("L"), "LA": rgba.convert("LA"),
             "RGB": rgb, "RGBA": rgba, "P": p, "CMYK": rgb.convert("CMYK"), "I16": grey16}
    for comp in ["raw", "tiff_lzw", "tiff_adobe_deflate", "packbits"]:
        for mname, im in modes.items():
            add(f"{mname}_{comp}.tif", saved(im, "TIFF", compression=comp),
                f"TIFF {mname}, {comp}")
    add("multipage.tif", saved(rgb, "TIFF", save_all=True, compression="tiff_lzw",
                               append_images=[Image.fromarray(pattern(37, 23, 12))]),
        "TIFF two pages (the first)")
    px16 = pattern(w, h, 13).astype(np.uint16) * 257 + np.arange(w)[None, :, None].astype(np.uint16)
    add("rgb16_le.tif", tiff16_rgb(w, h, px16, False), "TIFF 16-bit RGB, little-endian")
    add("rgb16_be.tif", tiff16_rgb(w, h, px16, True), "TIFF 16-bit RGB, big-endian")
    for comp in ["raw", "tiff_lzw"]:
        add(f"L_miniswhite_{comp}.tif", retag(saved(modes["L"], "TIFF", compression=comp), 262, 0),
            f"TIFF grey, MinIsWhite, {comp}")
    add("1_miniswhite.tif", retag(saved(modes["1"], "TIFF"), 262, 0), "TIFF 1-bit, MinIsWhite")
    be16 = np.asarray(grey16).astype(">u2")
    add("I16B.tif", saved(Image.frombuffer("I;16B", (w, h), be16.tobytes(), "raw", "I;16B", 0, 1),
                          "TIFF"), "TIFF 16-bit grey, big-endian")
    add("bigtiff.tif", bigtiff_rgb(w, h, pattern(w, h, 15)), "BigTIFF, 8-bit RGB")
    add("tiled.tif", tiff_tiled_rgb(37, 23, pattern(37, 23, 14)), "TIFF in 16x16 tiles")

    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(len(manifest), "pictures")


if __name__ == "__main__":
    main()
