#include "plan/json.h"

#include <algorithm>
#include <optional>

#include "util/crc32.h"
#include "util/svg_plot.h"
#include "util/error.h"

namespace dlmem::plan {

nlohmann::json stats_json(const Plan& p) {
  const PlanStats& s = p.stats;
  nlohmann::json roles;
  for (int r = 0; r < ir::kNumRoles; ++r)
    roles[std::string(ir::role_name(static_cast<ir::Role>(r)))] = s.peak_by_role[static_cast<size_t>(r)];
  return {{"policy", p.policy},
          {"budget", p.budget},
          {"placement", p.placement},
          {"device_arena", p.device_arena},
          {"host_arena", p.host_arena},
          {"peak_device", s.peak_device},
          {"peak_by_role", roles},
          {"no_reuse", s.no_reuse},
          {"lower_bound", s.lower_bound},
          {"flops", s.flops},
          {"extra_flops", s.extra_flops},
          {"bytes_to_host", s.bytes_to_host},
          {"bytes_to_device", s.bytes_to_device},
          {"plan_seconds", s.plan_seconds}};
}

namespace {

// Identifies the graph a plan was made for: every value's name, type and role and every
// node's name and op, so that a plan read against another model, batch or optimizer is
// refused.
nlohmann::json graph_fingerprint(const ir::Graph& g) {
  uint32_t crc = 0;
  auto add = [&](const std::string& s) {
    crc = crc32(std::as_bytes(std::span<const char>(s.data(), s.size() + 1)), crc);
  };
  for (const ir::Value& v : g.values()) add(v.name + " " + v.type.str() + " " + std::string(ir::role_name(v.role)));
  for (const ir::Node& n : g.nodes()) add(n.name + " " + std::string(ir::op_name(n.op)));
  return {{"values", g.num_values()}, {"nodes", g.num_nodes()}, {"crc32", crc}};
}

}  // namespace

nlohmann::json to_json(const ir::Graph& g, const Plan& p) {
  nlohmann::json j;
  j["format"] = "dlmem-plan";
  j["version"] = 1;
  j["graph"] = graph_fingerprint(g);
  j["stats"] = stats_json(p);
  nlohmann::json bufs = nlohmann::json::array();
  for (const Buffer& b : p.buffers)
    bufs.push_back({{"id", b.id},
                    {"value", g.value(b.value).name},
                    {"value_id", b.value},
                    {"role", ir::role_name(b.role)},
                    {"bytes", b.bytes},
                    {"space", b.space == Space::device ? "device" : "host"},
                    {"preloaded", b.preloaded},
                    {"persistent", b.persistent},
                    {"offset", b.offset},
                    {"begin", b.begin},
                    {"end", b.end}});
  j["buffers"] = std::move(bufs);
  nlohmann::json prog = nlohmann::json::array();
  for (const Instr& in : p.program) {
    nlohmann::json i = {{"kind", instr_name(in.kind)}, {"stream", stream_name(in.stream)}};
    if (in.kind == InstrKind::compute) {
      i["node"] = g.node(in.node).name;
      i["node_id"] = in.node;
      i["op"] = ir::op_name(g.node(in.node).op);
      if (in.recompute) i["recompute"] = true;
      if (in.workspace != kNoBuffer) i["workspace"] = in.workspace;
    }
    if (!in.inputs.empty()) i["inputs"] = in.inputs;
    if (!in.outputs.empty()) i["outputs"] = in.outputs;
    if (in.buffer != kNoBuffer) i["buffer"] = in.buffer;
    if (!in.waits.empty()) i["waits"] = in.waits;
    if (!in.codec.empty()) i["codec"] = in.codec;
    prog.push_back(std::move(i));
  }
  j["program"] = std::move(prog);
  nlohmann::json binding = nlohmann::json::array();
  for (size_t v = 0; v < p.binding.size(); ++v)
    if (p.binding[v] != kNoBuffer) binding.push_back({static_cast<int>(v), p.binding[v]});
  j["binding"] = std::move(binding);
  return j;
}

namespace {

// Field access with errors that name the place in the file.
class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}
  const nlohmann::json& field(const nlohmann::json& obj, const char* key, const std::string& at) const {
    if (!obj.is_object() || !obj.contains(key)) fail(at, ": field \"", key, "\" is missing");
    return obj[key];
  }
  int64_t integer(const nlohmann::json& obj, const char* key, const std::string& at) const {
    const nlohmann::json& f = field(obj, key, at);
    if (!f.is_number_integer()) fail(at, ": field \"", key, "\" must be an integer");
    return f.get<int64_t>();
  }
  std::string string(const nlohmann::json& obj, const char* key, const std::string& at) const {
    const nlohmann::json& f = field(obj, key, at);
    if (!f.is_string()) fail(at, ": field \"", key, "\" must be a string");
    return f.get<std::string>();
  }
  bool boolean(const nlohmann::json& obj, const char* key, const std::string& at, bool dflt) const {
    if (!obj.contains(key)) return dflt;
    if (!obj[key].is_boolean()) fail(at, ": field \"", key, "\" must be true or false");
    return obj[key].get<bool>();
  }
  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    throw Error(where_, ": ", args...);
  }

 private:
  std::string where_;
};

