// Elementwise activations and softmax: the only checks are the softmax dim;
// any shape (including empty) is valid for the elementwise ones.
#include "common.h"
#include "striate/kernels_cpu.h"
#include "striate/ops.h"

namespace striate::ops {

void activation_forward(Activation a, int64_t n, float slope, const float* x,
                        float* y) {
  switch (a) {
    case Activation::relu: return cpu::relu(n, x, y);
    case Activation::leaky_relu: return cpu::leaky_relu(n, slope, x, y);
    case Activation::sigmoid: return cpu::sigmoid(n, x, y);
    case Activation::tanh: return cpu::tanh(n, x, y);
  }
}

void activation_backward(Activation a, int64_t n, float slope, const float* gy,
                         const float* x, float* gx) {
  switch (a) {
    case Activation::relu: return cpu::relu_backward(n, gy, x, gx);
    case Activation::leaky_relu: return cpu::leaky_relu_backward(n, slope, gy, x, gx);
    case Activation::sigmoid: return cpu::sigmoid_backward(n, gy, x, gx);
    case Activation::tanh: return cpu::tanh_backward(n, gy, x, gx);
  }
}

SoftmaxParams softmax_plan(const char* op, const Shape& x, int64_t dim) {
  // A 0-d tensor behaves as one element along dim -1/0, as in PyTorch.
  const int64_t ndim = static_cast<int64_t>(x.size());
  const int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi)
    throw_value_error(op, ": dim=", dim, " is out of range for x of shape ", shape_str(x),
                      " (expected ", lo, " <= dim <= ", hi, ")");
  SoftmaxParams p;
  if (ndim == 0) return p;
  const int64_t d = dim < 0 ? dim + ndim : dim;
  for (int64_t i = 0; i < d; ++i) p.outer *= x[i];
  p.dim = x[d];
  for (int64_t i = d + 1; i < ndim; ++i) p.inner *= x[i];
  return p;
}

void softmax_forward(const SoftmaxParams& p, bool log, const float* x, float* y) {
  if (log)
    cpu::log_softmax(p, x, y);
  else
    cpu::softmax(p, x, y);
}

void softmax_backward(const SoftmaxParams& p, bool log, const float* gy,
                      const float* x, float* gx) {
  if (log)
    cpu::log_softmax_backward(p, gy, x, gx);
  else
    cpu::softmax_backward(p, gy, x, gx);
}

}  // namespace striate::ops
