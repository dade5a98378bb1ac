// Data movement (oneDNN reorders behind transpose and slice, concat), slice's gradient and the embedding.
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

// ---------------------------------------------------------------- data movement

namespace {

std::vector<int64_t> row_major_strides(int rank, const int64_t* dims) {
  std::vector<int64_t> strides(rank);
  int64_t stride = 1;
  for (int i = rank; i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  return strides;
}

const CachedPrimitive& reorder_prim(Context::Impl& im, const std::string& key,
                                    const memory::desc& src, const memory::desc& dst) {
  return im.get(key, [&] {
    return cached<dnnl::reorder>(
        dnnl::reorder::primitive_desc(im.engine, src, im.engine, dst, user_scratchpad_attr()));
  });
}

}  // namespace

void transpose(Context& ctx, int rank, const int64_t* x_dims, const int* perm, const float* x,
               float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= 6, "transpose of rank ", rank);
  std::vector<bool> seen(rank, false);
  for (int i = 0; i < rank; ++i) {
    DLMEM_CHECK(perm[i] >= 0 && perm[i] < rank && !seen[perm[i]], "transpose: not a permutation");
    seen[perm[i]] = true;
  }
  Context::Impl& im = enter(ctx);
  // The source seen in y's dimension order: y's dim i walks x with x's stride perm[i].
  const std::vector<int64_t> x_strides = row_major_strides(rank, x_dims);
  memory::dims y_dims(rank), src_strides(rank);
  for (int i = 0; i < rank; ++i) {
    y_dims[i] = x_dims[perm[i]];
    src_strides[i] = x_strides[perm[i]];
  }
  const memory::desc src(y_dims, memory::data_type::f32, src_strides), dst = plain_md(y_dims);
  std::string key = "transpose";
  append_dims(key, rank, x_dims);
  for (int i = 0; i < rank; ++i) key += "," + std::to_string(perm[i]);
  const CachedPrimitive& p = reorder_prim(im, key, src, dst);
  im.execute(p, {{DNNL_ARG_FROM, im.wrap(src, x)}, {DNNL_ARG_TO, im.wrap(dst, y)}}, nullptr,
             /*use_internal=*/true);
}

void concat(Context& ctx, int rank, const int64_t* const* in_dims, int count, int axis,
            const float* const* in, float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= DNNL_MAX_NDIMS && count >= 1 && axis >= 0 && axis < rank,
              "concat of ", count, " rank-", rank, " inputs along ", axis);
  Context::Impl& im = enter(ctx);
  std::vector<memory::desc> srcs;
  memory::dims y_dims = to_dims(rank, in_dims[0]);
  y_dims[axis] = 0;
  std::string key = make_key("concat", axis);
  for (int i = 0; i < count; ++i) {
    for (int d = 0; d < rank; ++d)
      DLMEM_CHECK(d == axis || in_dims[i][d] == in_dims[0][d], "concat: input ", i, " dim ", d,
                  " is ", in_dims[i][d], ", not ", in_dims[0][d]);
    srcs.push_back(plain_md(to_dims(rank, in_dims[i])));
    y_dims[axis] += in_dims[i][axis];
    append_dims(key, rank, in_dims[i]);
  }
  const memory::desc dst = plain_md(y_dims);
  const CachedPrimitive& p = im.get(key, [&] {
    return cached<dnnl::concat>(
        dnnl::concat::primitive_desc(dst, axis, srcs, im.engine, user_scratchpad_attr()));
  });
  Args args{{DNNL_ARG_DST, im.wrap(dst, y)}};
  for (int i = 0; i < count; ++i) args.emplace(DNNL_ARG_MULTIPLE_SRC + i, im.wrap(srcs[i], in[i]));
  im.execute(p, std::move(args), nullptr, /*use_internal=*/true);
}

void slice(Context& ctx, int rank, const int64_t* x_dims, int axis, int64_t start, int64_t len,
           const float* x, float* y) {
  DLMEM_CHECK(rank >= 1 && rank <= DNNL_MAX_NDIMS && axis >= 0 && axis < rank, "slice of rank ",
              rank, " along ", axis);
  DLMEM_CHECK(start >= 0 && len >= 0 && start + len <= x_dims[axis], "slice [", start, ", ",
              start + len, ") of a dim of ", x_dims[axis]);
  if (len == 0) return;
  Context::Impl& im = enter(ctx);
  // The slice is x's bytes from x + start * stride(axis), with x's strides.
  const std::vector<int64_t> x_strides = row_major_strides(rank, x_dims);
  memory::dims y_dims = to_dims(rank, x_dims);
  y_dims[axis] = len;
  const memory::desc src(y_dims, memory::data_type::f32, memory::dims(x_strides));
  const memory::desc dst = plain_md(y_dims);
  std::string key = make_key("slice", axis, len);
  append_dims(key, rank, x_dims);
  const CachedPrimitive& p = reorder_prim(im, key, src, dst);
  im.execute(
      p,
      {{DNNL_ARG_FROM, im.wrap(src, x + start * x_strides[axis])}, {DNNL_ARG_TO, im.wrap(dst, y)}},
      nullptr, /*use_internal=*/true);
}

// ---------------------------------------------------------------- slice gradient

void slice_bwd(Context& ctx, int rank, const int64_t* x_dims, int axis, int64_t start, int64_t len,
               const float* dy, float* dx) {
  DLMEM_CHECK(rank >= 1 && axis >= 0 && axis < rank, "slice_bwd of rank ", rank, " along ", axis);
  DLMEM_CHECK(start >= 0 && len >= 0 && start + len <= x_dims[axis], "slice_bwd [", start, ", ",
              start + len, ") of a dim of ", x_dims[axis]);
  enter(ctx);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x_dims[i];
  for (int i = axis + 1; i < rank; ++i) inner *= x_dims[i];
  const int64_t dim = x_dims[axis];
  const size_t f = sizeof(float);
#pragma omp parallel for schedule(static) if (outer * dim * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    float* d = dx + o * dim * inner;
    std::memset(d, 0, static_cast<size_t>(start * inner) * f);
    std::memcpy(d + start * inner, dy + o * len * inner, static_cast<size_t>(len * inner) * f);
    std::memset(d + (start + len) * inner, 0, static_cast<size_t>((dim - start - len) * inner) * f);
  }
}

// ---------------------------------------------------------------- embedding

void embedding_fwd(Context& ctx, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids,
                   const float* table, float* y) {
  check_indices("embedding_fwd", "id", "at position", count, vocab, ids);
  enter(ctx);
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMin)
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(y + i * dim, table + static_cast<int64_t>(ids[i]) * dim,
                static_cast<size_t>(dim) * sizeof(float));
}

void embedding_bwd(Context& ctx, int64_t count, int64_t vocab, int64_t dim, const int32_t* ids,
                   const float* dy, float* dtable) {
  check_indices("embedding_bwd", "id", "at position", count, vocab, ids);
  enter(ctx);
  fill(ctx, vocab * dim, 0.f, dtable);
  // Parallel over blocks of columns (a cache line of floats each): every element of
  // dtable receives its contributions in order of i, whatever the thread count.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (dim + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kBlock, j1 = std::min(dim, j0 + kBlock);
    for (int64_t i = 0; i < count; ++i) {
      float* row = dtable + static_cast<int64_t>(ids[i]) * dim;
      const float* g = dy + i * dim;
      for (int64_t j = j0; j < j1; ++j) row[j] += g[j];
    }
  }
}

}  // namespace dlmem::cpu
