// _dlmem: the compiled half of the Python package (python/dlmem wraps it in Pythonic
// objects). Thin on purpose: every figure comes from the same library calls the
// command line makes (sessions, planners, the simulator, the trainer), and results
// cross as dicts of plain values or NumPy arrays.
//
// Errors: dlmem::Error becomes dlmem.Error (a ValueError), dlmem::OutOfMemory becomes
// dlmem.OutOfMemory (also a MemoryError) with .min_budget, an internal check becomes
// RuntimeError -- never a crash of the interpreter. Long work (planning, training
// steps, inference) runs without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "analysis/liveness.h"
#include "analysis/memory.h"
#include "analysis/report_json.h"
#include "deploy/onnx_run.h"
#include "models/onnx/onnx.h"
#include "models/remat_graph.h"
#include "models/zoo.h"
#include "plan/json.h"
#include "planners/auto/auto.h"
#include "planners/planner.h"
#include "planners/remat.h"
#include "report/html.h"
#include "session/session.h"
#include "sim/result_json.h"
#include "sim/simulator.h"
#include "train/batch_iterator.h"
#include "train/checkpoint.h"
#include "train/fashion_mnist.h"
#include "train/trainer.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace py = pybind11;
using namespace dlmem;

namespace {

// JSON text -> Python objects (via the json module: exact ints, floats as Python's).
py::object from_json(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

struct ModelSpec {
  std::string model;
  int64_t batch = 1;
  int64_t image_size = 0, seq_len = 0, classes = 0;
  std::string optimizer = "sgd";
  std::string device = "cpu";
  int threads = 0;
};

ir::Optimizer parse_optimizer(const std::string& o) {
  if (o == "sgd") return ir::Optimizer::sgd;
  if (o == "adam") return ir::Optimizer::adam;
  if (o == "none") return ir::Optimizer::none;
  throw Error("unknown optimizer '", o, "'; use 'sgd', 'adam' or 'none'");
}

session::SessionOptions session_options(const ModelSpec& m) {
  if (m.batch <= 0) throw Error("batch must be positive, got ", m.batch);
  session::SessionOptions o{.model = m.model,
                            .config = {.batch = m.batch, .image_size = m.image_size, .num_classes = m.classes,
                                       .seq_len = m.seq_len},
                            .device = m.device,
                            .threads = m.threads};
  o.train.optimizer = parse_optimizer(m.optimizer);
  return o;
}

// The policy `dlmem plan` uses for these arguments (cli::resolve_policy's rule).
std::string resolve(const std::string& policy, const std::string& budget) {
  if (!policy.empty()) return policy;
  return budget.empty() ? "default" : "auto";
}

// A plan with the session it was made in (the graph, the cost model).
struct PlanHandle {
  ModelSpec spec;
  std::shared_ptr<session::Session> session;
  plan::Plan plan;

  nlohmann::json stats() const {
    const plan::Plan& p = plan;
    nlohmann::json j = plan::stats_json(p);
    j["model"] = spec.model;
    j["batch"] = spec.batch;
    j["device"] = session->profile_name();
    j["arena_over_max_live"] = p.stats.peak_device ? static_cast<double>(p.device_arena) / static_cast<double>(p.stats.peak_device) : 0;
    j["extra_flops_percent"] = 100.0 * p.stats.extra_flops / std::max(1.0, p.stats.flops - p.stats.extra_flops);
    if (!p.stats.chosen.empty()) j["chosen"] = p.stats.chosen;
    return j;
  }
  std::string to_json() const {
    nlohmann::json pj = plan::to_json(session->graph(), plan);
    // What `dlmem plan --out` writes, so `dlmem simulate --plan` reads it.
    pj["model"] = {{"name", spec.model},          {"batch", spec.batch},         {"image_size", spec.image_size},
                   {"seq_len", spec.seq_len},     {"num_classes", spec.classes}, {"optimizer", spec.optimizer},
                   {"device", session->profile_name()}, {"backend", session->cuda() ? "cuda" : "cpu"}};
    return pj.dump(1);
  }
  nlohmann::json explain() const { return planners::explanation_json(planners::explain(session->graph(), plan, session->cost_model())); }
  std::string svg() const {
    return plan::memory_svg(plan, spec.model + " batch " + std::to_string(spec.batch) + ", policy " + plan.policy +
                                      ": resident device memory by role");
  }
  // The plan report's data (report/html.h) on the profile it was planned for.
  nlohmann::json report_data() const {
    return report::plan_data(session->graph(), plan, session->cost_model(), session->plan({.policy = "default"}),
                             {.model = spec.model, .batch = spec.batch, .device = session->profile_name()});
  }
  nlohmann::json simulate(const std::string& device) const {
    // The plan on another device's profile: same graph (cpu kernels' workspaces), its cost model.
    std::shared_ptr<session::Session> s = session;
    if (!device.empty() && device != session->profile_name()) {
      ModelSpec other = spec;
      other.device = device;
      s = std::make_shared<session::Session>(session_options(other));
    }
    const sim::CostModel& cm = s->cost_model();
    const sim::SimResult r = sim::simulate(s->graph(), plan, cm);
    const sim::SimResult ru = sim::simulate(s->graph(), s->plan({.policy = "default"}), cm, {.record_memory = false});
    return sim::result_json(r, ru, plan, s->profile());
  }
};

PlanHandle make_plan(const ModelSpec& spec, const std::string& policy, const std::string& budget, double time_limit,
                     double place_time_limit, const std::string& lossy) {
  PlanHandle h{spec, std::make_shared<session::Session>(session_options(spec)), {}};
  const std::string pol = resolve(policy, budget);
  if (!lossy.empty() && pol != "auto" && !pol.starts_with("compress"))
    throw Error("lossy='", lossy, "' works with policy 'compress' or 'auto', not '", pol, "'");
  h.plan = h.session->plan({.policy = pol == "compress" && !lossy.empty() ? "compress:" + lossy : pol,
                            .budget = h.session->budget(budget),
                            .options = {.time_limit_s = time_limit, .place_time_limit_s = place_time_limit, .lossy = lossy}});
  return h;
}

nlohmann::json analyze(const ModelSpec& spec, bool layers, bool workspaces) {
  // The kernels' workspaces of the cpu backend, as `dlmem analyze` counts them.
  std::unique_ptr<runtime::Backend> be;
  if (workspaces) be = runtime::make_cpu_backend();
  const ir::Graph g = session::build_graph(session_options(spec), be.get());
  const auto live = analysis::compute_liveness(g, analysis::default_schedule(g));
  const analysis::MemoryReport r = analysis::memory_report(g, live);
  nlohmann::json j = analysis::report_json(r, layers);
  j["model"] = spec.model;
  j["batch"] = spec.batch;
  j["optimizer"] = spec.optimizer;
  j["nodes"] = g.num_nodes();
  j["values"] = g.num_values();
  return j;
}

// ---- NumPy

// The bytes of a C-contiguous array of `dtype` (no copy), or an Error naming `what`.
template <typename T>
std::span<const std::byte> array_bytes(const py::array& a, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a) || !(a.flags() & py::array::c_style))
    throw Error(what, " must be a C-contiguous ", py::str(py::dtype::of<T>()).cast<std::string>(), " NumPy array, got ",
                py::str(a.dtype()).cast<std::string>(), (a.flags() & py::array::c_style) ? "" : " (not C-contiguous)");
  return {static_cast<const std::byte*>(a.data()), static_cast<size_t>(a.nbytes())};
}

