#!/usr/bin/python3
"""The test oracle for src/video/sampling.cpp: HF's SmolVLMVideoProcessor.sample_frames
(transformers 4.54+, quoted in shared/design/server-video-anchors.md §A.2) with the metadata its
PyAV backend gives (duration = total_num_frames / fps).

Reads lines "total_frames native_fps target_fps max_frames skip_secs" on stdin and prints, per
line, the sampled indices separated by spaces. Exit status 3 when numpy is not installed.
"""
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(3)


def sample_frames(total_num_frames, native_fps, fps, num_frames, skip_secs):
    metadata = {"fps": native_fps, "duration": total_num_frames / native_fps}
    estimated_frames = int(round(fps * metadata["duration"]))
    desired_frames = min(estimated_frames, num_frames)
    if desired_frames < 1:
        desired_frames = 1
    start_idx = 0
    end_idx = total_num_frames - 1
    if skip_secs > 0 and (metadata["duration"] - 2 * skip_secs) > (num_frames * fps):
        start_idx = int(skip_secs * metadata["fps"])
        end_idx = int(total_num_frames - skip_secs * metadata["fps"])
    start_idx = max(0, start_idx)
    end_idx = min(end_idx, total_num_frames - 1)
    if start_idx >= end_idx:
        start_idx, end_idx = 0, total_num_frames - 1
    indices = np.linspace(start_idx, end_idx, desired_frames, dtype=int)
    return np.unique(indices)


if __name__ == "__main__":
    for line in sys.stdin:
        if not line.strip():
            continue
        total, native, fps, max_frames, skip = line.split()
        idx = sample_frames(int(total), float(native), float(fps), int(max_frames), float(skip))
        print(" ".join(str(int(i)) for i in idx))
