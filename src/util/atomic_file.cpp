#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "util/error.h"

namespace dlmem {

namespace {

// strerror() is not thread-safe; the generic category gives the same text.
std::string reason(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes a descriptor once.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and returns close()'s result (some file systems report write errors
  // only here).
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Removes the temporary file unless the rename has consumed it.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (armed_) ::unlink(path_.c_str());
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  void disarm() { armed_ = false; }

 private:
  std::string path_;
  bool armed_ = true;
};

}  // namespace

void write_file_atomic(const std::string& path, std::span<const std::byte> data) {
  if (path.empty()) throw Error("cannot write a file with an empty path; give a file name");
  const std::string dir = directory_of(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());

  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT)
      throw Error("cannot write '", path, "': the directory '", dir, "' does not exist (",
                  reason(err), "); create it first or choose another path");
    throw Error("cannot write '", path, "': cannot create the temporary file '", tmp, "' (",
                reason(err), "); check that the directory '", dir, "' is writable");
  }
  TempFileGuard guard(tmp);

  const auto* p = reinterpret_cast<const char*>(data.data());
  size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd.get(), p, std::min<size_t>(left, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw Error("cannot write '", path, "': writing the temporary file '", tmp, "' failed (",
                  reason(err), ")", err == ENOSPC ? "; free some disk space" : "");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    const int err = errno;
    throw Error("cannot write '", path, "': fsync of the temporary file '", tmp, "' failed (",
                reason(err), ")");
  }
  if (fd.close() != 0) {
    const int err = errno;
    throw Error("cannot write '", path, "': closing the temporary file '", tmp, "' failed (",
                reason(err), ")");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    throw Error("cannot write '", path, "': renaming '", tmp, "' over it failed (", reason(err),
                ")", err == EISDIR ? "; the path is a directory, give a file name" : "");
  }
  guard.disarm();

  // Make the rename durable. The new contents are already in place, so a failure here
  // only means the replacement might not survive a crash.
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) {
    const int err = errno;
    throw Error("wrote '", path, "' but cannot open its directory '", dir, "' to sync it (",
                reason(err), "); the file may not survive a crash");
  }
  // Some file systems cannot fsync a directory (EINVAL); there is nothing more to do.
  if (::fsync(dfd.get()) != 0 && errno != EINVAL) {
    const int err = errno;
    throw Error("wrote '", path, "' but syncing its directory '", dir, "' failed (",
                reason(err), "); the file may not survive a crash");
  }
}

std::vector<std::byte> read_file(const std::string& path) {
  if (path.empty()) throw Error("cannot read a file with an empty path; give a file name");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT)
      throw Error("cannot read '", path, "': the file does not exist (", reason(err),
                  "); check the path");
    if (err == EACCES)
      throw Error("cannot read '", path, "': permission denied (", reason(err),
                  "); check the file's permissions");
    throw Error("cannot read '", path, "': ", reason(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    throw Error("cannot read '", path, "': ", reason(err));
  }
  if (S_ISDIR(st.st_mode))
    throw Error("cannot read '", path, "': it is a directory; give the path of a file");

  std::vector<std::byte> out;
  if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  // Read to the end rather than trusting st_size: the file may change, and pipes and
  // /proc files report 0. Reads go straight into spare capacity; when there is none,
  // a small probe read finds out whether the file goes on before the vector grows.
  for (;;) {
    const size_t old = out.size();
    if (old == out.capacity()) {
      std::byte probe[4096];
      const ssize_t n = ::read(fd.get(), probe, sizeof probe);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        throw Error("cannot read '", path, "': reading failed after ", old, " bytes (",
                    reason(err), ")");
      }
      if (n == 0) break;
      out.insert(out.end(), probe, probe + n);
      continue;
    }
    const size_t want = std::min(out.capacity() - old, size_t{1} << 30);
    out.resize(old + want);
    const ssize_t n = ::read(fd.get(), out.data() + old, want);
    const int err = errno;
    out.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0) {
      if (err == EINTR) continue;
      throw Error("cannot read '", path, "': reading failed after ", old, " bytes (",
                  reason(err), ")");
    }
    if (n == 0) break;
  }
  return out;
}

}  // namespace dlmem
