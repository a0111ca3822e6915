#include "loader/decode_panel_cache.h"

#include <smolvlm/error.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "formats/mapped_file.h"
#include "kernels/kernel_path.h"
#include "kernels/q4k_panels.h"
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
constexpr char kMagic[16] = "smolvlm-dpnl-2";  // the panel layouts' version

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// The matrices the decoder multiplies by that `best` decodes from panels, each once (a tied
// lm_head is the embedding): Q4_0 where it has gemv_q4_panels, Q4_K where gemv_q4k_panels.
std::vector<kernels::Matrix*> panel_matrices(TextWeights& t, const kernels::KernelPath& best) {
  std::vector<kernels::Matrix*> out;
  for (TextLayerWeights& l : t.layers) {
    for (Linear* p : l.linears()) out.push_back(&p->w);
  }
  out.push_back(&t.lm_head.w);
  std::erase_if(out, [&](const kernels::Matrix* m) {
    const bool q4_0 = m->type == DType::Q4_0 && best.gemv_q4_panels;
    const bool q4_k = m->type == DType::Q4_K && best.gemv_q4k_panels;
    return !(q4_0 || q4_k) || kernels::decode_panel_bytes(*m) == 0;
  });
  return out;
}

}  // namespace

void attach_decode_panels(TextWeights& t, const std::string& text_path, const std::string& dir,
                          std::vector<std::shared_ptr<const void>>& storage) {
  // Where a SIMD path decodes from panels: the generic path's entries are the plain twins, no
  // faster than its own way from the file's rows.
  const kernels::KernelPath& best = kernels::default_path();
  if (&best == &kernels::generic_path()) return;
  const std::vector<kernels::Matrix*> mats = panel_matrices(t, best);
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
    id += "\n" + std::string(dtype_name(m->type)) + " " + std::to_string(m->rows) + "x" +
          std::to_string(m->cols);
    offsets.push_back(bytes);
    bytes = align64(bytes + kernels::decode_panel_bytes(*m));
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
  const std::string name = where.hex_digest().substr(0, 40) + ".bin";
  const std::string path = (fs::path(dir) / ("decode-panels-" + name)).string();
  // Earlier versions kept Q4_0 panels alone, under another name: the file for this model goes.
  fs::remove(fs::path(dir) / ("q4-panels-" + name), ec);
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
      for (size_t i = 0; i < mats.size(); ++i)
        kernels::pack_decode_panels(*mats[i], out + offsets[i]);
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
    m.panels = file->data() + offsets[i];
    // The file's rows are not read again (prefill widens from the panels too), except a tied
    // embedding's, a row a token.
    if (m.data != embed_data)
      drop_mapped_pages(m.data, static_cast<size_t>(m.rows) * m.row_stride());
  }
  if (t.embed.data == t.lm_head.w.data) t.embed.panels = t.lm_head.w.panels;
  storage.push_back(std::move(file));
}

}  // namespace smolvlm
