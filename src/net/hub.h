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
  // A transfer that moves fewer than stall_bytes_per_s bytes a second for stall_timeout_s seconds
  // fails (files: retried and resumed): a hub that stalls or trickles cannot hold pull forever.
  long stall_timeout_s = 30;
  long stall_bytes_per_s = 1024;
  // The whole file list must arrive within list_deadline_s seconds and hold at most
  // max_list_bytes (the real hub's list of a model is a few KB).
  double list_deadline_s = 60;
  int64_t max_list_bytes = int64_t{16} << 20;
  // Progress of the file being fetched: bytes present so far (including a resumed part).
  std::function<void(const RemoteFile& file, int64_t have)> on_progress;
  std::function<void(const RemoteFile& file)> on_file_done;
  std::function<void(const std::string& line)> on_note;  // one-line remarks (skips, retries)
};

// Options from the environment: HF_ENDPOINT and HF_TOKEN (HUGGING_FACE_HUB_TOKEN as a fallback);
// SMOLVLM_PULL_STALL_S and SMOLVLM_PULL_LIST_DEADLINE_S (seconds) override stall_timeout_s and
// list_deadline_s. Throws smolvlm::Error for a value that is not a positive number.
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
// is retried and resumed. A file never grows past the size the list announces: a server that
// sends more fails the file (its partial download removed). Names in the list are refused when
// they are not plain file names, repeat, or collide with pull's own NAME.part files; a file name
// that is a directory or another non-regular file on disk is refused before anything is fetched.
// Throws smolvlm::Error with a one-line message naming the URL or the file.
PullSummary pull(const std::string& repo, const std::string& dir, const PullOptions& options);

// "owner/name" with the hub's characters only. Throws smolvlm::Error otherwise.
void check_repo_id(const std::string& repo);

}  // namespace smolvlm::net
