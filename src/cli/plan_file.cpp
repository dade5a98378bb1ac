// Plan files as `dlmem simulate` and `dlmem report` read them (Note [Plan files and
// graphs], cmd_simulate.cpp), and the report data both write.
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "plan/json.h"
#include "report/html.h"
#include "util/json_file.h"
#include "util/error.h"

namespace dlmem::cli {

namespace {

ModelArgs model_from_header(const nlohmann::json& j, const std::string& path) {
  if (!j.contains("model") || !j["model"].is_object())
    throw Error("plan '", path, "' has no \"model\" header, so its graph cannot be rebuilt; write it again with "
                "'dlmem plan ... --out ", path, "'");
  const nlohmann::json& m = j["model"];
  ModelArgs a;
  try {
    a.model = m.at("name").get<std::string>();
    a.batch = m.at("batch").get<int64_t>();
    a.image_size = m.value("image_size", int64_t{0});
    a.seq_len = m.value("seq_len", int64_t{0});
    a.num_classes = m.value("num_classes", int64_t{0});
    a.optimizer = m.value("optimizer", std::string("sgd"));
    a.ranks = m.value("ranks", 1);
    a.zero = m.value("zero", 0);
    a.link = m.value("link", std::string());
    a.bucket_mib = m.value("bucket_mib", 25.0);
  } catch (const nlohmann::json::exception& e) {
    throw Error("plan '", path, "': bad \"model\" header (", e.what(), ")");
  }
  return a;
}

}  // namespace

PlanFile load_plan_file(const std::string& path, const std::string& onnx, const std::string& device, int threads) {
  const nlohmann::json j = read_json_file(path, "plan");
  PlanFile f;
  f.model = model_from_header(j, path);
  if (!onnx.empty()) {
    if (!f.model.model.ends_with(".onnx"))
      throw Error("plan '", path, "' was made for zoo model '", f.model.model, "', not an ONNX model; drop --onnx");
    f.model.model = onnx;  // the same model where it is now
  }
  // The cpu backend's kernels (Note [Devices]), on the profile simulated.
  f.session = std::make_unique<session::Session>(f.model.session(device == "cuda" ? "cpu" : device, threads));
  f.plan = plan::from_json(f.session->graph(), j, path);
  plan::validate(f.session->graph(), f.plan);
  return f;
}

std::string profile_choices() {
  std::string s;
  for (const sim::DeviceProfile& p : sim::named_profiles()) s += p.name + " | ";
  return s + "host | profile.json";
}

nlohmann::json report_data(const session::Session& ses, const plan::Plan& p, const sim::CostModel& cost,
                           const ModelArgs& m, const std::string& source) {
  const plan::Plan unmanaged = ses.plan({.policy = "default"});
  return report::plan_data(ses.graph(), p, cost, unmanaged,
                           {.model = m.model, .batch = m.batch, .device = ses.profile_name(), .source = source});
}

}  // namespace dlmem::cli
