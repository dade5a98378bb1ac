// recompute:milp -- Checkmate (Jain, Jain, Nrusimha, Gholami, Abbeel, Keutzer, Stoica,
// Gonzalez, "Checkmate: breaking the memory wall with optimal tensor
// rematerialization", MLSys 2020), Section 4: optimal rematerialisation of the whole
// training graph as a mixed-integer linear program, solved with CBC.
//
// Note [Checkmate formulation]: the program runs in stages; stage t runs node t of the
// schedule (R[t][t] = 1, Checkmate's frontier-advancing order, Section 4.4) after
// recomputing any recomputable forward nodes i < t it chooses (R[t][i], binary), in
// node order. S[t][s] (binary) says evictable storage s is resident when stage t
// begins. FREE[t][s][k] (continuous in [0, 1]) frees s right after computation k of
// stage t. U[t][k] is the memory of evictable storages after computation k. As in
// Section 4:
//   (1b) a computation's inputs are computed earlier in its stage or resident:
//        R[t][j] <= R[t][i] + S[t][s] for s produced by i and read by j;
//   (1c) S[t+1][s] <= R[t][i] + S[t][s];
//   (2)  U[t][first] = sum_s bytes(s) S[t][s] + bytes(out first) R[t][first],
//        U[t][k] = U[t][k-1] - freed(k-1) + bytes(out k) R[t][k],
//        U[t][k] + workspace(k) R[t][k] + fixed(t, k) <= budget;
//   (3)  freed(k) = sum_s bytes(s) FREE[t][s][k] over the evictable storages k reads
//        or writes, with FREE[t][s][k] <= R[t][k], <= 1 - S[t+1][s] and <= 1 - R[t][j]
//        for every later reader j in the stage. Checkmate states FREE as a product and
//        linearises it both ways; freeing only relaxes the memory rows, so the upper
//        bounds alone give the same optimum with FREE continuous.
// The objective is the recomputed FLOPs, sum_t sum_i<t flops(i) R[t][i] (an op of no
// FLOPs counts one, so nothing is recomputed for free). Inputs and labels have S
// variables too, without R: they may go after a reader (S[t+1] <= S[t]) but never come
// back, as in the emitted plan. Other storages (gradients, weights, the loss) have
// fixed lifetimes: fixed(t, k) is a constant. So the program counts memory as the
// emitter does, up to the order of recomputations inside a stage (node order here).
// Only recomputable forward nodes are ever recomputed, and only while something after
// them may still need their outputs (a horizon per node), which removes variables but
// no schedule.
//
// Large graphs: when the exact program would exceed kMaxBinaries, stages are
// coarsened -- a stage begins at each node that reads an evictable storage and takes
// the nodes after it that read none, so recomputations happen only right before a
// reader; the plan says so in its solver status ("coarsened ..."), and its optimum is
// then the optimum of that restricted program.
#include <CbcModel.hpp>
#include <CoinPackedMatrix.hpp>
#include <OsiClpSolverInterface.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <chrono>
#include <sstream>
#include <string>

#include "planners/recompute/recompute.h"
#include "planners/recompute/schedule.h"
#include "util/error.h"
#include "util/format.h"

