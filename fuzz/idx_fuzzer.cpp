// libFuzzer target: Fashion-MNIST's IDX files (train/fashion_mnist.h). The first byte
// picks the file the rest becomes -- the images or the labels -- and the other one is a
// valid file for two samples; zlib reads plain files as they are, so the mutations
// reach the IDX parser (a .gz of the input would mostly test zlib's checksum).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "train/fashion_mnist.h"
#include "util/error.h"

namespace {

std::string dir() {
  static const std::string d = [] {
    std::string p = (std::filesystem::temp_directory_path() / ("dlmem-idx-fuzz-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

void put(const std::string& name, const void* data, size_t size) {
  std::ofstream(dir() + "/" + name, std::ios::binary | std::ios::trunc).write(static_cast<const char*>(data),
                                                                               static_cast<std::streamsize>(size));
}

// Valid IDX files for two 28x28 samples.
std::string valid_images() {
  std::string s = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  s.append(2 * 28 * 28, '\x40');
  return s;
}
std::string valid_labels() { return std::string{0, 0, 8, 1, 0, 0, 0, 2, 3, 7}; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool images = data[0] & 1;
  const std::string img = images ? std::string(reinterpret_cast<const char*>(data + 1), size - 1) : valid_images();
  const std::string lab = images ? valid_labels() : std::string(reinterpret_cast<const char*>(data + 1), size - 1);
  put(dlmem::train::FashionMnist::images_file(dlmem::train::Split::Train), img.data(), img.size());
  put(dlmem::train::FashionMnist::labels_file(dlmem::train::Split::Train), lab.data(), lab.size());
  try {
    const dlmem::train::FashionMnist ds(dir(), dlmem::train::Split::Train);
    std::vector<float> x(28 * 28);
    int32_t y = 0;
    for (int64_t i = 0; i < ds.size() && i < 4; ++i) ds.get(i, x.data(), &y);
  } catch (const dlmem::Error&) {
  }
  return 0;
}
