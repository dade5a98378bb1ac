#include "util/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem {
namespace {

using test_util::TempDir;

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no dlmem::Error thrown";
  return "";
}

TEST(AtomicFile, WritesAndReadsBack) {
  TempDir dir;
  const std::string path = dir.file("a.bin");
  std::vector<std::byte> data(100000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 3);
  write_file_atomic(path, data);
  EXPECT_EQ(read_file(path), data);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"a.bin"});  // no temp file left
}

TEST(AtomicFile, ReplacesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  write_file_atomic(path, bytes_of("a long first version of the file"));
  write_file_atomic(path, bytes_of("short"));
  EXPECT_EQ(read_file(path), bytes_of("short"));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});
}

TEST(AtomicFile, EmptyData) {
  TempDir dir;
  write_file_atomic(dir.file("empty"), {});
  EXPECT_TRUE(read_file(dir.file("empty")).empty());
}

TEST(AtomicFile, RelativePathInTheCurrentDirectory) {
  TempDir dir;
  char old[4096];
  ASSERT_NE(::getcwd(old, sizeof old), nullptr);
  ASSERT_EQ(::chdir(dir.path().c_str()), 0);
  write_file_atomic("rel.txt", bytes_of("x"));
  const auto back = read_file("rel.txt");
  ASSERT_EQ(::chdir(old), 0);
  EXPECT_EQ(back, bytes_of("x"));
}

TEST(AtomicFile, MissingDirectoryThrowsAndLeavesNothing) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/out.bin");
  const std::string msg = message_of([&] { write_file_atomic(path, bytes_of("data")); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;  // strerror
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, TargetIsADirectoryThrowsAndRemovesTheTempFile) {
  TempDir dir;
  const std::string path = dir.file("sub");
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  const std::string msg = message_of([&] { write_file_atomic(path, bytes_of("data")); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"sub"});  // the .tmp.<pid> is gone
}

TEST(AtomicFile, ReadOnlyDirectoryThrows) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir dir;
  const std::string sub = dir.file("ro");
  ASSERT_EQ(::mkdir(sub.c_str(), 0555), 0);
  const std::string msg = message_of([&] { write_file_atomic(sub + "/f", bytes_of("x")); });
  EXPECT_NE(msg.find(sub + "/f"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
  ::chmod(sub.c_str(), 0755);
}

TEST(ReadFile, Errors) {
  TempDir dir;
  std::string msg = message_of([&] { read_file(dir.file("missing.bin")); });
  EXPECT_NE(msg.find(dir.file("missing.bin")), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

  msg = message_of([&] { read_file(dir.path()); });
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;

  msg = message_of([&] { read_file(""); });
  EXPECT_NE(msg.find("empty path"), std::string::npos) << msg;

  if (::geteuid() != 0) {
    const std::string locked = dir.file("locked");
    write_file_atomic(locked, bytes_of("secret"));
    ASSERT_EQ(::chmod(locked.c_str(), 0), 0);
    msg = message_of([&] { read_file(locked); });
    EXPECT_NE(msg.find("permission denied"), std::string::npos) << msg;
  }
}

TEST(ReadFile, ReadsFilesThatReportNoSize) {
  // /proc files have st_size 0 but contents.
  const auto bytes = read_file("/proc/self/status");
  EXPECT_GT(bytes.size(), 0u);
}

}  // namespace
}  // namespace dlmem