namespace dlmem::planners::recompute {

namespace {

constexpr int kMaxBinaries = 40000;
constexpr double kFlopScale = 1e6;  // objective in MFLOPs: well-scaled for CBC
constexpr double kByteScale = 1.0 / 1024;  // memory rows in KiB

// A linear program in row form, columns first.
class Lp {
 public:
  int col(double lb, double ub, double cost, bool integer) {
    lb_.push_back(lb);
    ub_.push_back(ub);
    obj_.push_back(cost);
    integer_.push_back(integer);
    return static_cast<int>(lb_.size()) - 1;
  }
  void row(const std::vector<std::pair<int, double>>& terms, double lb, double ub, const char* what) {
    for (const auto& [c, a] : terms)
      if (a != 0) {
        idx_.push_back(c);
        val_.push_back(a);
      }
    start_.push_back(static_cast<int>(idx_.size()));
    rlb_.push_back(lb);
    rub_.push_back(ub);
    what_.push_back(what);
  }
  // Rows that `x` violates by more than `tol` (relative to the row's scale).
  std::vector<std::string> violations(const std::vector<double>& x, double tol) const {
    std::vector<std::string> out;
    for (size_t r = 0; r < rlb_.size(); ++r) {
      double a = 0, scale = 1;
      for (int k = start_[r]; k < start_[r + 1]; ++k) {
        a += val_[static_cast<size_t>(k)] * x[static_cast<size_t>(idx_[static_cast<size_t>(k)])];
        scale = std::max(scale, std::abs(val_[static_cast<size_t>(k)]));
      }
      if (a < rlb_[r] - tol * scale || a > rub_[r] + tol * scale)
        out.push_back(std::string(what_[r]) + " row " + std::to_string(r) + ": " + std::to_string(a) + " not in [" +
                      std::to_string(rlb_[r]) + ", " + std::to_string(rub_[r]) + "]");
    }
    for (size_t c = 0; c < lb_.size(); ++c)
      if (x[c] < lb_[c] - tol || x[c] > ub_[c] + tol) out.push_back("column " + std::to_string(c) + " out of bounds");
    return out;
  }
  double objective(const std::vector<double>& x) const {
    double o = 0;
    for (size_t c = 0; c < obj_.size(); ++c) o += obj_[c] * x[c];
    return o;
  }
  int num_cols() const { return static_cast<int>(lb_.size()); }
  int num_rows() const { return static_cast<int>(rlb_.size()); }
  int num_integers() const { return static_cast<int>(std::count(integer_.begin(), integer_.end(), true)); }
  void fix_upper(int c, double ub) { ub_[static_cast<size_t>(c)] = ub; }

  void load(OsiClpSolverInterface& si) const {
    std::vector<int> lengths(rlb_.size());
    for (size_t r = 0; r < rlb_.size(); ++r) lengths[r] = start_[r + 1] - start_[r];
    const CoinPackedMatrix m(false, num_cols(), num_rows(), static_cast<CoinBigIndex>(idx_.size()), val_.data(),
                             idx_.data(), start_.data(), lengths.data());
    si.loadProblem(m, lb_.data(), ub_.data(), obj_.data(), rlb_.data(), rub_.data());
    for (int c = 0; c < num_cols(); ++c)
      if (integer_[static_cast<size_t>(c)]) si.setInteger(c);
  }

 private:
  std::vector<double> lb_, ub_, obj_;
  std::vector<bool> integer_;
  std::vector<int> start_ = {0}, idx_;  // rows, compressed
  std::vector<double> val_;
  std::vector<double> rlb_, rub_;
  std::vector<const char*> what_;
};

constexpr double kInf = 1e30;

struct Stage {
  ir::NodeId begin, end;  // original nodes [begin, end)
  std::vector<std::pair<ir::NodeId, int>> recompute;  // candidate node, its R column
};

class Checkmate {
 public:
  Checkmate(const Problem& pb, uint64_t budget, bool coarse) : pb_(pb), budget_(budget) {
    horizons();
    stages(coarse);
  }

  // Counts the binaries the program would have (for choosing the granularity).
  int count_binaries() const {
    int n = 0;
    for (size_t t = 0; t < st_.size(); ++t) {
      n += static_cast<int>(candidates(t).size());
      for (ir::ValueId s : ev_)
        if (s_exists(t, s)) ++n;
    }
    return n;
  }

  void build() {
    const size_t ns = st_.size();
    // Columns: R, then S.
    for (size_t t = 0; t < ns; ++t)
      for (ir::NodeId i : candidates(t))
        st_[t].recompute.push_back({i, lp_.col(0, 1, std::max(pb_.node(i).flops, 1.0) / kFlopScale, true)});
    s_col_.assign(ns, std::vector<int>(ev_.size(), -1));
    for (size_t t = 0; t < ns; ++t)
      for (size_t e = 0; e < ev_.size(); ++e)
        if (s_exists(t, ev_[e])) s_col_[t][e] = lp_.col(0, 1, 0, true);

    comps_.assign(ns, {});
    const std::vector<uint64_t> fixed = fixed_bytes(false);
    fixed_start_ = fixed_bytes(true);
    for (size_t t = 0; t < ns; ++t) build_stage(t, fixed);
  }

