#include "train/dataset.h"

#include "util/error.h"

namespace dlmem::train {

int64_t Dataset::sample_numel() const {
  int64_t n = 1;
  for (int64_t d : sample_shape()) n *= d;
  return n;
}

void Dataset::check_index(int64_t index) const {
  if (index >= 0 && index < size()) return;
  if (size() == 0) throw Error("sample index ", index, " is out of range: ", name(), " is empty");
  throw Error("sample index ", index, " is out of range for ", name(), ", which has ", size(),
              " samples (valid: 0 to ", size() - 1, ")");
}

}  // namespace dlmem::train
