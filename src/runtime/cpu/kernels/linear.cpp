// Matrix products (oneDNN matmul, with the linear ops' transposes) and the bias gradient.
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

// ---------------------------------------------------------------- matmul

namespace {

struct MatmulMds {
  memory::desc a, b, bias, c;
};

// A batched 3-D matmul; a transposed operand is the same bytes seen through swapped
// strides, so no copy is made.
MatmulMds matmul_mds(int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b) {
  DLMEM_CHECK(batch > 0 && m > 0 && n > 0 && k > 0, "matmul of ", batch, "x", m, "x", n, "x", k);
  const auto f32 = memory::data_type::f32;
  return {trans_a ? memory::desc({batch, m, k}, f32, {m * k, 1, m})
                  : memory::desc({batch, m, k}, f32, {m * k, k, 1}),
          trans_b ? memory::desc({batch, k, n}, f32, {k * n, 1, k})
                  : memory::desc({batch, k, n}, f32, {k * n, n, 1}),
          plain_md({1, 1, n}), plain_md({batch, m, n})};
}

const CachedPrimitive& matmul_prim(Context::Impl& im, int64_t batch, int64_t m, int64_t n,
                                   int64_t k, bool trans_a, bool trans_b, bool has_bias,
                                   bool accumulate) {
  return im.get(make_key("matmul", batch, m, n, k, trans_a, trans_b, has_bias, accumulate), [&] {
    const MatmulMds md = matmul_mds(batch, m, n, k, trans_a, trans_b);
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::desc d = has_bias ? dnnl::matmul::desc(md.a, md.b, md.bias, md.c)
                                          : dnnl::matmul::desc(md.a, md.b, md.c);
    return cached<dnnl::matmul>(dnnl::matmul::primitive_desc(d, attr, im.engine));
  });
}

}  // namespace

size_t matmul_scratch_bytes(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k,
                            bool trans_a, bool trans_b, bool has_bias) {
  return matmul_scratch_bytes(ctx, batch, m, n, k, trans_a, trans_b, has_bias, false);
}

size_t matmul_scratch_bytes(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k,
                            bool trans_a, bool trans_b, bool has_bias, bool accumulate) {
  return matmul_prim(enter(ctx), batch, m, n, k, trans_a, trans_b, has_bias, accumulate)
      .scratch_bytes();
}

void matmul(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
            bool trans_b, const float* a, const float* b, const float* bias, float* c,
            void* scratch) {
  matmul(ctx, batch, m, n, k, trans_a, trans_b, a, b, bias, c, scratch, false);
}

void matmul(Context& ctx, int64_t batch, int64_t m, int64_t n, int64_t k, bool trans_a,
            bool trans_b, const float* a, const float* b, const float* bias, float* c,
            void* scratch, bool accumulate) {
  Context::Impl& im = enter(ctx);
  const CachedPrimitive& p =
      matmul_prim(im, batch, m, n, k, trans_a, trans_b, bias != nullptr, accumulate);
  const MatmulMds md = matmul_mds(batch, m, n, k, trans_a, trans_b);
  Args args{{DNNL_ARG_SRC, im.wrap(md.a, a)},
            {DNNL_ARG_WEIGHTS, im.wrap(md.b, b)},
            {DNNL_ARG_DST, im.wrap(md.c, c)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, im.wrap(md.bias, bias));
  im.execute(p, std::move(args), scratch);
}

// ---------------------------------------------------------------- bias gradient

void bias_grad(Context& ctx, int64_t m, int64_t n, const float* dy, float* db) {
  enter(ctx);
  // Parallel over blocks of columns; each column sums its rows in order, in double.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (m * n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kBlock, width = std::min(kBlock, n - j0);
    double acc[kBlock] = {};
    for (int64_t i = 0; i < m; ++i) {
      const float* row = dy + i * n + j0;
      for (int64_t j = 0; j < width; ++j) acc[j] += row[j];
    }
    for (int64_t j = 0; j < width; ++j) db[j0 + j] = static_cast<float>(acc[j]);
  }
}

}  // namespace dlmem::cpu