py::array_t<float> to_array(const std::vector<float>& v, const ir::Shape& shape) {
  py::array_t<float> a(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(float));
  return a;
}

py::array tensor_to_array(const models::onnx::Tensor& t) {
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  if (t.is_float()) {
    py::array_t<float> a(shape);
    std::memcpy(a.mutable_data(), t.f.data(), t.f.size() * sizeof(float));
    return a;
  }
  py::array_t<int64_t> a(shape);
  std::memcpy(a.mutable_data(), t.i.data(), t.i.size() * sizeof(int64_t));
  return a;
}

models::onnx::Tensor array_to_tensor(const std::string& name, const py::array& a) {
  models::onnx::Tensor t;
  t.name = name;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) t.shape.push_back(a.shape(i));
  if (py::isinstance<py::array_t<float>>(a)) {
    const auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
    t.f.assign(c.data(), c.data() + c.size());
  } else if (py::isinstance<py::array_t<int64_t>>(a) || py::isinstance<py::array_t<int32_t>>(a)) {
    const auto c = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    t.elem_type = 7;
    t.i.assign(c.data(), c.data() + c.size());
  } else {
    throw Error("input '", name, "' must be a float32, int64 or int32 NumPy array, got ", py::str(a.dtype()).cast<std::string>());
  }
  return t;
}

// ---- training

struct TrainerHandle {
  std::unique_ptr<train::Trainer> t;
  bool token_model = false;
};

