// The narrow C++ shim of src/fused: what tch 0.24 does not bind. Convolution's backward
// (at::convolution_backward, the function autograd's ConvolutionBackward0 calls), writing a
// gradient into a variable's .grad, and at::parallel_for, so that our kernels run on libtorch's
// own OpenMP team. Tensors cross as tch's C_tensor pointers (heap-allocated at::Tensor).
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/convolution_backward.h>

#include <cstring>
#include <exception>
#include <string>

namespace {
thread_local std::string last_error;

int fail(const std::exception &e) {
  last_error = e.what();
  return 1;
}
}  // namespace

extern "C" {

// The message of the last failed call on this thread (valid until the next call).
const char *rt_fused_last_error() { return last_error.c_str(); }

// 2-D convolution backward, no bias, dilation 1, groups 1. `grad_input` is left null when
// `need_input` is 0. The results are new tensors the caller owns.
int rt_fused_conv_backward(const at::Tensor *grad_out, const at::Tensor *input, const at::Tensor *weight,
                           int64_t stride, int64_t padding, int need_input, at::Tensor **grad_input,
                           at::Tensor **grad_weight) {
  try {
    std::array<bool, 3> mask = {need_input != 0, true, false};
    auto out = at::convolution_backward(*grad_out, *input, *weight, c10::nullopt, {stride, stride},
                                        {padding, padding}, {1, 1}, false, {0, 0}, 1, mask);
    *grad_input = need_input ? new at::Tensor(std::get<0>(out)) : nullptr;
    *grad_weight = new at::Tensor(std::get<1>(out));
    return 0;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Adds `grad` into `var`'s .grad as autograd's accumulation does: in place when it exists (so a
// .grad that is a view into a flat buffer stays one), the tensor itself (in the variable's kind:
// a bf16 pass's weight gradients are bf16) when it does not.
int rt_fused_accumulate_grad(const at::Tensor *var, const at::Tensor *grad) {
  try {
    at::Tensor &g = const_cast<at::Tensor *>(var)->mutable_grad();
    if (g.defined()) {
      g.add_(*grad);
    } else {
      g = grad->to(var->scalar_type()).detach();
    }
    return 0;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// Runs body(ctx, begin, end) over [0, n) in chunks of at least `grain`, on libtorch's thread team.
int rt_fused_parallel_for(int64_t n, int64_t grain, void (*body)(void *, int64_t, int64_t), void *ctx) {
  try {
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { body(ctx, begin, end); });
    return 0;
  } catch (const std::exception &e) {
    return fail(e);
  }
}

// The vector instructions ATen's own CPU kernels were dispatched to ("AVX512", "AVX2",
// "DEFAULT"), after ATEN_CPU_CAPABILITY's cap; the string lives until the next call on this thread.
const char *rt_aten_cpu_capability() {
  thread_local std::string capability;
  capability = at::get_cpu_capability();
  return capability.c_str();
}

}  // extern "C"
