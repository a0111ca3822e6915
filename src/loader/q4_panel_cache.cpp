#include "loader/q4_panel_cache.h"

#include <smolvlm/error.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "formats/mapped_file.h"
#include "kernels/kernel_path.h"
#include "kernels/q4_panels.h"
#include "util/sha256.h"

namespace smolvlm {

namespace fs = std::filesystem;

namespace {

// The cache file: this header, then each matrix's panels at a 64-byte boundary, in the order
// the key lists them.
struct CacheHeader {
  char magic[16];
  uint64_t bytes;  // the whole file
  char key[40];    // the model file's version and the shapes: the first 40 hex digits of a hash
};
static_assert(sizeof(CacheHeader) == 64);
constexpr char kMagic[16] = "smolvlm-q4pnl-1";  // the panel layout's version

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// The Q4_0 matrices the decoder multiplies by, each once (a tied lm_head is the embedding).
std::vector<kernels::Matrix*> q4_matrices(TextWeights& t) {
  std::vector<kernels::Matrix*> out;
  for (TextLayerWeights& l : t.layers) {
    for (Linear* p : l.linears()) out.push_back(&p->w);
  }
  out.push_back(&t.lm_head.w);
  std::erase_if(out, [](const kernels::Matrix* m) { return m->type != DType::Q4_0; });
  return out;
}

}  // namespace

void attach_q4_panels(TextWeights& t, const std::string& text_path, const std::string& dir,
                      std::vector<std::shared_ptr<const void>>& storage) {
  // Where a SIMD path decodes from panels: the generic path's entry is the plain twin, no faster
  // than its own way from the file's rows.
  const kernels::KernelPath& best = kernels::default_path();
  if (!best.gemv_q4_panels || &best == &kernels::generic_path()) return;
  const std::vector<kernels::Matrix*> mats = q4_matrices(t);
  if (mats.empty()) return;
  if (dir.empty()) return;

  // Named by the model file's path; the header names its version (size, time) and the shapes.
  std::error_code ec;
  const fs::path source = fs::canonical(text_path, ec);
  if (ec) return;
  const auto size = fs::file_size(source, ec);
  if (ec) return;
  const auto mtime = fs::last_write_time(source, ec).time_since_epoch().count();
  if (ec) return;
  std::string id = std::string(kMagic) + "\n" + std::to_string(size) + "\n" + std::to_string(mtime);
  std::vector<size_t> offsets;
  size_t bytes = sizeof(CacheHeader);
  for (const kernels::Matrix* m : mats) {
    id += "\n" + std::to_string(m->rows) + "x" + std::to_string(m->cols);
    offsets.push_back(bytes);
    bytes = align64(bytes + kernels::q4_panel_bytes(m->rows, m->cols));
  }
  Sha256 sha;
  sha.update(id.data(), id.size());
  const std::string key = sha.hex_digest().substr(0, sizeof(CacheHeader::key));
  CacheHeader want{};
  std::memcpy(want.magic, kMagic, sizeof(kMagic));
  want.bytes = bytes;
  std::memcpy(want.key, key.data(), key.size());

  // One file per model file: a new version of it replaces its panels instead of adding some.
  Sha256 where;
  where.update(source.string().data(), source.string().size());
  const std::string path =
      (fs::path(dir) / ("q4-panels-" + where.hex_digest().substr(0, 40) + ".bin")).string();
  auto valid = [&](const MappedFile& f) {
    return f.size() == bytes && std::memcmp(f.data(), &want, sizeof(want)) == 0;
  };
  std::shared_ptr<const MappedFile> file;
  try {
    file = std::make_shared<const MappedFile>(path, "panel cache file");
    if (!valid(*file)) file.reset();
  } catch (const Error&) {  // not there yet (or unreadable): made below
  }
  if (!file) {
    fs::create_directories(dir, ec);
    const bool made = create_file_by_mapping(path, bytes, [&](uint8_t* out) {
      std::memcpy(out, &want, sizeof(want));
      for (size_t i = 0; i < mats.size(); ++i) kernels::pack_q4_panels(*mats[i], out + offsets[i]);
    });
    if (!made) return;
    try {
      file = std::make_shared<const MappedFile>(path, "panel cache file");
    } catch (const Error&) {
      return;
    }
    if (!valid(*file)) return;
  }
  const uint8_t* embed_data = static_cast<const uint8_t*>(t.embed.data);
  for (size_t i = 0; i < mats.size(); ++i) {
    kernels::Matrix& m = *mats[i];
    m.q4_panels = file->data() + offsets[i];
    // The file's rows are not read again (prefill widens from the panels too), except a tied
    // embedding's, a row a token.
    if (m.data != embed_data)
      drop_mapped_pages(m.data, static_cast<size_t>(m.rows) * m.row_stride());
  }
  if (t.embed.data == t.lm_head.w.data) t.embed.q4_panels = t.lm_head.w.q4_panels;
  storage.push_back(std::move(file));
}

}  // namespace smolvlm
