#!/usr/bin/python3
"""Prints the folder graph of src/ and apps/ (from their #include "..." lines) and fails on an
arrow that runs the wrong way.

Each folder stands on a floor (FLOORS, bottom first; README.md "Layout" lists the same folders
top first). A file may include files of its own folder and of folders on lower floors; an include
of a higher floor, or of another folder on the same floor, is a back-edge. Apps include only the public headers
(include/smolvlm/) and their own folder, except the internal interfaces DECLARED_FOR_APPS, each of
which says in its header that it is one. A folder missing from FLOORS is an error too: give a new
folder its floor here and in the README.

The README's Layout section shows the printed graph; it must equal what the includes give (exit
status 1 on a difference too), so the documented picture cannot drift from the code.

    /usr/bin/python3 scripts/check-layers.py                   (exit status 1 on a back-edge or drift)
    /usr/bin/python3 scripts/check-layers.py --write-readme    (puts the current graph in README.md)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bottom first. Folders on one floor are siblings and must not include each other.
FLOORS = [
    ["include/smolvlm"],                   # the public API (headers only)
    ["src/util"],                          # threads, SHA-256, outside text
    ["src/formats"],                       # files: safe reads, mmap, safetensors, GGUF
    ["src/kernels", "src/net"],            # the kernel API, its paths and dispatch | downloads

    ["src/model", "src/constrain"],        # ModelConfig (+ ImageProcessorConfig), weights | grammars
    ["src/text", "src/vision", "src/video"],  # tokenizer, decoder | pictures, encoder | video
    ["src/loader"],                        # the Model aggregate, the GGUF loader, the converter
    ["src/chat"],                          # prompt format, conversation, the Engine, the Scheduler
    ["src/server", "src/compat"],          # HTTP server | RK35llm.h over the API
    ["apps/smolvlm", "apps/VLM_NPU"],      # the programs
]

# Internal headers an app may include, each declared as such in its own comment.
DECLARED_FOR_APPS = {
    "src/chat/bench_interface.h",   # smolvlm bench: the stages of an answer, one by one
    "src/chat/markers.h",           # smolvlm ask -p: the <image>/<video> markers and their splitter
    "src/loader/tools_interface.h", # smolvlm convert and random-model: the file writers
    "src/net/hub.h",                # smolvlm pull: the interface of the smolvlm_net library
    "src/formats/mapped_file.h",    # --messages: outside files read safely (InputFile)
    "src/server/server.h",          # smolvlm serve: the interface of the smolvlm_server library
    "src/video/live_source.h",      # smolvlm watch: a camera's newest frame
    "src/util/input_text.h",        # every command: outside text quoted in messages
}

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')


def floor_of(folder):
    for level, folders in enumerate(FLOORS):
        if folder in folders:
            return level
    return None


def folder_of(path):
    """The FLOORS folder a repository-relative file belongs to (its first two path parts)."""
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def resolve(including_file, name):
    """The repository-relative path an include names, or None for a system/library header."""
    candidates = [os.path.join(os.path.dirname(including_file), name),
                  os.path.join("src", name), os.path.join("include", name)]
    for c in candidates:
        c = os.path.normpath(c)
        if os.path.isfile(os.path.join(ROOT, c)):
            return c
    return None


README_LEAD = "as `/usr/bin/python3 scripts/check-layers.py` prints"


def readme_graph_drift(graph, write):
    """None when README.md's printed graph (the code block after README_LEAD) equals `graph`;
    else what differs. With `write`, puts `graph` there instead."""
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    lead = text.find(README_LEAD)
    start = text.find("```\n", lead) if lead >= 0 else -1
    end = text.find("```", start + 4) if start >= 0 else -1
    if end < 0:
        return f"README.md: no code block after '{README_LEAD}' (the Layout graph)"
    shown = text[start + 4:end].rstrip("\n").split("\n")
    if shown == graph:
        return None
    if write:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text[:start + 4] + "\n".join(graph) + "\n" + text[end:])
        print("README.md: Layout graph updated")
        return None
    diff = [f"README: {a!r}  includes: {b!r}" for a, b in zip(shown + [""] * len(graph),
                                                             graph + [""] * len(shown)) if a != b]
    return ("README.md's Layout graph differs from the includes (run with --write-readme): "
            + diff[0])


def main():
    edges = {}  # (from folder, to folder) -> an example "file: include"
    errors = []
    for top in ("src", "apps"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in sorted(files):
                if not f.endswith((".h", ".cpp")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, f), ROOT)
                src_folder = folder_of(path)
                if floor_of(src_folder) is None:
                    errors.append(f"{path}: folder {src_folder} has no floor in scripts/check-layers.py")
                    continue
                with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
                    for line in fh:
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = resolve(path, m.group(1))
                        if target is None:
                            continue
                        dst_folder = folder_of(target)
                        if dst_folder == src_folder:
                            continue
                        edges.setdefault((src_folder, dst_folder), f"{path}: {m.group(1)}")
                        if src_folder.startswith("apps/") and dst_folder.startswith("src/") \
                                and target not in DECLARED_FOR_APPS:
                            errors.append(f"{path}: includes {target}, an internal header not "
                                          "declared for apps")
                            continue
                        dst_floor = floor_of(dst_folder)
                        if dst_floor is None:
                            errors.append(f"{path}: includes {target}, in {dst_folder}, which has "
                                          "no floor")
                        elif dst_floor >= floor_of(src_folder):
                            way = "up" if dst_floor > floor_of(src_folder) else "sideways"
                            errors.append(f"{path}: includes {target}: {src_folder} (floor "
                                          f"{floor_of(src_folder)}) -> {dst_folder} (floor "
                                          f"{dst_floor}) runs {way}")

    graph = []
    for level in reversed(range(len(FLOORS))):
        for folder in FLOORS[level]:
            if not os.path.isdir(os.path.join(ROOT, folder)):
                continue
            below = sorted(d for (s, d) in edges if s == folder)
            graph.append(f"{level}  {folder:<16} -> {', '.join(below) if below else '(nothing)'}")
    print("\n".join(graph))
    drift = readme_graph_drift(graph, write="--write-readme" in sys.argv[1:])
    if drift:
        errors.append(drift)
    if errors:
        print("\nerrors:", file=sys.stderr)
        for e in errors:
            print("  " + e, file=sys.stderr)
        return 1
    print("\nno back-edges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
