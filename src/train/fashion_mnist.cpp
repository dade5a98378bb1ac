#include "train/fashion_mnist.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

#include "util/error.h"

namespace dlmem::train {

namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned byte, 1 dimension

constexpr const char* kReinstall =
    "reinstall it with `sudo apt-get install --reinstall dataset-fashion-mnist`";

std::string reason(int err) { return std::error_code(err, std::generic_category()).message(); }

// Throws the "missing file" error, with the package that provides it.
void require_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      throw Error("Fashion-MNIST file '", path, "' is a directory, not a gzipped IDX file");
    return;
  }
  const int err = errno;
  if (err == ENOENT || err == ENOTDIR)
    throw Error("Fashion-MNIST file '", path, "' is missing. The Debian package "
                "dataset-fashion-mnist installs it under ", FashionMnist::default_dir(),
                ": run `sudo apt-get install dataset-fashion-mnist` (or scripts/install-deps.sh), "
                "or give the directory that holds the four *-ubyte.gz files");
  throw Error("cannot open Fashion-MNIST file '", path, "': ", reason(err));
}

// A gzip (or plain) file opened for reading; gzread reads uncompressed files as they are.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {
    require_file(path_);
    errno = 0;
    f_ = gzopen(path_.c_str(), "rb");
    if (f_ == nullptr) {
      const int err = errno;
      throw Error("cannot open Fashion-MNIST file '", path_, "': ",
                  err != 0 ? reason(err) : std::string("out of memory"));
    }
    gzbuffer(f_, 1 << 18);
  }
  ~GzReader() {
    if (f_ != nullptr) gzclose(f_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  const std::string& path() const { return path_; }

  // Reads up to n bytes; fewer only at the end of the data. Throws on a gzip error or
  // a gzip stream that stops before its end (a truncated .gz file).
  size_t read(void* out, size_t n) {
    auto* p = static_cast<unsigned char*>(out);
    size_t got = 0;
    while (got < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, size_t{1} << 30));
      const int r = gzread(f_, p + got, chunk);
      if (r < 0) fail();
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    int errnum = Z_OK;
    const char* msg = gzerror(f_, &errnum);
    if (errnum == Z_BUF_ERROR)
      throw Error("Fashion-MNIST file '", path_, "' is truncated: its gzip stream ends early (",
                  msg, "); ", kReinstall);
    if (errnum != Z_OK) fail();
    return got;
  }

 private:
  [[noreturn]] void fail() {
    int errnum = Z_OK;
    const char* msg = gzerror(f_, &errnum);
    if (errnum == Z_ERRNO)
      throw Error("cannot read Fashion-MNIST file '", path_, "': ", reason(errno));
    throw Error("Fashion-MNIST file '", path_, "' is corrupt: gzip reports '", msg, "'; ",
                kReinstall);
  }

  std::string path_;
  gzFile f_ = nullptr;
};

uint32_t big_endian_u32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads an IDX file's header (`size` bytes) into `h`, checking its magic number first.
void read_idx_header(GzReader& r, const char* kind, uint32_t magic, unsigned char* h, size_t size) {
  const size_t got = r.read(h, size);
  if (got >= 4 && big_endian_u32(h) != magic)
    throw Error("Fashion-MNIST file '", r.path(), "' is not an IDX ", kind, " file: its magic number is ",
                big_endian_u32(h), ", expected ", magic, "; ", kReinstall);
  if (got < size)
    throw Error("Fashion-MNIST file '", r.path(), "' is truncated: it has ", got, " bytes, too few for the ", size,
                "-byte IDX header; ", kReinstall);
}

