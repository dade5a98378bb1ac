// The plan report's data and page (report/html.h); the page itself is tested in
// Chromium by tests/report/browser_test.py (ctest: report_browser).
#include <gtest/gtest.h>

#include <set>

#include "planners/auto/auto.h"
#include "report/html.h"
#include "session/session.h"
#include "util/error.h"

namespace dlmem::report {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(ReportData, ColumnsAreThePlansBuffersAndInstructions) {
  const session::Session ses({.model = "resnet20", .config = {.batch = 16}, .device = "v100-16gb"});
  const plan::Plan p = ses.plan({.policy = "swap:tensor", .budget = ses.budget("70%")});
  const plan::Plan unmanaged = ses.plan({.policy = "default"});
  const nlohmann::json d = plan_data(ses.graph(), p, ses.cost_model(), unmanaged, {.model = "resnet20", .batch = 16});
  ASSERT_EQ(d["buffers"]["b"].size(), p.buffers.size());
  ASSERT_EQ(d["program"]["k"].size(), p.program.size());
  EXPECT_EQ(d["header"]["planned_peak"], p.stats.peak_device);
  EXPECT_EQ(d["header"]["simulated_peak"], p.stats.peak_device);
  EXPECT_EQ(d["header"]["unmanaged_arena"], unmanaged.device_arena);
  const std::vector<std::string> names = d["names"];
  // Every buffer names its value, bytes and lifetime as the plan has them, and a
  // stashed value carries explain's decision.
  const planners::Explanation e = planners::explain(ses.graph(), p, ses.cost_model());
  std::map<std::string, int> decided;
  for (const planners::TensorDecision& t : e.tensors) decided[t.name] = static_cast<int>(t.decision);
  int swapped = 0, host = 0;
  for (size_t b = 0; b < p.buffers.size(); ++b) {
    const plan::Buffer& buf = p.buffers[b];
    const std::string& name = ses.graph().value(buf.value).name;
    EXPECT_EQ(names.at(d["buffers"]["v"][b].get<size_t>()), name);
    EXPECT_EQ(d["buffers"]["b"][b], buf.bytes);
    EXPECT_EQ(d["buffers"]["a"][b], buf.begin);
    EXPECT_EQ(d["buffers"]["e"][b], buf.end);
    EXPECT_EQ(d["buffers"]["d"][b], decided.contains(name) ? decided[name] : -1) << name;
    const std::string origin = d["origins"][d["buffers"]["o"][b].get<size_t>()];
    swapped += origin == "swapped in";
    host += origin == "host copy";
    EXPECT_EQ(origin == "host copy", buf.space == plan::Space::host) << name;
  }
  EXPECT_GT(swapped, 0);
  EXPECT_EQ(swapped, host);
  // Times in nanoseconds, each instruction starting at or after its issue.
  for (size_t i = 0; i < p.program.size(); ++i) {
    EXPECT_LE(d["program"]["i"][i].get<int64_t>(), d["program"]["t0"][i].get<int64_t>());
    EXPECT_LE(d["program"]["t0"][i].get<int64_t>(), d["program"]["t1"][i].get<int64_t>());
  }
  EXPECT_EQ(d["explain"].size(), e.tensors.size());
}

TEST(ReportPage, DataCannotEndItsScriptElement) {
  nlohmann::json d = {{"header", {{"model", "m</script><script>alert(1)</script>"}, {"policy", "a<b&c"}}},
                      {"names", {"</script>", "x"}}};
  const std::string page = html({d});
  EXPECT_EQ(count(page, "</script>"), 2u);  // the data's element and the code's
  EXPECT_EQ(count(page, "<script"), 2u);
  EXPECT_NE(page.find("<title>dlmem plan: m&lt;/script>&lt;script>alert(1)&lt;/script>, a&lt;b&amp;c</title>"), std::string::npos);
  EXPECT_NE(page.find("\\u003c/script>"), std::string::npos);  // still the same JSON string
  EXPECT_EQ(page.find("http://"), std::string::npos);      // nothing fetched from anywhere
  EXPECT_EQ(page.find("https://"), std::string::npos);
}

TEST(ReportPage, OneOrTwoPlans) {
  const nlohmann::json d = {{"header", {{"model", "m"}, {"policy", "p"}}}};
  EXPECT_NO_THROW(html({d, d}));
  EXPECT_THROW(html({}), Error);
  EXPECT_THROW(html({d, d, d}), Error);
}

}  // namespace
}  // namespace dlmem::report
