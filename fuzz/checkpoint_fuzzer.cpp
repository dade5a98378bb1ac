// libFuzzer target: checkpoint files (train/checkpoint.h) from arbitrary bytes. Only a
// dlmem::Error may come out; every tensor that decodes converts to its dtype.
#include <cstddef>
#include <cstdint>
#include <span>

#include "train/checkpoint.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dlmem::train::Checkpoint ck =
        dlmem::train::decode_checkpoint(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.ckpt");
    for (const auto& t : ck.tensors) {
      try {
        (void)t.to_f32();
      } catch (const dlmem::Error&) {  // another dtype
      }
    }
  } catch (const dlmem::Error&) {
  }
  return 0;
}