// Reads exactly `expected` bytes of body (growing the buffer as data arrives, so a
// corrupt header that claims billions of items costs no more memory than the file
// holds) and then checks that nothing follows.
std::vector<uint8_t> read_body(GzReader& in, uint64_t expected, uint64_t header_bytes,
                               const char* what, uint64_t count) {
  std::vector<uint8_t> out;
  constexpr uint64_t kChunk = 1 << 20;
  while (out.size() < expected) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, expected - out.size()));
    const size_t old = out.size();
    out.resize(old + want);
    const size_t got = in.read(out.data() + old, want);
    out.resize(old + got);
    if (got < want)
      throw Error("Fashion-MNIST file '", in.path(), "' is truncated: its header declares ",
                  count, " ", what, " (", header_bytes + expected,
                  " bytes uncompressed) but the data ends after ", header_bytes + out.size(),
                  " bytes; ", kReinstall);
  }
  unsigned char extra = 0;
  if (in.read(&extra, 1) != 0)
    throw Error("Fashion-MNIST file '", in.path(), "' is corrupt: it has data after the ",
                count, " ", what, " its header declares (expected exactly ",
                header_bytes + expected, " bytes uncompressed); ", kReinstall);
  return out;
}

std::string join(const std::string& dir, const std::string& file) {
  if (dir.empty()) return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}

// (pixel / 255 - mean) / std for every byte value.
const std::array<float, 256>& normalise_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i)
      t[i] = (static_cast<float>(i) / 255.0f - FashionMnist::kMean) / FashionMnist::kStd;
    return t;
  }();
  return table;
}

}  // namespace

std::string FashionMnist::default_dir() { return "/usr/share/datasets/fashion-mnist"; }

std::string FashionMnist::images_file(Split split) {
  return split == Split::Train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz";
}

std::string FashionMnist::labels_file(Split split) {
  return split == Split::Train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz";
}

std::string_view FashionMnist::class_name(int64_t label) {
  static constexpr std::array<std::string_view, 10> kNames{
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  if (label < 0 || label >= kClasses) return "?";
  return kNames[static_cast<size_t>(label)];
}

FashionMnist::FashionMnist(std::string dir, Split split) : dir_(std::move(dir)), split_(split) {
  const std::string images_path = join(dir_, images_file(split));
  const std::string labels_path = join(dir_, labels_file(split));
  // Both missing-file errors before any parsing error.
  require_file(images_path);
  require_file(labels_path);

  GzReader images(images_path);
  unsigned char ih[16];
  read_idx_header(images, "image", kImagesMagic, ih, sizeof ih);
  const uint32_t n_images = big_endian_u32(ih + 4);
  const uint32_t rows = big_endian_u32(ih + 8), cols = big_endian_u32(ih + 12);
  if (rows != kRows || cols != kCols)
    throw Error("Fashion-MNIST file '", images_path, "' holds ", rows, "x", cols,
                " images, expected ", kRows, "x", kCols, "; ", kReinstall);

  GzReader labels(labels_path);
  unsigned char lh[8];
  read_idx_header(labels, "label", kLabelsMagic, lh, sizeof lh);
  const uint32_t n_labels = big_endian_u32(lh + 4);
  if (n_images != n_labels)
    throw Error("Fashion-MNIST files disagree: '", images_path, "' holds ", n_images,
                " images but '", labels_path, "' holds ", n_labels,
                " labels; both must come from the same split of the same release");

  pixels_ = read_body(images, uint64_t{n_images} * kRows * kCols, sizeof ih, "images", n_images);
  labels_ = read_body(labels, n_labels, sizeof lh, "labels", n_labels);
  for (size_t i = 0; i < labels_.size(); ++i)
    if (labels_[i] >= kClasses)
      throw Error("Fashion-MNIST file '", labels_path, "' is corrupt: label ", int{labels_[i]},
                  " of sample ", i, " is not a class in 0..", kClasses - 1, "; ", kReinstall);
  count_ = n_images;
}

void FashionMnist::get(int64_t index, float* image_out, int32_t* label_out) const {
  check_index(index);
  const auto& table = normalise_table();
  const uint8_t* src = pixels_.data() + index * kRows * kCols;
  for (int64_t i = 0; i < kRows * kCols; ++i) image_out[i] = table[src[i]];
  *label_out = labels_[static_cast<size_t>(index)];
}

int32_t FashionMnist::label(int64_t index) const {
  check_index(index);
  return labels_[static_cast<size_t>(index)];
}

std::string FashionMnist::name() const {
  return split_ == Split::Train ? "fashion-mnist/train" : "fashion-mnist/test";
}

}  // namespace dlmem::train