  const Lp& lp() const { return lp_; }
  size_t num_stages() const { return st_.size(); }

  // The sequence of a solution.
  Sequence sequence(const double* x) const {
    Sequence seq;
    for (const Stage& s : st_) {
      for (const auto& [i, c] : s.recompute)
        if (x[c] > 0.5) seq.push_back({i, true});
      for (ir::NodeId k = s.begin; k < s.end; ++k) seq.push_back({k, false});
    }
    return seq;
  }

  // The program's variables for a sequence (a warm start for CBC), or empty when the
  // sequence is not one of the program's schedules (a node recomputed twice in one
  // stage, or kept where the program has no variable).
  std::vector<double> solution(const Sequence& seq) const {
    const size_t ns = st_.size();
    std::vector<double> x(static_cast<size_t>(lp_.num_cols()), 0.0);
    std::vector<int> stage_of(static_cast<size_t>(pb_.num_nodes()), 0);
    for (size_t t = 0; t < ns; ++t)
      for (ir::NodeId k = st_[t].begin; k < st_[t].end; ++k) stage_of[static_cast<size_t>(k)] = static_cast<int>(t);
    // Recomputations belong to the stage of the next original computation.
    std::vector<std::vector<ir::NodeId>> rec(ns);
    std::vector<ir::NodeId> pending;
    for (const Step& st : seq) {
      if (st.recompute) {
        pending.push_back(st.node);
        continue;
      }
      for (ir::NodeId i : pending) rec[static_cast<size_t>(stage_of[static_cast<size_t>(st.node)])].push_back(i);
      pending.clear();
    }
    if (!pending.empty()) return {};
    std::vector<std::vector<bool>> r(ns);
    for (size_t t = 0; t < ns; ++t) {
      for (ir::NodeId i : rec[t]) {
        const int c = r_col(t, i);
        if (c < 0 || x[static_cast<size_t>(c)] > 0) return {};
        x[static_cast<size_t>(c)] = 1;
      }
    }
    auto ran = [&](size_t t, const CompCols& c) { return c.r < 0 || x[static_cast<size_t>(c.r)] > 0.5; };
    // S backwards: resident at stage t when read in t (before any recomputation of its
    // producer there) or carried to t + 1, and not recomputed in t.
    for (size_t e = 0; e < ev_.size(); ++e) {
      const ir::ValueId s = ev_[e];
      const ir::NodeId p = pb_.producer[static_cast<size_t>(s)];
      bool next = false;
      for (size_t t = ns; t-- > 0;) {
        const int rp = r_col(t, p);
        const bool recomputed = rp >= 0 && x[static_cast<size_t>(rp)] > 0.5;
        bool read = false;
        for (const CompCols& c : comps_[t])
          if (ran(t, c)) {
            const auto& in = pb_.node(c.node).inputs;
            read = read || std::find(in.begin(), in.end(), s) != in.end();
          }
        const bool needed = !recomputed && (read || next) && p < st_[t].begin;
        if (needed) {
          const int sc = s_col(t, s);
          if (sc < 0) return {};
          x[static_cast<size_t>(sc)] = 1;
        }
        next = needed;
        if (p >= st_[t].begin && p < st_[t].end) next = false;
      }
    }
    // FREE where nothing forbids it, then U along each stage.
    for (size_t t = 0; t < ns; ++t) {
      double u = 0;
      for (ir::ValueId s : ev_) {
        const int sc = s_col(t, s);
        if (sc >= 0) u += x[static_cast<size_t>(sc)] * mem(pb_.bytes[static_cast<size_t>(s)]);
      }
      const auto& cs = comps_[t];
      for (size_t j = 0; j < cs.size(); ++j) {
        const CompCols& c = cs[j];
        if (j > 0)
          for (const auto& [s, f] : cs[j - 1].frees) u -= x[static_cast<size_t>(f)] * mem(pb_.bytes[static_cast<size_t>(s)]);
        if (ran(t, c))
          for (ir::ValueId o : pb_.node(c.node).outputs)
            if (pb_.evictable(o)) u += mem(pb_.bytes[static_cast<size_t>(o)]);
        x[static_cast<size_t>(c.u)] = u;
        for (const auto& [s, f] : c.frees) {
          bool ok = ran(t, c);
          const int next = s_col(t + 1, s);
          if (next >= 0 && x[static_cast<size_t>(next)] > 0.5) ok = false;
          for (size_t j2 = j + 1; j2 < cs.size() && ok; ++j2) {
            const auto& in = pb_.node(cs[j2].node).inputs;
            if (ran(t, cs[j2]) && std::find(in.begin(), in.end(), s) != in.end()) ok = false;
          }
          x[static_cast<size_t>(f)] = ok ? 1 : 0;
        }
      }
    }
    return x;
  }

