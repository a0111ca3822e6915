// smolvlm pull: downloads a model folder from Hugging Face, with a progress bar and resume.
#include <cstdio>
#include <memory>
#include <string>

#include "cli.h"
#include "net/hub.h"
#include "progress.h"
#include "util/input_text.h"

namespace smolvlm::cli {

namespace {

const char kDefaultRepo[] = "HuggingFaceTB/SmolVLM2-256M-Video-Instruct";

const char kPullHelp[] =
    "usage: smolvlm pull [REPO_ID] [--dir DIR]\n"
    "\n"
    "Downloads a model from Hugging Face (default HuggingFaceTB/SmolVLM2-256M-Video-Instruct)\n"
    "into DIR (default models/NAME). Files already there are checked (size, and sha256 where the\n"
    "hub gives it) and kept; an interrupted download resumes where it stopped.\n"
    "\n"
    "  --dir DIR        where the model folder goes\n"
    "  --revision REV   branch, tag or commit (default main)\n"
    "  --list           only list the files (path, bytes, sha256 when known); nothing is written\n"
    "\n"
    "Environment: HF_ENDPOINT (a mirror instead of https://huggingface.co), HF_TOKEN (for gated\n"
    "or private models), SMOLVLM_PULL_STALL_S (a transfer below 1 KiB/s this long fails and is\n"
    "retried; default 30), SMOLVLM_PULL_LIST_DEADLINE_S (the file list's deadline; default 60).\n";

}  // namespace

int run_pull(int argc, char** argv) {
  std::string repo, dir;
  bool list = false;
  net::PullOptions options = net::options_from_environment();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kPullHelp, stdout);
      return 0;
    } else if (a == "--dir") {
      dir = flag_value(argc, argv, i);
    } else if (a == "--list") {
      list = true;
    } else if (a == "--revision") {
      options.revision = flag_value(argc, argv, i);
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError("unknown option " + quote_input(a));
    } else if (repo.empty()) {
      repo = a;
    } else {
      throw UsageError("give one repository id");
    }
  }
  if (repo.empty()) repo = kDefaultRepo;
  try {
    net::check_repo_id(repo);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (dir.empty()) dir = "models/" + repo.substr(repo.find('/') + 1);
  if (list) {
    for (const net::RemoteFile& f : net::list_files(repo, options)) {
      std::printf("%s %lld %s\n", f.path.c_str(), static_cast<long long>(f.size), f.sha256.c_str());
    }
    return 0;
  }

  std::unique_ptr<ProgressBar> bar;
  std::string bar_file;
  options.on_note = [&](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  options.on_progress = [&](const net::RemoteFile& f, int64_t have) {
    if (!bar || bar_file != f.path) {
      bar = std::make_unique<ProgressBar>(f.path, static_cast<size_t>(f.size));
      bar_file = f.path;
    }
    bar->set(static_cast<size_t>(have));
  };
  options.on_file_done = [&](const net::RemoteFile& f) {
    if (bar && bar_file == f.path) {
      bar->done();
    } else {
      std::fprintf(stderr, "%s: up to date\n", f.path.c_str());
    }
    bar.reset();
  };
  const net::PullSummary s = net::pull(repo, dir, options);
  std::fprintf(stderr, "%s is ready in %s (%d files; %d fetched, %.1f MB transferred)\n",
               repo.c_str(), dir.c_str(), s.files, s.fetched, static_cast<double>(s.bytes) / 1e6);
  return 0;
}

}  // namespace smolvlm::cli
