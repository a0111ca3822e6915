#!/usr/bin/python3
"""What HF's PyAV video backend reads from a file, for tests/test_video.cpp.

transformers.video_utils.read_video_pyav takes total_num_frames = stream.frames and
fps = stream.average_rate, and enumerates container.decode(video=0): a frame index is the ordinal
in decode output order. Prints one JSON object: frames, average_rate [num, den], decoded (frames
the decoder gives) and each decoded frame's centre pixel from to_ndarray(format="rgb24").
Exit status 3 when PyAV (Debian python3-av) is not installed.
"""
import json
import sys

try:
    import av
except ImportError:
    sys.exit(3)


def main(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        centres = []
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            centres.append([int(v) for v in rgb[h // 2, w // 2]])
        print(json.dumps({
            "frames": stream.frames,
            "average_rate": [rate.numerator, rate.denominator] if rate else [0, 1],
            "decoded": len(centres),
            "centres": centres,
        }))


if __name__ == "__main__":
    main(sys.argv[1])