 private:
  // The last schedule position that may need storage s (directly, or through the
  // recomputation of a node reading it), and per node the same for its outputs.
  void horizons() {
    const size_t nv = pb_.kind.size();
    horizon_.assign(nv, -1);
    node_horizon_.assign(static_cast<size_t>(pb_.num_nodes()), -1);
    index_.assign(nv, -1);
    for (size_t s = 0; s < nv; ++s)
      if (pb_.evictable(static_cast<ir::ValueId>(s)) || pb_.preloaded_freed(static_cast<ir::ValueId>(s))) {
        index_[s] = static_cast<int>(ev_.size());
        ev_.push_back(static_cast<ir::ValueId>(s));
      }
    for (ir::NodeId i = pb_.num_forward - 1; i >= 0; --i) {
      const PNode& p = pb_.node(i);
      int h = -1;
      for (ir::ValueId o : p.outputs) {
        int ho = -1;
        for (ir::NodeId r : pb_.readers[static_cast<size_t>(o)])
          ho = std::max(ho, std::max(r, pb_.node(r).recomputable ? node_horizon_[static_cast<size_t>(r)] : -1));
        horizon_[static_cast<size_t>(o)] = ho;
        h = std::max(h, ho);
      }
      node_horizon_[static_cast<size_t>(i)] = h;
    }
    // Inputs and labels: until their last reader, or the last rebuild of one.
    for (ir::ValueId s : ev_) {
      if (!pb_.preloaded_freed(s)) continue;
      int h = -1;
      for (ir::NodeId r : pb_.readers[static_cast<size_t>(s)])
        h = std::max(h, std::max(r, pb_.node(r).recomputable ? node_horizon_[static_cast<size_t>(r)] : -1));
      horizon_[static_cast<size_t>(s)] = h;
    }
  }

  // Storages with S variables: evictable ones, and inputs and labels (which may go
  // after their last reader but never come back).
  bool tracked(ir::ValueId s) const { return index_[static_cast<size_t>(s)] >= 0; }

  void stages(bool coarse) {
    for (ir::NodeId k = 0; k < pb_.num_nodes(); ++k) {
      bool reads_evictable = false;
      for (ir::ValueId s : pb_.node(k).inputs) reads_evictable = reads_evictable || tracked(s);
      if (!coarse || st_.empty() || reads_evictable)
        st_.push_back({k, k + 1, {}});
      else
        st_.back().end = k + 1;
    }
  }

  std::vector<ir::NodeId> candidates(size_t t) const {
    std::vector<ir::NodeId> c;
    const ir::NodeId g0 = st_[t].begin;
    for (ir::NodeId i = 0; i < std::min(g0, pb_.num_forward); ++i)
      if (pb_.node(i).recomputable && node_horizon_[static_cast<size_t>(i)] >= g0) c.push_back(i);
    return c;
  }

