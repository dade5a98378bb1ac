#include "train/fashion_mnist.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/temp_dir.h"

namespace dlmem::train {
namespace {

using dlmem::test_util::TempDir;

bool have_fashion_mnist() {
  struct stat st {};
  const std::string d = FashionMnist::default_dir();
  for (Split s : {Split::Train, Split::Test})
    for (const std::string& f : {FashionMnist::images_file(s), FashionMnist::labels_file(s)})
      if (::stat((d + "/" + f).c_str(), &st) != 0) return false;
  return true;
}

#define REQUIRE_FASHION_MNIST()                                                           \
  do {                                                                                    \
    if (!have_fashion_mnist()) {                                                          \
      GTEST_SKIP() << "Fashion-MNIST is not installed under " << FashionMnist::default_dir() \
                   << "; run `sudo apt-get install dataset-fashion-mnist`";              \
    }                                                                                     \
  } while (0)

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no dlmem::Error thrown";
  return "";
}

TEST(FashionMnist, TrainSplit) {
  REQUIRE_FASHION_MNIST();
  FashionMnist data(FashionMnist::default_dir(), Split::Train);
  EXPECT_EQ(data.size(), 60000);
  EXPECT_EQ(data.sample_shape(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(data.sample_numel(), 784);
  EXPECT_EQ(data.num_classes(), 10);
  EXPECT_EQ(data.name(), "fashion-mnist/train");

  std::array<int64_t, 10> histogram{};
  std::vector<float> image(784);
  double sum = 0, sum_sq = 0;
  float lo = 1e9f, hi = -1e9f;
  for (int64_t i = 0; i < data.size(); ++i) {
    int32_t label = -1;
    data.get(i, image.data(), &label);
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ASSERT_EQ(label, data.label(i));
    ++histogram[static_cast<size_t>(label)];
    for (float v : image) {
      sum += v;
      sum_sq += double{v} * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  for (int64_t count : histogram) EXPECT_EQ(count, 6000);
  // The normalisation constants are the training set's own statistics.
  const double n = 60000.0 * 784.0;
  const double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(stddev, 1.0, 0.002);
  EXPECT_FLOAT_EQ(lo, (0.0f - FashionMnist::kMean) / FashionMnist::kStd);
  EXPECT_FLOAT_EQ(hi, (1.0f - FashionMnist::kMean) / FashionMnist::kStd);
}

TEST(FashionMnist, TestSplit) {
  REQUIRE_FASHION_MNIST();
  FashionMnist data(FashionMnist::default_dir(), Split::Test);
  EXPECT_EQ(data.size(), 10000);
  EXPECT_EQ(data.name(), "fashion-mnist/test");
  std::array<int64_t, 10> histogram{};
  for (int64_t i = 0; i < data.size(); ++i) ++histogram[static_cast<size_t>(data.label(i))];
  for (int64_t count : histogram) EXPECT_EQ(count, 1000);
  std::vector<float> image(784);
  int32_t label = 0;
  EXPECT_THROW(data.get(10000, image.data(), &label), Error);
  EXPECT_THROW(data.get(-1, image.data(), &label), Error);
}

TEST(FashionMnist, ClassNames) {
  EXPECT_EQ(FashionMnist::class_name(0), "T-shirt/top");
  EXPECT_EQ(FashionMnist::class_name(9), "Ankle boot");
  EXPECT_EQ(FashionMnist::class_name(10), "?");
}

TEST(FashionMnist, MissingDirectoryNamesThePackage) {
  TempDir dir;
  const std::string missing = dir.file("nowhere");
  const std::string msg = message_of([&] { FashionMnist(missing, Split::Train); });
  EXPECT_NE(msg.find(missing + "/train-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sudo apt-get install dataset-fashion-mnist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scripts/install-deps.sh"), std::string::npos) << msg;
}

// ---- small hand-made IDX files ----

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

struct Idx {
  std::vector<uint8_t> images, labels;
};

// n 28x28 images whose pixel p of image i is (i * 31 + p) % 256, labels i % 10.
Idx make_idx(uint32_t n) {
  Idx f;
  put_be32(f.images, 2051);
  put_be32(f.images, n);
  put_be32(f.images, 28);
  put_be32(f.images, 28);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t p = 0; p < 784; ++p) f.images.push_back(static_cast<uint8_t>((i * 31 + p) % 256));
  put_be32(f.labels, 2049);
  put_be32(f.labels, n);
  for (uint32_t i = 0; i < n; ++i) f.labels.push_back(static_cast<uint8_t>(i % 10));
  return f;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Writes the test split of `f` into `dir`.
void write_split(const TempDir& dir, const Idx& f) {
  write_gz(dir.file(FashionMnist::images_file(Split::Test)), f.images);
  write_gz(dir.file(FashionMnist::labels_file(Split::Test)), f.labels);
}

// Loading the test split from `dir` throws an Error naming `file` and saying `what`.
void expect_refused(const TempDir& dir, const std::string& file, const std::string& what) {
  const std::string msg = message_of([&] { FashionMnist(dir.path(), Split::Test); });
  EXPECT_NE(msg.find(dir.file(file)), std::string::npos) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
}

const std::string kImages = FashionMnist::images_file(Split::Test);
const std::string kLabels = FashionMnist::labels_file(Split::Test);

TEST(FashionMnistFiles, SmallValidCopyLoads) {
  TempDir dir;
  write_split(dir, make_idx(3));
  FashionMnist data(dir.path(), Split::Test);
  ASSERT_EQ(data.size(), 3);
  std::vector<float> image(784);
  int32_t label = -1;
  data.get(2, image.data(), &label);
  EXPECT_EQ(label, 2);
  for (uint32_t p = 0; p < 784; ++p) {
    const float raw = static_cast<float>((2 * 31 + p) % 256) / 255.0f;
    ASSERT_FLOAT_EQ(image[p], (raw - 0.2860f) / 0.3530f) << p;
  }
}

TEST(FashionMnistFiles, UncompressedFilesAlsoLoad) {
  TempDir dir;
  const Idx f = make_idx(2);
  std::ofstream(dir.file(kImages), std::ios::binary)
      .write(reinterpret_cast<const char*>(f.images.data()), static_cast<std::streamsize>(f.images.size()));
  std::ofstream(dir.file(kLabels), std::ios::binary)
      .write(reinterpret_cast<const char*>(f.labels.data()), static_cast<std::streamsize>(f.labels.size()));
  EXPECT_EQ(FashionMnist(dir.path(), Split::Test).size(), 2);
}

TEST(FashionMnistFiles, OneFileMissing) {
  TempDir dir;
  write_gz(dir.file(kImages), make_idx(1).images);
  expect_refused(dir, kLabels, "is missing");
}

TEST(FashionMnistFiles, WrongMagic) {
  TempDir dir;
  Idx f = make_idx(2);
  f.images[3] = 0x01;  // 2049: a label file's magic
  write_split(dir, f);
  expect_refused(dir, kImages, "magic number is 2049, expected 2051");

  f = make_idx(2);
  f.labels[2] = 0x09;
  write_split(dir, f);
  expect_refused(dir, kLabels, "magic number");
}

TEST(FashionMnistFiles, WrongDimensions) {
  TempDir dir;
  Idx f = make_idx(2);
  f.images[11] = 27;  // rows
  write_split(dir, f);
  expect_refused(dir, kImages, "27x28 images, expected 28x28");
}

TEST(FashionMnistFiles, CountsDisagree) {
  TempDir dir;
  Idx f = make_idx(2);
  f.labels[7] = 3;
  f.labels.push_back(0);
  write_split(dir, f);
  const std::string msg = message_of([&] { FashionMnist(dir.path(), Split::Test); });
  EXPECT_NE(msg.find("holds 2 images"), std::string::npos) << msg;
  EXPECT_NE(msg.find("holds 3 labels"), std::string::npos) << msg;
}

TEST(FashionMnistFiles, TruncatedBody) {
  TempDir dir;
  Idx f = make_idx(3);
  f.images.resize(f.images.size() - 400);
  write_split(dir, f);
  expect_refused(dir, kImages, "is truncated");
  expect_refused(dir, kImages, "declares 3 images (2368 bytes uncompressed) but the data ends after 1968");
}

TEST(FashionMnistFiles, TruncatedHeader) {
  TempDir dir;
  Idx f = make_idx(1);
  f.images.resize(10);
  write_split(dir, f);
  expect_refused(dir, kImages, "has 10 bytes, too few for the 16-byte IDX header");

  write_gz(dir.file(kImages), {});
  expect_refused(dir, kImages, "has 0 bytes");
}

TEST(FashionMnistFiles, TrailingBytes) {
  TempDir dir;
  Idx f = make_idx(2);
  f.labels.push_back(1);
  write_split(dir, f);
  expect_refused(dir, kLabels, "data after the 2 labels");
}

TEST(FashionMnistFiles, LabelOutOfRange) {
  TempDir dir;
  Idx f = make_idx(2);
  f.labels[9] = 10;
  write_split(dir, f);
  expect_refused(dir, kLabels, "label 10 of sample 1 is not a class in 0..9");
}

TEST(FashionMnistFiles, TruncatedGzipStream) {
  TempDir dir;
  write_split(dir, make_idx(50));
  const std::string path = dir.file(kImages);
  std::vector<std::byte> gz = read_file(path);
  gz.resize(gz.size() / 2);
  write_file_atomic(path, gz);
  expect_refused(dir, kImages, "truncated");
}

TEST(FashionMnistFiles, CorruptGzipStream) {
  TempDir dir;
  write_split(dir, make_idx(50));
  const std::string path = dir.file(kImages);
  std::vector<std::byte> gz = read_file(path);
  for (size_t i = 20; i < gz.size() - 8; i += 7) gz[i] ^= std::byte{0x5A};
  write_file_atomic(path, gz);
  expect_refused(dir, kImages, "corrupt");
}

TEST(FashionMnistFiles, CorruptGzipChecksum) {
  TempDir dir;
  write_split(dir, make_idx(5));
  const std::string path = dir.file(kLabels);
  std::vector<std::byte> gz = read_file(path);
  gz[gz.size() - 6] ^= std::byte{1};  // the CRC-32 in the gzip trailer
  write_file_atomic(path, gz);
  expect_refused(dir, kLabels, "corrupt");
}

}  // namespace
}  // namespace dlmem::train
