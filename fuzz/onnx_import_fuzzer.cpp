// libFuzzer target: the ONNX importer and the TensorProto reader on arbitrary bytes.
// Whatever the input, the only way out is a dlmem::Error (a clear message); anything
// else -- a crash, a sanitizer report, another exception -- is a bug. Built and run by
// scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined) over a corpus of the
// test models, as part of `make test`.
#include <cstddef>
#include <cstdint>
#include <span>

#include "models/onnx/onnx.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    // Under this name no external data file can exist: those references must fail cleanly.
    dlmem::models::onnx::Imported m = dlmem::models::onnx::import_model_bytes(bytes, "/nonexistent/fuzz.onnx", {.batch = 2});
    (void)m;
  } catch (const dlmem::Error&) {
  }
  try {
    (void)dlmem::models::onnx::parse_tensor(bytes, "/nonexistent/fuzz.pb");
  } catch (const dlmem::Error&) {
  }
  return 0;
}
