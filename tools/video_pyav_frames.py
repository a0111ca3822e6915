#!/usr/bin/python3
"""Every frame of each video as PyAV (HF's video backend) gives it, for tests/test_video_sweep.cpp.

Reads one path a line from stdin; for each writes PATH.rgb, the frames of
container.decode(video=0) as to_ndarray(format="rgb24"), one after another, and prints one JSON
line: path, width, height, frames. Exit status 3 when PyAV (Debian python3-av) is not installed.
"""
import json
import sys

try:
    import av
except ImportError:
    sys.exit(3)


def main():
    for line in sys.stdin:
        path = line.rstrip("\n")
        if not path:
            continue
        frames, width, height = 0, 0, 0
        with av.open(path) as container, open(path + ".rgb", "wb") as out:
            for frame in container.decode(video=0):
                rgb = frame.to_ndarray(format="rgb24")
                height, width = rgb.shape[:2]
                out.write(rgb.tobytes())
                frames += 1
        print(json.dumps({"path": path, "width": width, "height": height, "frames": frames}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