  bool s_exists(size_t t, ir::ValueId s) const {
    const ir::NodeId g0 = st_[t].begin;
    return pb_.producer[static_cast<size_t>(s)] < g0 && horizon_[static_cast<size_t>(s)] >= g0;
  }
  int s_col(size_t t, ir::ValueId s) const {
    if (t >= st_.size()) return -1;
    return s_col_[t][static_cast<size_t>(index_[static_cast<size_t>(s)])];
  }
  int r_col(size_t t, ir::NodeId i) const {
    for (const auto& [n, c] : st_[t].recompute)
      if (n == i) return c;
    return -1;
  }

  // Bytes of non-evictable storages resident while node k runs (the plain schedule's
  // lifetimes: from the producer to the last reader), inputs and weights included;
  // with `before`, resident just before node k runs (produced earlier, read at k or later).
  std::vector<uint64_t> fixed_bytes(bool before) const {
    const int n = pb_.num_nodes();
    std::vector<int64_t> delta(static_cast<size_t>(n) + 1, 0);
    int64_t base = static_cast<int64_t>(pb_.preloaded_bytes);
    for (ir::ValueId s : ev_)
      if (pb_.preloaded_freed(s)) base -= static_cast<int64_t>(pb_.bytes[static_cast<size_t>(s)]);  // tracked
    for (size_t s = 0; s < pb_.kind.size(); ++s) {
      const StoreKind k = pb_.kind[s];
      if (k != StoreKind::fixed && k != StoreKind::kept) continue;
      const int p = pb_.producer[s];
      int last = p;
      for (ir::NodeId r : pb_.readers[s]) last = std::max(last, r);
      delta[static_cast<size_t>(p) + (before ? 1 : 0)] += static_cast<int64_t>(pb_.bytes[s]);
      if (k == StoreKind::fixed) delta[static_cast<size_t>(last) + 1] -= static_cast<int64_t>(pb_.bytes[s]);
    }
    std::vector<uint64_t> out(static_cast<size_t>(n));
    for (int k = 0; k < n; ++k) {
      base += delta[static_cast<size_t>(k)];
      out[static_cast<size_t>(k)] = static_cast<uint64_t>(base);
    }
    return out;
  }

  double mem(uint64_t bytes) const { return static_cast<double>(bytes) * kByteScale; }