TrainerHandle make_trainer(const ModelSpec& spec, const std::string& policy, const std::string& budget, double lr,
                           double momentum, double weight_decay, uint64_t seed, const std::string& dataset,
                           const std::string& resume, const std::string& lossy) {
  train::TrainConfig c;
  c.model = spec.model;
  c.batch = spec.batch;
  c.model_config = session_options(spec).config;
  c.optim.optimizer = parse_optimizer(spec.optimizer);
  if (c.optim.optimizer == ir::Optimizer::none) throw Error("optimizer must be 'sgd' or 'adam' to train");
  if (lr < 0) lr = c.optim.optimizer == ir::Optimizer::adam ? 1e-3 : 0.01;
  if (lr == 0) throw Error("lr must be positive, got ", lr);
  c.optim.lr = lr;
  c.optim.momentum = momentum;
  c.optim.weight_decay = weight_decay;
  c.budget = budget;
  c.policy = resolve(policy, budget);
  c.plan_options.lossy = lossy;
  c.seed = seed;
  c.dataset = dataset;
  c.resume = resume;
  c.threads = spec.threads;
  c.device = spec.device;
  c.evaluate = dataset != "none";
  TrainerHandle h{std::make_unique<train::Trainer>(c), false};
  h.token_model = h.t->graph().find("ids") != ir::kNoValue;
  return h;
}

py::dict state_dict(const train::Trainer& t) {
  py::dict d;
  for (const auto& [name, values] : t.state()) d[py::str(name)] = to_array(values, t.graph().value(t.graph().find(name)).type.shape);
  return d;
}

}  // namespace

