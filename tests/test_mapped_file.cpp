// Memory-mapped files and dropping their pages from the resident set.
#include <gtest/gtest.h>
#include <smolvlm/error.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "formats/mapped_file.h"
#include "test_support.h"

namespace smolvlm {
namespace {

std::string write_pattern(const test::TempDir& dir, size_t bytes) {
  const std::string path = dir.path() + "/pattern.bin";
  std::ofstream out(path, std::ios::binary);
  for (size_t i = 0; i < bytes; ++i) out.put(static_cast<char>((i * 131 + 7) & 0xff));
  return path;
}

TEST(MappedFile, DroppedPagesReadBackUnchanged) {
  test::TempDir dir;
  const size_t n = 5 * 4096 + 123;
  const MappedFile f(write_pattern(dir, n));
  ASSERT_EQ(f.size(), n);
  uint64_t before = 0;
  for (size_t i = 0; i < n; ++i) before += f.data()[i] * (i + 1);
  // A range that starts and ends inside pages: only the whole pages in between go.
  EXPECT_TRUE(drop_mapped_pages(f.data() + 100, n - 200));
  EXPECT_TRUE(drop_mapped_pages(f.data(), n));
  uint64_t after = 0;
  for (size_t i = 0; i < n; ++i) after += f.data()[i] * (i + 1);
  EXPECT_EQ(after, before);
  for (size_t i = 0; i < n; i += 997)
    EXPECT_EQ(f.data()[i], static_cast<uint8_t>((i * 131 + 7) & 0xff)) << i;
}

TEST(MappedFile, DropRefusesMemoryThatIsNotAMappedFile) {
  std::vector<uint8_t> heap(64 * 1024, 0x5a);
  EXPECT_FALSE(drop_mapped_pages(heap.data(), heap.size()));
  for (uint8_t b : heap) ASSERT_EQ(b, 0x5a);  // an anonymous page dropped would read as zero
  test::TempDir dir;
  const std::string path = write_pattern(dir, 8192);
  const uint8_t* stale = nullptr;
  {
    const MappedFile f(path);
    stale = f.data();
    EXPECT_FALSE(drop_mapped_pages(f.data(), f.size() + 1));  // runs past the mapping
  }
  EXPECT_FALSE(drop_mapped_pages(stale, 4096));  // unmapped since
}

TEST(MappedFile, MissingFileIsAnError) {
  EXPECT_THROW(MappedFile("/nonexistent/weights.gguf"), Error);
}

}  // namespace
}  // namespace smolvlm