  void build_stage(size_t t, const std::vector<uint64_t>& fixed) {
    const Stage& st = st_[t];
    // Computations in node order: candidates (all < begin), then the stage's nodes.
    struct Comp {
      ir::NodeId node;
      int r;  // R column, -1: runs for sure
    };
    std::vector<Comp> comps;
    for (const auto& [i, c] : st.recompute) comps.push_back({i, c});
    for (ir::NodeId k = st.begin; k < st.end; ++k) comps.push_back({k, -1});
    // Fixed memory while recomputations run: what is resident when the stage begins.
    const uint64_t fixed_before = fixed_start_[static_cast<size_t>(st.begin)];

    // (1b): inputs present.
    for (size_t j = 0; j < comps.size(); ++j) {
      const Comp& c = comps[j];
      for (ir::ValueId s : pb_.node(c.node).inputs) {
        if (!tracked(s)) continue;
        const ir::NodeId p = pb_.producer[static_cast<size_t>(s)];
        if (p >= st.begin) continue;  // produced by an earlier node of this stage for sure
        std::vector<std::pair<int, double>> terms;
        const int rp = r_col(t, p), sc = s_col(t, s);
        if (rp >= 0) terms.push_back({rp, -1});
        if (sc >= 0) terms.push_back({sc, -1});
        if (c.r >= 0) {
          terms.push_back({c.r, 1});
          lp_.row(terms, -kInf, 0, "(1b) input of a recomputation");
        } else {
          DLMEM_CHECK(!terms.empty(), "node ", pb_.graph->node(c.node).name, " reads ",
                      pb_.graph->value(s).name, " which the program cannot provide");
          lp_.row(terms, -kInf, -1, "(1b) input of a node");
        }
      }
    }
    // (1c): resident at the next stage only if resident or computed in this one.
    if (t + 1 < st_.size())
      for (ir::ValueId s : ev_) {
        const int next = s_col(t + 1, s);
        if (next < 0) continue;
        const ir::NodeId p = pb_.producer[static_cast<size_t>(s)];
        if (p >= st.begin && p < st.end) continue;  // computed in this stage for sure
        std::vector<std::pair<int, double>> terms = {{next, 1}};
        const int rp = r_col(t, p), sc = s_col(t, s);
        if (rp >= 0) terms.push_back({rp, -1});
        if (sc >= 0) terms.push_back({sc, -1});
        if (terms.size() == 1)
          lp_.fix_upper(next, 0);
        else
          lp_.row(terms, -kInf, 0, "(1c) carried");
      }

    // (2), (3): memory along the stage.
    std::vector<CompCols>& rec = comps_[t];
    int prev_u = -1;
    std::vector<std::pair<int, double>> prev_frees;
    for (size_t j = 0; j < comps.size(); ++j) {
      const Comp& c = comps[j];
      const PNode& node = pb_.node(c.node);
      uint64_t ev_out = 0;
      for (ir::ValueId o : node.outputs)
        if (pb_.evictable(o)) ev_out += pb_.bytes[static_cast<size_t>(o)];
      const int u = lp_.col(0, kInf, 0, false);
      rec.push_back({c.node, c.r, u, {}});
      std::vector<std::pair<int, double>> terms = {{u, 1}};
      double rhs = 0;
      if (prev_u < 0) {
        for (ir::ValueId s : ev_) {
          const int sc = s_col(t, s);
          if (sc >= 0) terms.push_back({sc, -mem(pb_.bytes[static_cast<size_t>(s)])});
        }
      } else {
        terms.push_back({prev_u, -1});
        for (const auto& [f, b] : prev_frees) terms.push_back({f, b});
      }
      if (c.r >= 0)
        terms.push_back({c.r, -mem(ev_out)});
      else
        rhs += mem(ev_out);
      lp_.row(terms, rhs, rhs, "(2) memory recurrence");
      // Memory row.
      const double cap = mem(budget_) - mem(c.r >= 0 ? fixed_before : fixed[static_cast<size_t>(c.node)]);
      if (c.r >= 0)
        lp_.row({{u, 1}, {c.r, mem(node.workspace)}}, -kInf, cap, "(2) budget at a recomputation");
      else
        lp_.row({{u, 1}}, -kInf, cap - mem(node.workspace), "(2) budget at a node");
      // Frees after this computation.
      prev_frees.clear();
      std::vector<ir::ValueId> touched;
      for (ir::ValueId s : node.inputs)
        if (tracked(s)) touched.push_back(s);
      for (ir::ValueId s : node.outputs)
        if (pb_.evictable(s)) touched.push_back(s);
      for (ir::ValueId s : touched) {
        // Hazards: a later computation of the stage reads s for sure -> never freed here.
        bool blocked = false;
        std::vector<int> later;
        for (size_t j2 = j + 1; j2 < comps.size() && !blocked; ++j2) {
          const PNode& n2 = pb_.node(comps[j2].node);
          if (std::find(n2.inputs.begin(), n2.inputs.end(), s) == n2.inputs.end()) continue;
          if (comps[j2].r < 0)
            blocked = true;
          else
            later.push_back(comps[j2].r);
        }
        if (blocked) continue;
        const int f = lp_.col(0, 1, 0, false);
        if (c.r >= 0) lp_.row({{f, 1}, {c.r, -1}}, -kInf, 0, "(3) free after a computation that ran");
        const int next = s_col(t + 1, s);
        if (next >= 0) lp_.row({{f, 1}, {next, 1}}, -kInf, 1, "(3) free unless carried");
        for (int r2 : later) lp_.row({{f, 1}, {r2, 1}}, -kInf, 1, "(3) free unless read later");
        prev_frees.push_back({f, mem(pb_.bytes[static_cast<size_t>(s)])});
        rec.back().frees.push_back({s, f});
      }
      prev_u = u;
    }
  }

