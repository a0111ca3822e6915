// Memory-mapped files and dropping their pages from the resident set.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <smolvlm/error.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Runs `fn`, expects a smolvlm::Error holding `part`; returns the message.
template <typename Fn>
std::string error_of(Fn&& fn, const std::string& part) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error; wanted " << part;
  return {};
}

TEST(InputFile, RefusesWhatIsNotARegularFileWithoutBlocking) {
  test::TempDir dir;
  const std::string fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // No writer ever opens the FIFO: a blocking open would wait here forever.
  EXPECT_EQ(error_of([&] { read_file(fifo, "config file", 1024); }, "is a FIFO"),
            "cannot open config file '" + fifo + "': is a FIFO, not a regular file");
  error_of([&] { MappedFile m(fifo); }, "cannot open model file '" + fifo + "': is a FIFO");
  error_of([&] { read_file("/dev/zero", "image", 1024); },
           "cannot open image '/dev/zero': is a character device, not a regular file");
  error_of([&] { MappedFile m("/dev/zero"); }, "is a character device");
  error_of([&] { read_file(dir.path(), "messages file", 1024); }, "': is a directory");
  error_of([&] { read_file(dir / "none.json", "config file", 1024); },
           "cannot open config file '" + (dir / "none.json") + "': No such file or directory");
}

TEST(InputFile, SizeLimitIsCheckedBeforeReading) {
  test::TempDir dir;
  const std::string path = dir / "big.json";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t{3} << 30), 0);  // sparse: 3 GiB of size, no disk
  ::close(fd);
  EXPECT_EQ(error_of([&] { read_file(path, "config file", kMaxJsonFileBytes); }, "limit"),
            "cannot open config file '" + path +
                "': the file is 3 GiB, over the 8 MiB limit for config files");
  std::ofstream(dir / "small.json") << "{\"a\": 1}";
  EXPECT_EQ(read_file(dir / "small.json", "config file", 8), "{\"a\": 1}");  // 8 bytes
  error_of([&] { read_file(dir / "small.json", "config file", 7); },
           "the file is 8 bytes, over the 7 bytes limit for config files");
}

TEST(InputFile, FileNamesStayOnOneLine) {
  error_of([&] { read_file("/nonexistent/a\nb", "image", 1); }, "'/nonexistent/a?b'");
}

TEST(InputFile, FormatBytes) {
  EXPECT_EQ(format_bytes(0), "0 bytes");
  EXPECT_EQ(format_bytes(1023), "1023 bytes");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(32801), "32 KiB");
  EXPECT_EQ(format_bytes(uint64_t{256} << 20), "256 MiB");
  EXPECT_EQ(format_bytes(uint64_t{3} << 30), "3 GiB");
}

}  // namespace
}  // namespace smolvlm
