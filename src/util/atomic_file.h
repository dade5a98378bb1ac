// Whole-file I/O with clear errors. write_file_atomic() replaces a file so that a
// crash or a full disk leaves either the old contents or the new ones, never a mix.
//
//   std::vector<std::byte> bytes = ...;
//   write_file_atomic("run/model.ckpt", bytes);      // throws dlmem::Error on failure
//   std::vector<std::byte> back = read_file("run/model.ckpt");
//
// Note [Atomic replace]: the data goes to "<path>.tmp.<pid>" in the same directory
// (rename() is atomic only within one file system), is fsync()ed, renamed over
// <path>, and then the directory is fsync()ed so the rename itself survives a power
// cut. On any failure the temporary file is removed and the target is untouched.
// A symbolic link at <path> is replaced by a regular file, not followed.
// The pid keeps two processes that write the same path from clobbering each other's
// temporary file; two threads of one process must not write the same path at once.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace dlmem {

// Creates or replaces `path` with exactly `data` (mode 0666 less the umask). Throws
// dlmem::Error naming the path and the system's reason (strerror).
void write_file_atomic(const std::string& path, std::span<const std::byte> data);

// The whole contents of a regular file. Throws dlmem::Error naming the path when it
// does not exist, is a directory, or cannot be read.
std::vector<std::byte> read_file(const std::string& path);

}  // namespace dlmem
