// Downloads a model repository from the Hugging Face hub (or a mirror: any server with the same
// two endpoints), with resume and checks:
//   GET {endpoint}/api/models/{repo}/tree/{revision}      the files: path, size, lfs.oid (sha256)
//   GET {endpoint}/{repo}/resolve/{revision}/{path}      a file (redirects followed; Range
//   honoured)
// The interface of the smolvlm_net library (its own target, the only one that links libcurl),
// declared for `smolvlm pull`; the engine library knows nothing of the network.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace smolvlm::net {

struct RemoteFile {
  std::string path;    // relative to the repository root
  int64_t size = 0;    // bytes
  std::string sha256;  // lower-case hex for LFS files; empty when the hub gives none
};

struct PullOptions {
  std::string endpoint = "https://huggingface.co";
  std::string token;  // sent as "Authorization: Bearer ..." (to the endpoint's host only)
  std::string revision = "main";
  int attempts = 5;            // tries per file when the connection drops; each resumes
  double retry_delay_s = 1.0;  // doubled after each failed try
  long connect_timeout_s = 20;
  // Progress of the file being fetched: bytes present so far (including a resumed part).
  std::function<void(const RemoteFile& file, int64_t have)> on_progress;
  std::function<void(const RemoteFile& file)> on_file_done;
  std::function<void(const std::string& line)> on_note;  // one-line remarks (skips, retries)
};

// Options from the environment: HF_ENDPOINT and HF_TOKEN (HUGGING_FACE_HUB_TOKEN as a fallback).
PullOptions options_from_environment();

// The files at the repository's root (sub-folders are reported through on_note and skipped: a
// SmolVLM2 folder needs only root files; the hub's onnx/ folder holds gigabytes it does not).
std::vector<RemoteFile> list_files(const std::string& repo, const PullOptions& options);

struct PullSummary {
  int files = 0;      // files in the model folder
  int fetched = 0;    // of those, downloaded (in part or whole) this time
  int64_t bytes = 0;  // bytes transferred
};

// Brings `dir` up to date with the repository: files already complete (size, and sha256 where
// known) are kept; partial downloads (FILE.part) resume with a Range request; a dropped connection
// is retried and resumed. Throws smolvlm::Error with a one-line message.
PullSummary pull(const std::string& repo, const std::string& dir, const PullOptions& options);

// "owner/name" with the hub's characters only. Throws smolvlm::Error otherwise.
void check_repo_id(const std::string& repo);

}  // namespace smolvlm::net