template <typename Enum, size_t N>
Enum parse_enum(const Reader& r, const std::string& text, std::string_view (*name_of)(Enum), const std::string& at,
                const char* what) {
  for (size_t k = 0; k < N; ++k)
    if (name_of(static_cast<Enum>(k)) == text) return static_cast<Enum>(k);
  std::string known;
  for (size_t k = 0; k < N; ++k) known += (k ? ", " : "") + std::string(name_of(static_cast<Enum>(k)));
  r.fail(at, ": unknown ", what, " '", text, "' (known: ", known, ")");
}

}  // namespace

Plan from_json(const ir::Graph& g, const nlohmann::json& j, const std::string& where) {
  const Reader r(where);
  if (!j.is_object() || j.value("format", std::string()) != "dlmem-plan")
    r.fail("not a dlmem plan (\"format\" must be \"dlmem-plan\"; write one with 'dlmem plan --out')");
  if (j.value("version", 0) != 1) r.fail("plan format version ", j.value("version", 0), " is not supported (this dlmem reads 1)");
  if (j.contains("graph") && j["graph"] != graph_fingerprint(g))
    r.fail("the plan was made for another model, batch, image size or optimizer (its \"graph\" fingerprint ",
           j["graph"].dump(), " differs from this graph's ", graph_fingerprint(g).dump(), ")");
  const nlohmann::json& stats = r.field(j, "stats", "plan");
  Plan p;
  p.policy = r.string(stats, "policy", "stats");
  p.budget = static_cast<uint64_t>(std::max<int64_t>(0, r.integer(stats, "budget", "stats")));
  p.placement = stats.value("placement", std::string());
  p.device_arena = static_cast<uint64_t>(std::max<int64_t>(0, r.integer(stats, "device_arena", "stats")));
  p.host_arena = static_cast<uint64_t>(std::max<int64_t>(0, r.integer(stats, "host_arena", "stats")));

  const nlohmann::json& bufs = r.field(j, "buffers", "plan");
  if (!bufs.is_array()) r.fail("\"buffers\" must be an array");
  for (size_t k = 0; k < bufs.size(); ++k) {
    const nlohmann::json& b = bufs[k];
    const std::string at = "buffer " + std::to_string(k);
    if (r.integer(b, "id", at) != static_cast<int64_t>(k)) r.fail(at, ": ids must be 0, 1, 2, ... in order");
    const std::string name = r.string(b, "value", at);
    const int64_t vid = b.contains("value_id") ? r.integer(b, "value_id", at) : g.find(name);
    if (vid < 0 || vid >= g.num_values() || g.value(static_cast<ir::ValueId>(vid)).name != name)
      r.fail(at, ": value '", name, "' is not in this model's graph (was the plan made for another model, batch or "
             "optimizer?)");
    const std::string role = r.string(b, "role", at);
    std::optional<ir::Role> rl;
    for (int x = 0; x < ir::kNumRoles; ++x)
      if (ir::role_name(static_cast<ir::Role>(x)) == role) rl = static_cast<ir::Role>(x);
    if (!rl) r.fail(at, ": unknown role '", role, "'");
    const std::string space = r.string(b, "space", at);
    if (space != "device" && space != "host") r.fail(at, ": space must be \"device\" or \"host\", got '", space, "'");
    const int64_t bytes = r.integer(b, "bytes", at);
    if (bytes < 0) r.fail(at, ": bytes must be >= 0");
    const BufferId id = p.add_buffer(static_cast<ir::ValueId>(vid), *rl, static_cast<uint64_t>(bytes),
                                     space == "device" ? Space::device : Space::host);
    Buffer& buf = p.buffers[static_cast<size_t>(id)];
    buf.preloaded = r.boolean(b, "preloaded", at, false);
    buf.persistent = r.boolean(b, "persistent", at, false);
    buf.offset = b.contains("offset") ? r.integer(b, "offset", at) : -1;
    if (buf.offset < -1) r.fail(at, ": offset must be >= 0 (or -1: not placed)");
  }
  const auto nb = static_cast<int64_t>(p.buffers.size());
  auto buffer_ref = [&](const nlohmann::json& v, const std::string& at) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= nb)
      r.fail(at, ": buffer reference ", v.dump(), " is not a buffer id (0..", nb - 1, ")");
    return static_cast<BufferId>(v.get<int64_t>());
  };
  auto buffer_list = [&](const nlohmann::json& in, const char* key, const std::string& at) {
    std::vector<BufferId> out;
    if (!in.contains(key)) return out;
    if (!in[key].is_array()) r.fail(at, ": \"", key, "\" must be an array of buffer ids");
    for (const auto& v : in[key]) out.push_back(buffer_ref(v, at));
    return out;
  };

  const nlohmann::json& prog = r.field(j, "program", "plan");
  if (!prog.is_array()) r.fail("\"program\" must be an array");
  for (size_t k = 0; k < prog.size(); ++k) {
    const nlohmann::json& i = prog[k];
    const std::string at = "instruction " + std::to_string(k);
    Instr in;
    in.kind = parse_enum<InstrKind, 6>(r, r.string(i, "kind", at), instr_name, at, "instruction kind");
    in.stream = parse_enum<Stream, 3>(r, r.string(i, "stream", at), stream_name, at, "stream");
    if (in.kind == InstrKind::compute) {
      const std::string name = r.string(i, "node", at);
      const int64_t nid = i.contains("node_id") ? r.integer(i, "node_id", at) : -1;
      if (nid >= 0 && nid < g.num_nodes() && g.node(static_cast<ir::NodeId>(nid)).name == name) {
        in.node = static_cast<ir::NodeId>(nid);
      } else {
        for (const ir::Node& n : g.nodes())
          if (n.name == name) in.node = n.id;
        if (in.node == ir::kNoNode || nid >= 0)
          r.fail(at, ": node '", name, "' is not in this model's graph (was the plan made for another model?)");
      }
      in.recompute = r.boolean(i, "recompute", at, false);
      if (i.contains("workspace")) in.workspace = buffer_ref(i["workspace"], at);
    }
    in.inputs = buffer_list(i, "inputs", at);
    in.outputs = buffer_list(i, "outputs", at);
    if (i.contains("buffer")) in.buffer = buffer_ref(i["buffer"], at);
    if (in.kind == InstrKind::free && in.buffer == kNoBuffer) r.fail(at, ": a free needs \"buffer\"");
    if (i.contains("waits")) {
      if (!i["waits"].is_array()) r.fail(at, ": \"waits\" must be an array of instruction indices");
      for (const auto& w : i["waits"]) {
        if (!w.is_number_integer() || w.get<int64_t>() < 0 || w.get<int64_t>() >= static_cast<int64_t>(k))
          r.fail(at, ": waits on ", w.dump(), ", which is not an earlier instruction");
        in.waits.push_back(static_cast<int>(w.get<int64_t>()));
      }
    }
    in.codec = i.value("codec", std::string());
    p.program.push_back(std::move(in));
  }

  p.binding.assign(static_cast<size_t>(g.num_values()), kNoBuffer);
  if (j.contains("binding")) {
    const nlohmann::json& bind = j["binding"];
    if (!bind.is_array()) r.fail("\"binding\" must be an array of [value id, buffer id] pairs");
    for (const auto& e : bind) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || e[0].get<int64_t>() < 0 ||
          e[0].get<int64_t>() >= g.num_values())
        r.fail("binding entry ", e.dump(), " is not a [value id, buffer id] pair of this graph");
      p.binding[static_cast<size_t>(e[0].get<int64_t>())] = buffer_ref(e[1], "binding");
    }
  }
  compute_lifetimes(p);
  // A file is the user's input: a plan that breaks the contract is their error, named.
  if (const auto v = find_violation(g, p))
    r.fail("the plan is inconsistent: ", *v, "; write it again with 'dlmem plan ... --out'");
  compute_stats(g, p);
  p.stats.lower_bound = static_cast<uint64_t>(stats.value("lower_bound", int64_t{0}));
  p.stats.plan_seconds = stats.value("plan_seconds", 0.0);
  const int64_t stored_peak = r.integer(stats, "peak_device", "stats");
  if (stored_peak != static_cast<int64_t>(p.stats.peak_device))
    r.fail("the program's peak (", p.stats.peak_device, " bytes) differs from the recorded one (", stored_peak,
           "); the file was edited or made for another model");
  return p;
}

std::string memory_svg(const Plan& p, const std::string& title) {
  StackedSeries s;
  s.title = title;
  s.x_label = "instruction";
  s.y_label = "resident bytes";
  std::vector<int> roles;
  const auto live = resident_by_role(p);
  for (int r = 0; r < ir::kNumRoles; ++r) {
    bool any = false;
    for (const auto& row : live) any = any || row[static_cast<size_t>(r)] > 0;
    if (any) {
      roles.push_back(r);
      s.names.emplace_back(ir::role_name(static_cast<ir::Role>(r)));
    }
  }
  for (const auto& row : live) {
    std::vector<uint64_t> v;
    for (int r : roles) v.push_back(row[static_cast<size_t>(r)]);
    s.values.push_back(std::move(v));
  }
  s.lines.emplace_back("arena", p.device_arena);
  if (p.budget) s.lines.emplace_back("budget", p.budget);
  return stacked_area_svg(s);
}

}  // namespace dlmem::plan