  const Problem& pb_;
  uint64_t budget_;
  std::vector<Stage> st_;
  std::vector<ir::ValueId> ev_;
  std::vector<int> index_;
  std::vector<int> horizon_, node_horizon_;
  std::vector<std::vector<int>> s_col_;
  std::vector<uint64_t> fixed_start_;
  struct CompCols {
    ir::NodeId node;
    int r, u;
    std::vector<std::pair<ir::ValueId, int>> frees;  // storage, FREE column after it
  };
  std::vector<std::vector<CompCols>> comps_;  // per stage, in order
  Lp lp_;
};

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(4);
  os << v;
  return os.str();
}

}  // namespace

Plan plan_milp(const ir::Graph& g, const analysis::Liveness& live, uint64_t target, double time_limit_s) {
  const Problem pb = make_problem(g, live);
  const Sequence plain = plain_sequence(pb);
  if (target == 0 || evaluate(pb, plain).peak <= target) {
    Plan p = emit_plan(pb, plain);
    p.stats.solver_status = "optimal (no recomputation needed)";
    return p;
  }
  if (time_limit_s <= 0) throw Error("recompute:milp needs a positive time limit, got ", time_limit_s, " s");
  if (target < pb.lower_bound) {
    const uint64_t reach = greedy_min_peak(pb);
    throw OutOfMemory("recompute:milp: no schedule keeps the step within ", human_bytes(target), ": node '",
                      pb.lower_bound_node, "' alone needs ", human_bytes(pb.lower_bound),
                      " with the weights and optimizer state; recompute:greedy reaches ", human_bytes(reach),
                      "; use a larger budget");
  }

  // The safety margin keeps CBC's tolerances (1e-7 relative) on the right side.
  const uint64_t margin = std::max<uint64_t>(64, target / 1'000'000);
  if (target <= margin + pb.preloaded_bytes)
    throw OutOfMemory("recompute:milp: a budget of ", human_bytes(target), " does not even hold the weights, optimizer state and inputs (",
                      human_bytes(pb.preloaded_bytes), ")");
  std::optional<Checkmate> exact;
  exact.emplace(pb, target - margin, false);
  bool coarse = false;
  if (exact->count_binaries() > kMaxBinaries) {
    exact.emplace(pb, target - margin, true);
    coarse = true;
  }
  Checkmate& cm = *exact;
  cm.build();

  // Warm start: recompute:greedy's schedule, when the program can express it.
  std::vector<double> start;
  const std::optional<Sequence> g0 = greedy_sequence(pb, target - margin);
  if (g0) {
    start = cm.solution(*g0);
    // Rejected (kept out) when CBC's model would count more memory than the emitter.
    if (!start.empty() && !cm.lp().violations(start, 1e-6).empty()) start.clear();
  }

  OsiClpSolverInterface si;
  cm.lp().load(si);
  si.messageHandler()->setLogLevel(0);
  si.setHintParam(OsiDoReducePrint, true, OsiHintTry);
  // CBC checks its -sec limit between nodes, not inside the root's LP, which on a
  // graph of a few hundred nodes can run for minutes. So the root LP is solved here
  // first under Clp's own wall-clock limit; CBC then starts from its basis.
  const auto solve_start = std::chrono::steady_clock::now();
  si.getModelPtr()->setMaximumWallSeconds(time_limit_s);
  si.initialSolve();
  const double root_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - solve_start).count();
  const bool root_done = si.isProvenOptimal() || si.isProvenPrimalInfeasible();
  // No limit inside CBC's own solves (its copy would inherit this one): an LP stopped
  // by the clock in the search is not a verdict CBC can use.
  si.getModelPtr()->setMaximumWallSeconds(-1);
  std::string shape = std::to_string(cm.lp().num_integers()) + " binaries, " + std::to_string(cm.lp().num_rows()) +
                      " rows, " + std::to_string(cm.num_stages()) + " stages";
  if (coarse) shape = "coarsened: " + shape;
  // Where CBC gives nothing better, greedy's schedule (the warm start) with what is known.
  auto keep_greedy = [&](double bound, const std::string& status) {
    Plan p = emit_plan(pb, *g0);
    p.stats.solver_objective = evaluate(pb, *g0).extra_flops;
    p.stats.solver_bound = bound;
    p.stats.solver_status = status;
    return p;
  };
  if (!root_done) {
    const std::string why = "the time limit (" + fmt(time_limit_s) + " s) ended the root LP relaxation before CBC could branch";
    if (!g0)
      throw OutOfMemory("recompute:milp: ", why, " (", shape, "); allow it more time (--time-limit), or use recompute:greedy");
    return keep_greedy(0, why + "; recompute:greedy's schedule kept (" + shape + ")");
  }
  CbcModel model(si);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  CbcMain0(model);
  model.setLogLevel(0);
  model.messageHandler()->setLogLevel(0);
  if (!start.empty()) {
    // CbcMain1 takes a start by column name (its "mipstart"), integers only.
    std::vector<std::pair<std::string, double>> mip;
    for (int c = 0; c < si.getNumCols(); ++c)
      if (si.isInteger(c)) mip.emplace_back(si.getColName(c), start[static_cast<size_t>(c)]);
    model.setMIPStart(mip);
  }
  const std::string seconds = std::to_string(std::max(1.0, time_limit_s - root_s));
  const char* argv[] = {"dlmem", "-log", "0", "-slog", "0", "-timeMode", "elapsed", "-sec", seconds.c_str(), "-solve", "-quit"};
  CbcMain1(static_cast<int>(std::size(argv)), argv, model);

  const double* x = model.bestSolution();
  // CBC's verdicts hold only when it finished (status 0); stopped at the time limit
  // it proves nothing, and the warm start, when there is one, is a schedule within the
  // budget that it did not improve on.
  const bool finished = model.status() == 0;
  if (!x && g0)
    return keep_greedy(std::max(0.0, model.getBestPossibleObjValue() * kFlopScale),
                       "time limit before CBC improved on its warm start (recompute:greedy's schedule; " + shape + ")");
  if (!x) {
    if (finished && model.isProvenInfeasible()) {
      const uint64_t reach = greedy_min_peak(pb);
      throw OutOfMemory("recompute:milp: CBC proved that no schedule keeps the step within ", human_bytes(target),
                        " of live device memory (", shape, "); recompute:greedy reaches ", human_bytes(reach),
                        " and no policy goes below ", human_bytes(pb.lower_bound), " (what node '", pb.lower_bound_node,
                        "' needs with the weights and optimizer state); use a larger budget");
    }
    throw OutOfMemory("recompute:milp: CBC found no schedule within ", human_bytes(target), " in ", seconds,
                      " s (", shape, "); allow it more time (--time-limit), raise the budget, or use recompute:greedy");
  }
  const Sequence seq = cm.sequence(x);
  const SequenceCost c = evaluate(pb, seq);
  DLMEM_CHECK(c.peak <= target, "the MILP schedule peaks at ", c.peak, " bytes, over its budget ", target);
  Plan p = emit_plan(pb, seq);
  p.stats.solver_objective = model.getObjValue() * kFlopScale;
  p.stats.solver_bound = std::max(0.0, model.getBestPossibleObjValue() * kFlopScale);
  p.stats.solver_status = (model.isProvenOptimal() ? std::string("optimal") : std::string("time limit, gap ") +
                           fmt(100 * (p.stats.solver_objective - p.stats.solver_bound) /
                               std::max(p.stats.solver_objective, 1.0)) + "%") + " (CBC; " + shape + ")";
  return p;
}

Pass milp_pass() {
  return [](const PlanContext& ctx, Plan) { return plan_milp(ctx.graph, ctx.live, ctx.target, ctx.options.time_limit_s); };
}

}  // namespace dlmem::planners::recompute