PYBIND11_MODULE(_dlmem, m) {
  m.doc() = "dlmem's compiled core; use the dlmem package";

  py::module_::import("dlmem._errors");  // the exception classes the translator raises
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const OutOfMemory& e) {
      py::object cls = py::module_::import("dlmem._errors").attr("OutOfMemory");
      py::object inst = cls(e.what(), e.min_budget ? py::object(py::int_(e.min_budget)) : py::object(py::none()));
      PyErr_SetObject(cls.ptr(), inst.ptr());
    } catch (const Error& e) {
      py::object cls = py::module_::import("dlmem._errors").attr("Error");
      PyErr_SetString(cls.ptr(), e.what());
    } catch (const InternalError& e) {
      PyErr_SetString(PyExc_RuntimeError, (std::string("dlmem internal error (a bug, please report it): ") + e.what()).c_str());
    }
  });

  py::class_<ModelSpec>(m, "ModelSpec")
      .def(py::init<>())
      .def_readwrite("model", &ModelSpec::model)
      .def_readwrite("batch", &ModelSpec::batch)
      .def_readwrite("image_size", &ModelSpec::image_size)
      .def_readwrite("seq_len", &ModelSpec::seq_len)
      .def_readwrite("classes", &ModelSpec::classes)
      .def_readwrite("optimizer", &ModelSpec::optimizer)
      .def_readwrite("device", &ModelSpec::device)
      .def_readwrite("threads", &ModelSpec::threads);

  m.def("models", [] {
    py::list l;
    for (const auto& i : models::list_models())
      l.append(py::dict(py::arg("name") = i.name, py::arg("description") = i.description, py::arg("parameters") = i.reference_params));
    return l;
  });
  m.def("onnx_ops", &models::onnx::supported_ops);
  m.def("onnx_info", [](const std::string& path, int64_t batch) {
    const models::onnx::Imported im = models::onnx::import_model(path, {.batch = batch, .training = false});
    py::list ins, outs;
    for (const auto& p : im.inputs) {
      py::dict d(py::arg("name") = p.name);
      if (p.value != ir::kNoValue) d["shape"] = im.graph.value(p.value).type.shape, d["dtype"] = std::string(ir::dtype_name(im.graph.value(p.value).type.dtype));
      ins.append(d);
    }
    for (const auto& p : im.outputs) {
      py::dict d(py::arg("name") = p.name);
      if (p.value != ir::kNoValue) d["shape"] = im.graph.value(p.value).type.shape;
      outs.append(d);
    }
    return py::dict(py::arg("inputs") = ins, py::arg("outputs") = outs, py::arg("opset") = im.opset,
                    py::arg("producer") = im.producer, py::arg("op_counts") = im.op_counts,
                    py::arg("parameters") = im.graph.parameter_count());
  });
  m.def("analyze", [](const ModelSpec& s, bool layers, bool workspaces) { return from_json(analyze(s, layers, workspaces)); });

  py::class_<PlanHandle>(m, "PlanHandle")
      .def("stats", [](const PlanHandle& h) { return from_json(h.stats()); })
      .def("to_json", &PlanHandle::to_json)
      .def("explain", [](const PlanHandle& h) {
        nlohmann::json j;
        {
          py::gil_scoped_release nogil;
          j = h.explain();
        }
        return from_json(j);
      })
      .def("svg", &PlanHandle::svg)
      .def("report_data", [](const PlanHandle& h) {  // kept as JSON text: it only goes back to report_html
        py::gil_scoped_release nogil;
        return h.report_data().dump();
      })
      .def("simulate", [](const PlanHandle& h, const std::string& device) {
        nlohmann::json j;
        {
          py::gil_scoped_release nogil;
          j = h.simulate(device);
        }
        return from_json(j);
      });
  m.def("write_report", [](const std::string& path, const std::vector<std::string>& data) {
    std::vector<nlohmann::json> plans;
    for (const std::string& d : data) plans.push_back(nlohmann::json::parse(d));
    py::gil_scoped_release nogil;
    report::write_html(path, plans);
  });
  m.def("plan", [](const ModelSpec& s, const std::string& policy, const std::string& budget, double time_limit,
                   double place_time_limit, const std::string& lossy) {
    py::gil_scoped_release nogil;
    return make_plan(s, policy, budget, time_limit, place_time_limit, lossy);
  });

  m.def("remat", [](const std::string& path, const std::string& policy, const std::string& budget, double time_limit) {
    nlohmann::json j;
    {
      py::gil_scoped_release nogil;
      const models::RematGraph rg = models::read_remat_graph(path);
      planners::RematRequest req{.policy = policy, .time_limit_s = time_limit};
      planners::parse_remat_budget(budget, req);
      j = planners::remat_json(planners::solve_remat(rg, req));
      j.update({{"graph", rg.name}, {"nodes", rg.graph.num_nodes()}, {"backward_nodes", rg.num_backward}});
    }
    return from_json(j);
  });

  py::class_<TrainerHandle>(m, "TrainerHandle")
      .def("step", [](TrainerHandle& h, const py::array& x, const py::array& y) {
        const auto in = h.token_model ? array_bytes<int32_t>(x, "inputs") : array_bytes<float>(x, "inputs");
        const auto lab = array_bytes<int32_t>(y, "labels");
        py::gil_scoped_release nogil;
        return h.t->step_on(in, lab);
      })
      .def("predict", [](TrainerHandle& h, const py::array& x) {
        const auto in = h.token_model ? array_bytes<int32_t>(x, "inputs") : array_bytes<float>(x, "inputs");
        std::vector<float> logits;
        {
          py::gil_scoped_release nogil;
          logits = h.t->predict(in);
        }
        const ir::Graph& g = h.t->graph();
        return to_array(logits, g.value(g.outputs.at(0)).type.shape);
      })
      .def("run", [](TrainerHandle& h, int64_t epochs, int64_t steps, bool progress) {
        train::TrainResult r;
        {
          py::gil_scoped_release nogil;
          r = h.t->run(progress ? &std::cerr : nullptr, epochs, steps);
        }
        py::list eps;
        for (const auto& e : r.epochs)
          eps.append(py::dict(py::arg("epoch") = e.epoch, py::arg("train_loss") = e.train_loss,
                              py::arg("train_accuracy") = e.train_accuracy, py::arg("test_accuracy") = e.test_accuracy,
                              py::arg("seconds") = e.seconds, py::arg("samples_per_second") = e.samples_per_second));
        return py::dict(py::arg("epochs") = eps, py::arg("losses") = r.losses, py::arg("peak_device") = r.peak_device,
                        py::arg("planned_peak") = r.planned_peak, py::arg("arena") = r.arena);
      })
      .def("evaluate", [](TrainerHandle& h) {
        py::gil_scoped_release nogil;
        return h.t->evaluate();
      })
      .def("state", [](const TrainerHandle& h) { return state_dict(*h.t); })
      .def("load_state", [](TrainerHandle& h, const py::dict& d) {
        std::map<std::string, std::vector<float>> s;
        for (const auto& [k, v] : d) {
          const std::string name = py::str(k);
          const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
          if (!a) throw Error("state '", name, "' must be an array of numbers");
          s[name].assign(a.data(), a.data() + a.size());
        }
        h.t->load_state(s);
      })
      .def("save", [](const TrainerHandle& h, const std::string& path) { h.t->save(path); })
      .def("plan_stats", [](const TrainerHandle& h) {
        nlohmann::json j = plan::stats_json(h.t->plan());
        if (!h.t->plan().stats.chosen.empty()) j["chosen"] = h.t->plan().stats.chosen;
        return from_json(j);
      })
      .def("measured_peak", [](const TrainerHandle& h) { return h.t->executor().stats().peak_device; })
      .def("steps_done", [](const TrainerHandle& h) { return h.t->steps_done(); })
      .def("input_shape", [](const TrainerHandle& h) {
        const ir::Graph& g = h.t->graph();
        const ir::ValueId in = g.find("input") != ir::kNoValue ? g.find("input") : g.find("ids");
        return g.value(in).type.shape;
      })
      .def("token_model", [](const TrainerHandle& h) { return h.token_model; });
  m.def("trainer", &make_trainer);

  m.def("fashion_mnist", [](const std::string& split, const std::string& dir) {
    if (split != "train" && split != "test") throw Error("split must be 'train' or 'test', got '", split, "'");
    const std::string d = dir.empty() ? train::FashionMnist::default_dir() : dir;
    return std::make_shared<train::FashionMnist>(d, split == "test" ? train::Split::Test : train::Split::Train);
  });
  py::class_<train::FashionMnist, std::shared_ptr<train::FashionMnist>>(m, "FashionMnist")
      .def("__len__", &train::FashionMnist::size)
      .def("batches", [](std::shared_ptr<train::FashionMnist> ds, int64_t batch, bool shuffle, uint64_t seed, bool drop_last,
                         int64_t epoch) {
        // The trainer's order: BatchIterator with the run's seed, reset to the epoch.
        train::BatchIterator it(*ds, {.batch_size = batch, .shuffle = shuffle, .seed = seed, .drop_last = drop_last});
        it.reset(epoch);
        py::list out;
        train::Batch b;
        const auto shape = ds->sample_shape();
        while (it.next(b)) {
          py::array_t<float> x({static_cast<py::ssize_t>(b.size), static_cast<py::ssize_t>(shape[0]),
                                static_cast<py::ssize_t>(shape[1]), static_cast<py::ssize_t>(shape[2])});
          std::memcpy(x.mutable_data(), b.images.data(), b.images.size() * sizeof(float));
          py::array_t<int32_t> y(static_cast<py::ssize_t>(b.size));
          std::memcpy(y.mutable_data(), b.labels.data(), b.labels.size() * sizeof(int32_t));
          out.append(py::make_tuple(x, y));
        }
        return out;
      });

  m.def("load_checkpoint", [](const std::string& path) {
    const train::Checkpoint ck = train::load_checkpoint(path);
    py::dict tensors;
    for (const auto& t : ck.tensors) {
      std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
      if (t.dtype == "f32") {
        py::array_t<float> a(shape);
        const auto v = t.to_f32();
        std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(float));
        tensors[py::str(t.name)] = a;
      } else if (t.dtype == "i64") {
        py::array_t<int64_t> a(shape);
        const auto v = t.to_i64();
        std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(int64_t));
        tensors[py::str(t.name)] = a;
      } else if (t.dtype == "i32") {
        py::array_t<int32_t> a(shape);
        const auto v = t.to_i32();
        std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(int32_t));
        tensors[py::str(t.name)] = a;
      }
    }
    return py::dict(py::arg("model") = ck.model, py::arg("step") = ck.step, py::arg("epoch") = ck.epoch,
                    py::arg("optimizer") = ck.optimizer, py::arg("tensors") = tensors);
  });

  m.def("run_onnx", [](const std::string& path, const py::dict& inputs, const std::string& policy, const std::string& budget) {
    std::map<std::string, models::onnx::Tensor> in;
    for (const auto& [k, v] : inputs) {
      const std::string name = py::str(k);
      in[name] = array_to_tensor(name, py::array::ensure(v));
    }
    deploy::OnnxRun r;
    {
      py::gil_scoped_release nogil;
      r = deploy::run_onnx(path, in, {.policy = policy, .budget = budget});
    }
    py::dict out;
    for (const auto& t : r.outputs) out[py::str(t.name)] = tensor_to_array(t);
    return py::make_tuple(out, py::dict(py::arg("planned_peak") = r.planned_peak, py::arg("measured_peak") = r.measured_peak,
                                        py::arg("arena") = r.arena, py::arg("policy") = r.policy));
  });
  m.def("export_onnx", [](const std::string& source, const std::string& path, const py::dict& weights) {
    std::map<std::string, std::vector<float>> w;
    for (const auto& [k, v] : weights) {
      const auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(v);
      if (!a) throw Error("weight '", py::str(k).cast<std::string>(), "' must be an array of numbers");
      w[py::str(k)].assign(a.data(), a.data() + a.size());
    }
    models::onnx::export_model(source, path, w);
  });
  m.def("read_tensor", [](const std::string& path) { return tensor_to_array(models::onnx::read_tensor(path)); });
  m.def("write_text", [](const std::string& path, const std::string& text) {
    write_file_atomic(path, std::as_bytes(std::span(text.data(), text.size())));
  });
}
