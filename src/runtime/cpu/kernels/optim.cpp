// Optimizer updates (SGD with momentum, Adam): dlmem's loops.
// What the kernel files share, and why some are oneDNN and some loops: common.h.
#include "runtime/cpu/kernels/common.h"

namespace dlmem::cpu {

// ---------------------------------------------------------------- optimizers

void sgd_update(Context& ctx, int64_t n, float lr, float momentum, float weight_decay,
                bool first_step, float* w, const float* dw, float* m) {
  DLMEM_CHECK(momentum == 0.f || m != nullptr, "sgd_update with momentum needs its buffer");
  enter(ctx);
  // torch.optim.SGD, per element: d_p = grad.add(param, alpha=weight_decay);
  // buf.mul_(momentum).add_(d_p) (buf = d_p first); param.add_(buf, alpha=-lr).
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float g = weight_decay != 0.f ? dw[i] + weight_decay * w[i] : dw[i];
    if (momentum != 0.f) {
      m[i] = first_step ? g : momentum * m[i] + g;
      g = m[i];
    }
    w[i] -= lr * g;
  }
}

void adam_update(Context& ctx, int64_t n, float lr, float beta1, float beta2, float eps,
                 float weight_decay, int64_t step, float* w, const float* dw, float* m, float* v) {
  DLMEM_CHECK(step >= 1, "adam_update step counts from 1, got ", step);
  enter(ctx);
  // torch.optim.Adam (amsgrad off): the bias corrections in double as Python computes
  // them, then used as float scalars, as the tensor ops do.
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float one_minus_b1 = static_cast<float>(1.0 - beta1);
  const float one_minus_b2 = static_cast<float>(1.0 - beta2);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = weight_decay != 0.f ? dw[i] + weight_decay * w[i] : dw[i];
    m[i] = beta1 * m[i] + one_minus_b1 * g;
    v[i] = beta2 * v[i] + one_minus_b2 * g * g;
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    w[i] -= step_size * (m[i] / denom);
  }
}

void batch_norm_update_running(Context& ctx, int64_t c, int64_t count, float momentum,
                               const float* mean, const float* var, float* running_mean,
                               float* running_var, bool unbiased) {
  if (unbiased && count < 2)
    throw invalid_input(
        "batch norm in training needs more than 1 value per channel (batch x height x "
        "width), got ",
        count);
  enter(ctx);
  const float unbias = unbiased ? static_cast<float>(static_cast<double>(count) / (count - 1)) : 1.f;
  for (int64_t i = 0; i < c; ++i) {
    running_mean[i] = (1.f - momentum) * running_mean[i] + momentum * mean[i];
    running_var[i] = (1.f - momentum) * running_var[i] + momentum * (var[i] * unbias);
  }
}

}  // namespace dlmem::cpu
