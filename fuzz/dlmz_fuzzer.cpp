// libFuzzer target: .dlmz compressed models (deploy/dlmz.h) from arbitrary bytes,
// decoded all the way to weights (Huffman codes, sparse indices, codebooks).
#include <cstddef>
#include <cstdint>
#include <span>

#include "deploy/dlmz.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dlmem::deploy::DlmzModel m =
        dlmem::deploy::decode_dlmz(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.dlmz");
    (void)dlmem::deploy::dlmz_weights(m, "fuzz.dlmz");
  } catch (const dlmem::Error&) {
  }
  return 0;
}
