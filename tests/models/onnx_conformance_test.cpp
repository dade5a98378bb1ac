// The ONNX project's own backend node tests (Debian's libonnx-testdata: model.onnx and
// test_data_set_*/input_*.pb, output_*.pb per test) through dlmem's ONNX runner, with
// the ONNX test runner's tolerances (rtol 1e-3, atol 1e-7).
//
// Every node test of the suite is run. Each one either passes, or is refused with a
// dlmem::Error that says what is not supported (an op dlmem does not import, or a form
// of a supported op it does not: asymmetric pads, a runtime Cast to int, ...). What
// must never happen: wrong numbers, or any other exception (a crash, an internal
// check). The tests that pass are recorded in tests/data/onnx/conformance_pass.txt;
// one of them failing is a regression. docs/onnx.md's table is written from this run:
//
//   DLMEM_ONNX_CONFORMANCE_OUT=out/conformance.tsv ./dlmem_tests --gtest_filter='OnnxConformance.*'
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "deploy/onnx_run.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace dlmem {
namespace {

namespace fs = std::filesystem;
constexpr const char* kNodeTests = "/usr/share/libonnx-testdata/data/node";

struct Row {
  // status: pass | folded (every output computed at import: shape arithmetic, constants)
  // | refused | random | WRONG | CRASH
  std::string test, ops, status, detail;
};

// Tests whose expected outputs come from numpy's random generator (dropout in training
// mode with a non-zero ratio): no other implementation can match them bit for bit.
bool random_test(const std::string& name) {
  return name.find("training_dropout") != std::string::npos && name.find("zero_ratio") == std::string::npos;
}

std::string ops_of(const ::onnx::ModelProto& m) {
  std::vector<std::string> ops;
  for (const auto& n : m.graph().node())
    if (std::find(ops.begin(), ops.end(), n.op_type()) == ops.end()) ops.push_back(n.op_type());
  std::string s;
  for (const auto& o : ops) s += (s.empty() ? "" : "+") + o;
  return s;
}

Row run_test(const fs::path& dir) {
  Row r{dir.filename().string(), "", "pass", ""};
  const std::string model = (dir / "model.onnx").string();
  ::onnx::ModelProto m;
  {
    std::ifstream in(model, std::ios::binary);
    if (!m.ParseFromIstream(&in)) return {r.test, "?", "refused", "unreadable model"};
  }
  r.ops = ops_of(m);
  if (random_test(r.test)) return {r.test, r.ops, "random", "the expected output is a draw of numpy's generator"};
  const std::vector<std::string> input_names = models::onnx::input_names(model);
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  bool all_at_import = true;
  try {
    for (const fs::path& s : sets) {
      std::map<std::string, models::onnx::Tensor> inputs;
      for (size_t k = 0; k < input_names.size(); ++k) {
        const fs::path f = s / ("input_" + std::to_string(k) + ".pb");
        if (fs::exists(f)) inputs[input_names[k]] = models::onnx::read_tensor(f.string());
      }
      const deploy::OnnxRun out = deploy::run_onnx(model, inputs, {.threads = 1});
      for (bool b : out.at_import) all_at_import = all_at_import && b;
      for (size_t k = 0;; ++k) {
        const fs::path f = s / ("output_" + std::to_string(k) + ".pb");
        if (!fs::exists(f)) break;
        if (k >= out.outputs.size()) return {r.test, r.ops, "WRONG", "too few outputs"};
        const deploy::Comparison c = deploy::compare(models::onnx::read_tensor(f.string()), out.outputs[k]);
        if (!c.ok) return {r.test, r.ops, "WRONG", s.filename().string() + " output " + std::to_string(k) + ": " + c.message};
      }
    }
  } catch (const Error& e) {
    std::string why = e.what();
    // The reason without the model's path.
    if (const size_t p = why.find("model.onnx: "); p != std::string::npos) why = why.substr(p + 12);
    if (const size_t p = why.find("; supported: "); p != std::string::npos) why = why.substr(0, p);
    return {r.test, r.ops, "refused", why};
  } catch (const std::exception& e) {
    return {r.test, r.ops, "CRASH", e.what()};
  }
  if (all_at_import) r.status = "folded";
  return r;
}

std::vector<Row> run_all() {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(kNodeTests))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<Row> rows;
  for (const auto& d : dirs) rows.push_back(run_test(d));
  return rows;
}

TEST(OnnxConformance, NodeTestsPassOrAreRefusedNeverWrong) {
  if (!fs::is_directory(kNodeTests)) GTEST_SKIP() << kNodeTests << " is missing: install libonnx-testdata (scripts/install-deps.sh)";
  const std::vector<Row> rows = run_all();
  ASSERT_GT(rows.size(), 500u) << "the ONNX node test suite looks incomplete";
  std::set<std::string> passed;
  for (const Row& r : rows) {
    EXPECT_NE(r.status, "WRONG") << r.test << " (" << r.ops << "): " << r.detail;
    EXPECT_NE(r.status, "CRASH") << r.test << " (" << r.ops << "): " << r.detail;
    if (r.status == "pass" || r.status == "folded") passed.insert(r.test);
  }
  // No test that passed when the list was recorded fails now.
  std::ifstream list(std::string(DLMEM_SOURCE_DIR) + "/tests/data/onnx/conformance_pass.txt");
  ASSERT_TRUE(list) << "tests/data/onnx/conformance_pass.txt is missing";
  int listed = 0;
  for (std::string t; std::getline(list, t);) {
    if (t.empty() || t[0] == '#') continue;
    ++listed;
    EXPECT_TRUE(passed.count(t)) << t << " passed when conformance_pass.txt was recorded and does not now";
  }
  EXPECT_GT(listed, 100);
  if (const char* out = std::getenv("DLMEM_ONNX_CONFORMANCE_OUT")) {
    std::ostringstream s;
    for (const Row& r : rows) s << r.test << '\t' << r.ops << '\t' << r.status << '\t' << r.detail << '\n';
    const std::string text = s.str();
    write_file_atomic(out, std::as_bytes(std::span(text.data(), text.size())));
  }
}

}  // namespace
}  // namespace dlmem
