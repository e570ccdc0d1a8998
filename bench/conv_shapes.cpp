// Per-convolution-shape benchmark for issue 38: libtorch's convolution calls exactly as the fused
// CPU training pass makes them (src/fused/step.rs, csrc/fused_shim.cpp) against oneDNN called
// directly, for every 3x3 convolution shape of ResNet-20 on CIFAR-10 at batch 128, in fp32 and
// bf16. Built and run by scripts/conv_shapes; not part of the cargo build.
//
// Three columns per pass:
//   libtorch      ATen's conv2d / convolution_backward on channels-last tensors, as we call them
//                 (libtorch 2.11 runs its bundled oneDNN and reorders inside every call);
//   direct blk    oneDNN called directly (the pip package, a newer oneDNN), activations and
//                 weights in the layouts oneDNN picks (format_tag::any), weights prepacked once;
//   direct NHWC   the same with the activations held in NHWC, weights still `any` and prepacked,
//                 so that the layout's share and the prepacking's share can be told apart.
// Every direct result is checked against libtorch's before anything is timed.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/native/verbose_wrapper.h>
#include <torch/version.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>
#include <oneapi/tbb/global_control.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

// ---------------------------------------------------------------------------------------------
// The problem

constexpr int64_t kBatch = 128;

// One 3x3 convolution of ResNet-20 (padding 1, no bias). `per_step` is how many of the network's
// convolutions have this shape: the stem, then 3 stages of 3 blocks with 2 convolutions each,
// the first of stages 2 and 3 striding by 2; option A shortcuts have no convolution.
struct Shape {
  int64_t cin, cout, in_hw, stride;
  int per_step;
  bool stem;  // the stem's input is the image: its backward needs no input gradient

  int64_t out_hw() const { return (in_hw + 2 - 3) / stride + 1; }
  // Multiply-adds counted twice, one pass (forward, backward-by-data or backward-by-weights).
  double gflop() const { return 2.0 * kBatch * cout * out_hw() * out_hw() * cin * 9 / 1e9; }
  std::string name() const {
    std::ostringstream s;
    s << cin << "->" << cout << " " << in_hw << "x" << in_hw;
    if (stride != 1) s << "->" << out_hw() << "x" << out_hw() << " s" << stride;
    return s.str();
  }
};

// Counts per step, from the model (src/model.rs: STAGE_WIDTHS 16/32/64, n = 3 blocks a stage).
std::vector<Shape> resnet20_shapes() {
  return {
      {3, 16, 32, 1, 1, true},    // stem
      {16, 16, 32, 1, 6, false},  // stage 1: 3 blocks x 2
      {16, 32, 32, 2, 1, false},  // stage 2, block 1, first convolution
      {32, 32, 16, 1, 5, false},  // stage 2: the other 5
      {32, 64, 16, 2, 1, false},  // stage 3, block 1, first convolution
      {64, 64, 8, 1, 5, false},   // stage 3: the other 5
  };
}

enum class Precision { fp32, bf16 };

const char *precision_name(Precision p) { return p == Precision::fp32 ? "fp32" : "bf16"; }
at::ScalarType torch_type(Precision p) { return p == Precision::fp32 ? at::kFloat : at::kBFloat16; }
Dt dnnl_type(Precision p) { return p == Precision::fp32 ? Dt::f32 : Dt::bf16; }

struct Options {
  int reps = 20;
  int warmup = 3;
  int threads = 2;
  bool fp32 = true;
  bool bf16 = true;
};

[[noreturn]] void usage_error(const std::string &what) {
  std::fprintf(stderr,
               "conv_shapes: %s\nusage: conv_shapes [--reps N] [--warmup N] [--threads N] "
               "[--only fp32|bf16]\n",
               what.c_str());
  std::exit(2);
}

int positive(const std::string &flag, const char *value) {
  char *end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (*end != '\0' || v < 1 || v > 100000) usage_error(flag + " wants a positive count, not '" + value + "'");
  return static_cast<int>(v);
}

Options parse_options(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) usage_error(flag + " wants a value");
    const char *value = argv[++i];
    if (flag == "--reps") {
      o.reps = positive(flag, value);
    } else if (flag == "--warmup") {
      o.warmup = positive(flag, value);
    } else if (flag == "--threads") {
      o.threads = positive(flag, value);
    } else if (flag == "--only") {
      std::string v = value;
      if (v != "fp32" && v != "bf16") usage_error("--only takes fp32 or bf16, not '" + v + "'");
      o.fp32 = v == "fp32";
      o.bf16 = v == "bf16";
    } else {
      usage_error("unknown option " + flag);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Timing

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// Median wall time of one call, in ms, after `warmup` untimed calls. Each call is timed on its
// own (they last milliseconds) so that the median drops the calls a busy machine interrupted.
double median_ms(const std::function<void()> &call, const Options &o) {
  for (int i = 0; i < o.warmup; ++i) call();
  std::vector<double> t(o.reps);
  for (auto &ms : t) {
    double t0 = now_ms();
    call();
    ms = now_ms() - t0;
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

// The matrix-product ceiling in the same process: GFLOP/s of a 1024 x 1024 at::mm, as
// scripts/pytorch_reference.py's matmul_gflops measures it (there: mean over about a second;
// here: the median call, the same statistic as every convolution figure).
double matmul_gflops(at::ScalarType type, const Options &o) {
  const int64_t n = 1024;
  auto a = at::randn({n, n}).to(type);
  auto b = at::randn({n, n}).to(type);
  Options more = o;
  more.reps = std::max(o.reps, 20);
  double ms = median_ms([&] { at::mm(a, b); }, more);
  return 2.0 * n * n * n / (ms * 1e6);
}

// ---------------------------------------------------------------------------------------------
// libtorch as the fused pass calls it

// The tensors of one convolution: the fp32 master weight and its .grad as training holds them
// (channels-last strides: Network::to_channels_last, the default, and the flat SGD buffers keep
// that order), the activation and the output gradient in the pass's kind, channels-last.
struct TorchConv {
  Shape shape;
  Precision precision;
  at::Tensor master, grad, x, gy;
};

TorchConv make_torch_conv(const Shape &s, Precision p) {
  const auto cl = at::MemoryFormat::ChannelsLast;
  auto kind = torch_type(p);
  TorchConv c{s, p, {}, {}, {}, {}};
  c.master = (at::randn({s.cout, s.cin, 3, 3}) * std::sqrt(2.0 / (9.0 * s.cin))).contiguous(cl);
  c.grad = at::zeros_like(c.master).contiguous(cl);
  c.x = at::randn({kBatch, s.cin, s.in_hw, s.in_hw}).to(kind).contiguous(cl);
  c.gy = at::randn({kBatch, s.cout, s.out_hw(), s.out_hw()}).to(kind).contiguous(cl);
  return c;
}

// step.rs `weight`: the master weight in the pass's kind, cast at every call (a no-op in fp32).
at::Tensor torch_weight(const TorchConv &c) { return c.master.to(torch_type(c.precision)); }

at::Tensor torch_forward(const TorchConv &c, const at::Tensor &w) {
  return at::conv2d(c.x, w, {}, {c.shape.stride, c.shape.stride}, {1, 1}, {1, 1}, 1);
}

// csrc/fused_shim.cpp rt_fused_conv_backward, with the mask given.
std::tuple<at::Tensor, at::Tensor, at::Tensor> torch_backward(const TorchConv &c, const at::Tensor &w,
                                                              bool input, bool weight) {
  const int64_t st = c.shape.stride;
  return at::convolution_backward(c.gy, c.x, w, std::nullopt, {st, st}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                  {input, weight, false});
}

// step.rs `conv_back` as a whole: the backward call with the input gradient wanted for every
// convolution but the stem, then the weight gradient added into the fp32 .grad.
void torch_backward_as_called(const TorchConv &c, const at::Tensor &w) {
  auto out = torch_backward(c, w, !c.shape.stem, true);
  c.grad.add_(std::get<1>(out));
}

// ---------------------------------------------------------------------------------------------
// Which oneDNN kernels libtorch runs: its bundled oneDNN's verbose output for one call, read
// back from stdout (oneDNN prints there). Only libtorch's copy is made verbose; the direct
// oneDNN stays quiet, and ONEDNN_VERBOSE must not be set in the environment.

// A short name for one "onednn_verbose,...,primitive,exec,cpu,<kind>,<impl>,<prop>,<mds>,..." line:
// the implementation, and for a reorder the layouts it converts between.
std::string summarize_exec_line(const std::string &line) {
  std::vector<std::string> f;
  std::stringstream ss(line);
  for (std::string field; std::getline(ss, field, ',');) f.push_back(field);
  if (f.size() < 9 || f[2] != "primitive" || f[3] != "exec") return "";
  const std::string &kind = f[5], &impl = f[6];
  if (kind != "reorder") return impl;
  // mds: "src:f32::blocked:acdb::f0 dst:bf16::blocked:Acdb16a::f0" -> "reorder f32:acdb>bf16:Acdb16a"
  std::vector<std::string> tags;
  std::stringstream mds(f[8]);
  for (std::string md; mds >> md;) {
    std::vector<std::string> parts;
    std::stringstream ps(md);
    for (std::string part; std::getline(ps, part, ':');) parts.push_back(part);
    if (parts.size() > 4) tags.push_back(parts[1] + ":" + parts[4]);
  }
  std::string s = "reorder";
  for (size_t i = 0; i < tags.size(); ++i) s += (i ? ">" : " ") + tags[i];
  return s;
}

// The summarized exec lines of libtorch's oneDNN while `call` runs.
std::vector<std::string> capture_libtorch_onednn(const std::function<void()> &call) {
  std::fflush(stdout);
  FILE *tmp = std::tmpfile();
  if (!tmp) throw std::runtime_error("no temporary file for libtorch's oneDNN verbose output");
  int saved = dup(STDOUT_FILENO);
  dup2(fileno(tmp), STDOUT_FILENO);
  torch::verbose::_mkldnn_set_verbose(1);
  call();
  torch::verbose::_mkldnn_set_verbose(0);
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);

  std::vector<std::string> kernels;
  std::rewind(tmp);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, tmp)) {
    std::string line(buf);
    if (!line.empty() && line.back() == '\n') line.pop_back();
    std::string k = summarize_exec_line(line);
    if (!k.empty()) kernels.push_back(k);
  }
  std::fclose(tmp);
  return kernels;
}

std::string join(const std::vector<std::string> &parts, const char *sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s.empty() ? "(no oneDNN call)" : s;
}

// ---------------------------------------------------------------------------------------------
// oneDNN called directly

// The pip oneDNN's CPU engine and one in-order stream. That build's CPU runtime is SYCL (an
// OpenCL CPU device; kernels run as host tasks threaded by TBB), so every execute is waited for.
struct Direct {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine, dnnl::stream::flags::in_order};
};

enum class Layout { blocked, nhwc };

const char *layout_name(Layout l) { return l == Layout::blocked ? "blocked" : "NHWC"; }

// A memory desc's layout in oneDNN's own notation (acdb, aBcd16b, ABcd16b16a, ...): the outer
// dimensions from the largest stride down, blocked ones in capitals, then the inner blocks.
std::string layout_of(const memory::desc &md) {
  if (md.get_format_kind() != memory::format_kind::blocked) return "?";
  auto dims = md.get_dims();
  auto strides = md.get_strides();
  auto blks = md.get_inner_blks();
  auto idxs = md.get_inner_idxs();
  std::vector<int> order(dims.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return strides[a] > strides[b]; });
  std::set<int64_t> blocked(idxs.begin(), idxs.end());
  std::string s;
  for (int d : order) s += static_cast<char>((blocked.count(d) ? 'A' : 'a') + d);
  for (size_t i = 0; i < blks.size(); ++i) s += std::to_string(blks[i]) + static_cast<char>('a' + idxs[i]);
  return s;
}

// Plain memory filled from a libtorch tensor. 4-D tensors are dense channels-last, so their
// memory order is NHWC for activations and OHWI (acdb) for weights; 2-D ones are row-major.
memory plain_memory(Direct &d, const at::Tensor &t, Dt type) {
  memory::dims dims(t.sizes().begin(), t.sizes().end());
  memory m({dims, type, dims.size() == 4 ? Tag::acdb : Tag::ab}, d.engine);
  void *p = m.map_data<void>();
  std::memcpy(p, t.data_ptr(), t.nbytes());
  m.unmap_data(p);
  return m;
}

memory reordered(Direct &d, const memory &from, const memory::desc &to_desc) {
  memory to(to_desc, d.engine);
  dnnl::reorder(from, to).execute(d.stream, const_cast<memory &>(from), to);
  d.stream.wait();
  return to;
}

// A direct result as an fp32 channels-last tensor, for the comparison with libtorch's.
at::Tensor to_torch(Direct &d, const memory &m) {
  auto dims = m.get_desc().get_dims();
  auto t = at::empty(std::vector<int64_t>(dims.begin(), dims.end()),
                     at::TensorOptions().dtype(at::kFloat).memory_format(at::MemoryFormat::ChannelsLast));
  memory plain = reordered(d, m, {dims, Dt::f32, Tag::acdb});
  void *p = plain.map_data<void>();
  std::memcpy(t.data_ptr(), p, t.nbytes());
  plain.unmap_data(p);
  return t;
}

// One convolution's three primitives and their memories, for one activation layout.
struct DirectConv {
  Layout layout = Layout::blocked;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::primitive fwd, bwd_data, bwd_weights;
  memory master;  // fp32 OHWI, where SGD keeps the weights
  memory grad;    // fp32 OHWI, where SGD reads the weight gradient
  memory x, w_fwd, y, gy, w_bwd, gx, gw;
  // Per step, outside the per-call loops: the master weight into each primitive's layout (and
  // kind), and the weight gradient back to where SGD reads it when oneDNN wrote it elsewhere.
  std::vector<std::pair<dnnl::reorder, std::unordered_map<int, memory>>> per_step;
};

// The primitive descriptors. Blocked: the forward picks every layout; the backward passes then
// take the forward's activation layouts, as a pass that keeps activations in one layout end to
// end would hand them over, and pick their own weight layouts. NHWC: activations fixed to NHWC.
// In bf16 the weight gradient is fp32, written once where the update reads it.
void create_primitive_descs(Direct &d, DirectConv &c, const Shape &s, Precision p) {
  const Dt act = dnnl_type(p);
  const Tag act_tag = c.layout == Layout::blocked ? Tag::any : Tag::nhwc;
  const memory::dims x_dims{kBatch, s.cin, s.in_hw, s.in_hw}, y_dims{kBatch, s.cout, s.out_hw(), s.out_hw()};
  const memory::dims w_dims{s.cout, s.cin, 3, 3}, strides{s.stride, s.stride}, pad{1, 1};
  const memory::desc x_md(x_dims, act, act_tag), y_md(y_dims, act, act_tag), w_md(w_dims, act, Tag::any);
  const memory::desc gw_md(w_dims, Dt::f32, Tag::any);
  const auto direct = dnnl::algorithm::convolution_direct;
  c.fwd_pd = dnnl::convolution_forward::primitive_desc(d.engine, dnnl::prop_kind::forward_training, direct, x_md,
                                                       w_md, y_md, strides, pad, pad);
  const memory::desc x_used = c.fwd_pd.src_desc(), y_used = c.fwd_pd.dst_desc();
  c.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(d.engine, direct, x_used, w_md, y_used, strides,
                                                                  pad, pad, c.fwd_pd);
  c.bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(d.engine, direct, x_used, gw_md, y_used,
                                                                        strides, pad, pad, c.fwd_pd);
}

DirectConv make_direct_conv(Direct &d, const TorchConv &t, Layout layout) {
  DirectConv c;
  c.layout = layout;
  const Dt act = dnnl_type(t.precision);
  create_primitive_descs(d, c, t.shape, t.precision);
  c.fwd = dnnl::convolution_forward(c.fwd_pd);
  c.bwd_data = dnnl::convolution_backward_data(c.bwd_data_pd);
  c.bwd_weights = dnnl::convolution_backward_weights(c.bwd_weights_pd);

  c.master = plain_memory(d, t.master, Dt::f32);
  c.grad = memory({c.master.get_desc().get_dims(), Dt::f32, Tag::acdb}, d.engine);
  c.x = reordered(d, plain_memory(d, t.x, act), c.fwd_pd.src_desc());
  c.gy = reordered(d, plain_memory(d, t.gy, act), c.fwd_pd.dst_desc());
  c.y = memory(c.fwd_pd.dst_desc(), d.engine);
  c.gx = memory(c.bwd_data_pd.diff_src_desc(), d.engine);
  c.w_fwd = memory(c.fwd_pd.weights_desc(), d.engine);
  c.w_bwd = memory(c.bwd_data_pd.weights_desc(), d.engine);
  c.gw = memory(c.bwd_weights_pd.diff_weights_desc(), d.engine);

  auto step = [&](const memory &from, const memory &to) {
    c.per_step.push_back({dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}});
  };
  step(c.master, c.w_fwd);
  if (!t.shape.stem) step(c.master, c.w_bwd);
  if (c.gw.get_desc() != c.grad.get_desc()) step(c.gw, c.grad);
  return c;
}

void run(Direct &d, dnnl::primitive &p, const std::unordered_map<int, memory> &args) {
  p.execute(d.stream, args);
}

void direct_weights(Direct &d, DirectConv &c) {
  for (auto &[r, args] : c.per_step) run(d, r, args);
  d.stream.wait();
}

void direct_forward(Direct &d, DirectConv &c) {
  run(d, c.fwd, {{DNNL_ARG_SRC, c.x}, {DNNL_ARG_WEIGHTS, c.w_fwd}, {DNNL_ARG_DST, c.y}});
  d.stream.wait();
}

void direct_backward_data(Direct &d, DirectConv &c) {
  run(d, c.bwd_data, {{DNNL_ARG_DIFF_DST, c.gy}, {DNNL_ARG_WEIGHTS, c.w_bwd}, {DNNL_ARG_DIFF_SRC, c.gx}});
  d.stream.wait();
}

void direct_backward_weights(Direct &d, DirectConv &c) {
  run(d, c.bwd_weights, {{DNNL_ARG_SRC, c.x}, {DNNL_ARG_DIFF_DST, c.gy}, {DNNL_ARG_DIFF_WEIGHTS, c.gw}});
  d.stream.wait();
}

// What the training pass's backward would be: both passes, one wait (the stem: weights only).
void direct_backward(Direct &d, DirectConv &c, bool stem) {
  if (!stem)
    run(d, c.bwd_data, {{DNNL_ARG_DIFF_DST, c.gy}, {DNNL_ARG_WEIGHTS, c.w_bwd}, {DNNL_ARG_DIFF_SRC, c.gx}});
  run(d, c.bwd_weights, {{DNNL_ARG_SRC, c.x}, {DNNL_ARG_DIFF_DST, c.gy}, {DNNL_ARG_DIFF_WEIGHTS, c.gw}});
  d.stream.wait();
}

// ---------------------------------------------------------------------------------------------
// Correctness: every direct result against libtorch's, once per shape, before timing

// Largest difference relative to the largest magnitude of the reference.
double relative_max_error(const at::Tensor &got, const at::Tensor &want) {
  auto w = want.to(at::kFloat);
  double scale = w.abs().max().item<double>();
  double diff = (got - w).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

// bf16 keeps 8 significant bits (0.4 %); both sides round their outputs to it, and libtorch's
// bf16 weight gradient is rounded where the direct one stays fp32. fp32 differs only in the
// order of summation.
double tolerance(Precision p) { return p == Precision::fp32 ? 1e-4 : 2e-2; }

void check(const std::string &what, const at::Tensor &got, const at::Tensor &want, Precision p) {
  double err = relative_max_error(got, want);
  if (!(err <= tolerance(p))) {
    std::ostringstream m;
    m << what << ": direct oneDNN differs from libtorch, relative max error " << err << " > " << tolerance(p);
    throw std::runtime_error(m.str());
  }
}

// Runs every direct pass once and compares it with libtorch; returns the largest error seen.
double verify(Direct &d, DirectConv &c, const TorchConv &t) {
  const std::string where = t.shape.name() + " " + precision_name(t.precision) + " " + layout_name(c.layout);
  auto w = torch_weight(t);
  direct_weights(d, c);
  direct_forward(d, c);
  direct_backward(d, c, t.shape.stem);
  auto [gx, gw, gb] = torch_backward(t, w, !t.shape.stem, true);
  double worst = 0;
  auto compare = [&](const std::string &pass, const memory &m, const at::Tensor &want) {
    auto got = to_torch(d, m);
    check(where + " " + pass, got, want, t.precision);
    worst = std::max(worst, relative_max_error(got, want));
  };
  compare("forward", c.y, torch_forward(t, w));
  if (!t.shape.stem) compare("backward-by-data", c.gx, gx);
  compare("backward-by-weights", c.gw, gw);
  return worst;
}

// ---------------------------------------------------------------------------------------------
// Measuring

enum Column { kTorch, kBlocked, kNhwc, kColumns };

struct Row {
  std::string pass;
  double flop_passes;  // how many passes' worth of GFLOP one call does (0: no arithmetic)
  double ms[kColumns];
  std::string kernels[kColumns];
};

struct ShapeResult {
  Shape shape;
  std::vector<Row> rows;
  double max_error;
};

const Row &row(const ShapeResult &r, const std::string &pass) {
  for (auto &x : r.rows)
    if (x.pass == pass) return x;
  throw std::logic_error("no row " + pass);
}

// One row: a pass timed in the three columns, each the median of its own calls.
Row time_pass(const std::string &pass, double flop_passes, const std::function<void()> &torch_call,
              const std::function<void(DirectConv &)> &direct_call, DirectConv &blk, DirectConv &nhwc,
              const std::array<std::string, kColumns> &kernels, const Options &o) {
  Row x{pass, flop_passes, {}, {kernels[kTorch], kernels[kBlocked], kernels[kNhwc]}};
  x.ms[kTorch] = median_ms(torch_call, o);
  x.ms[kBlocked] = median_ms([&] { direct_call(blk); }, o);
  x.ms[kNhwc] = median_ms([&] { direct_call(nhwc); }, o);
  return x;
}

std::string torch_kernels(const std::function<void()> &call) { return join(capture_libtorch_onednn(call), " + "); }

// The direct path's once-a-step weight work, named by the layouts it converts between.
std::string weights_work(const DirectConv &c, bool stem) {
  std::string s = "reorder f32:acdb>" + layout_of(c.w_fwd.get_desc());
  if (!stem) s += ", >" + layout_of(c.w_bwd.get_desc());
  if (c.gw.get_desc() != c.grad.get_desc()) s += "; grad " + layout_of(c.gw.get_desc()) + ">acdb";
  return s;
}

std::string forward_impl(const DirectConv &c) {
  return std::string(c.fwd_pd.impl_info_str()) + " (x " + layout_of(c.fwd_pd.src_desc()) + ", y " +
         layout_of(c.fwd_pd.dst_desc()) + ")";
}

std::string backward_weights_impl(const DirectConv &c) {
  return std::string(c.bwd_weights_pd.impl_info_str()) + " (gw " + layout_of(c.gw.get_desc()) + ")";
}

// Every pass of one shape: checked first, then timed.
ShapeResult measure_shape(Direct &d, const Shape &s, Precision p, const Options &o) {
  TorchConv t = make_torch_conv(s, p);
  DirectConv blk = make_direct_conv(d, t, Layout::blocked);
  DirectConv nhwc = make_direct_conv(d, t, Layout::nhwc);
  ShapeResult r{s, {}, std::max(verify(d, blk, t), verify(d, nhwc, t))};
  auto w = torch_weight(t);
  auto pass = [&](const std::string &name, double flop_passes, const std::function<void()> &torch_call,
                  const std::function<void(DirectConv &)> &direct_call, const std::array<std::string, kColumns> &k) {
    r.rows.push_back(time_pass(name, flop_passes, torch_call, direct_call, blk, nhwc, k, o));
  };

  // Weights: libtorch casts the master weight in each of the two calls a step makes (a no-op in
  // fp32); the direct path reorders it once a step into each primitive's layout.
  pass("weights", 0, [&] { torch_weight(t); torch_weight(t); }, [&](DirectConv &c) { direct_weights(d, c); },
       {p == Precision::bf16 ? "2 x to(bf16)" : "(none)", weights_work(blk, s.stem), weights_work(nhwc, s.stem)});
  pass("fwd", 1, [&] { torch_forward(t, w); }, [&](DirectConv &c) { direct_forward(d, c); },
       {torch_kernels([&] { torch_forward(t, w); }), forward_impl(blk), forward_impl(nhwc)});
  pass("bwd (as called)", s.stem ? 1 : 2, [&] { torch_backward_as_called(t, w); },
       [&](DirectConv &c) { direct_backward(d, c, s.stem); },
       {torch_kernels([&] { torch_backward(t, w, !s.stem, true); }) + " + add_ into .grad", "both below",
        "both below"});
  if (!s.stem)
    pass("bwd-data", 1, [&] { torch_backward(t, w, true, false); }, [&](DirectConv &c) { direct_backward_data(d, c); },
         {torch_kernels([&] { torch_backward(t, w, true, false); }), blk.bwd_data_pd.impl_info_str(),
          nhwc.bwd_data_pd.impl_info_str()});
  pass("bwd-weights", 1, [&] { torch_backward(t, w, false, true); },
       [&](DirectConv &c) { direct_backward_weights(d, c); },
       {torch_kernels([&] { torch_backward(t, w, false, true); }), backward_weights_impl(blk),
        backward_weights_impl(nhwc)});
  return r;
}

// The same 1024 x 1024 product on the direct oneDNN (its matmul primitive), to tell a ceiling
// that libtorch's matmul path sets from one that the CPU sets.
double direct_matmul_gflops(Direct &d, Precision p, const Options &o) {
  const int64_t n = 1024;
  const memory::desc md({n, n}, dnnl_type(p), Tag::ab);
  auto ones = at::ones({n, n}).to(torch_type(p));
  memory a = plain_memory(d, ones, dnnl_type(p)), b = plain_memory(d, ones, dnnl_type(p)), c(md, d.engine);
  dnnl::matmul mm(dnnl::matmul::primitive_desc(d.engine, md, md, md));
  Options more = o;
  more.reps = std::max(o.reps, 20);
  const std::unordered_map<int, memory> args{{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
  double ms = median_ms([&] { run(d, mm, args); d.stream.wait(); }, more);
  return 2.0 * n * n * n / (ms * 1e6);
}

// ---------------------------------------------------------------------------------------------
// Reporting (Markdown)

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "312 (31 %)": GFLOP/s and its share of the matrix-product ceiling.
std::string rate(double gflop, double ms, double ceiling) {
  if (gflop <= 0 || ms <= 0) return "";
  double r = gflop / (ms / 1e3);
  return fixed(r, 0) + " (" + fixed(100 * r / ceiling, 0) + " %)";
}

void print_shape_table(const std::vector<ShapeResult> &results, double ceiling) {
  std::printf(
      "| shape | per step | pass | libtorch ms | direct blocked ms | direct NHWC ms | libtorch GFLOP/s "
      "(of ceiling) | blocked GFLOP/s | NHWC GFLOP/s | libtorch's oneDNN runs | direct blocked: "
      "implementation | direct NHWC: implementation |\n");
  std::printf("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|\n");
  for (auto &r : results) {
    for (auto &x : r.rows) {
      double gflop = x.flop_passes * r.shape.gflop();
      std::printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.shape.name().c_str(),
                  r.shape.per_step, x.pass.c_str(), fixed(x.ms[kTorch], 3).c_str(), fixed(x.ms[kBlocked], 3).c_str(),
                  fixed(x.ms[kNhwc], 3).c_str(), rate(gflop, x.ms[kTorch], ceiling).c_str(),
                  rate(gflop, x.ms[kBlocked], ceiling).c_str(), rate(gflop, x.ms[kNhwc], ceiling).c_str(),
                  x.kernels[kTorch].c_str(), x.kernels[kBlocked].c_str(), x.kernels[kNhwc].c_str());
    }
  }
}

// Per-step totals: each shape's time times its count. "split" is backward-by-data plus
// backward-by-weights as separate calls; "as called" is what the pass does today.
void print_step_totals(const std::vector<ShapeResult> &results, double ceiling) {
  struct Total {
    const char *name;
    std::function<double(const ShapeResult &, int)> ms;
    std::function<double(const ShapeResult &)> gflop;
  };
  auto ms_of = [](const std::string &pass) {
    return [pass](const ShapeResult &r, int col) { return row(r, pass).ms[col]; };
  };
  auto passes = [](double n_other, double n_stem) {
    return [=](const ShapeResult &r) { return (r.shape.stem ? n_stem : n_other) * r.shape.gflop(); };
  };
  auto split_ms = [](const ShapeResult &r, int col) {
    return (r.shape.stem ? 0 : row(r, "bwd-data").ms[col]) + row(r, "bwd-weights").ms[col];
  };
  std::vector<Total> totals = {
      {"forward", ms_of("fwd"), passes(1, 1)},
      {"backward as called", ms_of("bwd (as called)"), passes(2, 1)},
      {"backward split (data + weights)", split_ms, passes(2, 1)},
      {"weights (cast / prepack)", ms_of("weights"), passes(0, 0)},
  };
  std::printf("\n| per step (time x count) | libtorch ms | direct blocked ms | direct NHWC ms | libtorch GFLOP/s "
              "| blocked GFLOP/s | NHWC GFLOP/s |\n|---|---:|---:|---:|---:|---:|---:|\n");
  double step_ms[kColumns] = {0, 0, 0}, step_gflop = 0;
  for (size_t i = 0; i < totals.size(); ++i) {
    double ms[kColumns] = {0, 0, 0}, gflop = 0;
    for (auto &r : results) {
      for (int col = 0; col < kColumns; ++col) ms[col] += totals[i].ms(r, col) * r.shape.per_step;
      gflop += totals[i].gflop(r) * r.shape.per_step;
    }
    if (i != 2) {  // the step is weights + forward + backward as called
      for (int col = 0; col < kColumns; ++col) step_ms[col] += ms[col];
      step_gflop += gflop;
    }
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", totals[i].name, fixed(ms[kTorch], 2).c_str(),
                fixed(ms[kBlocked], 2).c_str(), fixed(ms[kNhwc], 2).c_str(), rate(gflop, ms[kTorch], ceiling).c_str(),
                rate(gflop, ms[kBlocked], ceiling).c_str(), rate(gflop, ms[kNhwc], ceiling).c_str());
  }
  std::printf("| **the step's convolutions** (weights + forward + backward as called) "
              "| %s | %s | %s | %s | %s | %s |\n",
              fixed(step_ms[kTorch], 2).c_str(), fixed(step_ms[kBlocked], 2).c_str(), fixed(step_ms[kNhwc], 2).c_str(),
              rate(step_gflop, step_ms[kTorch], ceiling).c_str(), rate(step_gflop, step_ms[kBlocked], ceiling).c_str(),
              rate(step_gflop, step_ms[kNhwc], ceiling).c_str());
}

void run_precision(Direct &d, Precision p, const Options &o) {
  double ceiling = matmul_gflops(torch_type(p), o);
  std::printf("\n## %s\n\nmatrix-product ceiling (at::mm 1024 x 1024, %s, %d threads): %.0f GFLOP/s; the shares "
              "below are of this.\nFor reference, the direct oneDNN's matmul of the same size: %.0f GFLOP/s.\n\n",
              precision_name(p), precision_name(p), o.threads, ceiling, direct_matmul_gflops(d, p, o));
  std::fflush(stdout);
  std::vector<ShapeResult> results;
  double worst = 0;
  for (auto &s : resnet20_shapes()) {
    results.push_back(measure_shape(d, s, p, o));
    worst = std::max(worst, results.back().max_error);
    std::fprintf(stderr, "conv_shapes: %s %s measured\n", precision_name(p), s.name().c_str());
  }
  print_shape_table(results, ceiling);
  print_step_totals(results, ceiling);
  std::printf("\nchecked: every direct result matches libtorch's, largest relative error %.2g (tolerance %.0e)\n",
              worst, tolerance(p));
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// The process: versions, thread runtimes, per-call overhead

// libtorch's bundled oneDNN, as its build reports it (the verbose header is printed only when
// ONEDNN_VERBOSE is set at start-up, which would make the direct copy print too).
std::string libtorch_onednn_version() { return at::get_mkldnn_version(); }

// The thread runtimes mapped into this process, and how many threads it has.
std::string runtimes_loaded() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> found;
  for (std::string line; std::getline(maps, line);)
    for (const char *lib : {"libgomp", "libiomp5", "libtbb.so", "libsycl.so", "libintelocl"})
      if (line.find(lib) != std::string::npos) found.insert(lib);
  std::string s;
  for (auto &f : found) s += (s.empty() ? "" : ", ") + f;
  int threads = 0;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) threads = std::atoi(line.c_str() + 8);
  return s + "; " + std::to_string(threads) + " threads in the process";
}

// What one direct execute costs beyond its work: a 16-float reorder, executed and waited for.
double direct_call_overhead_us(Direct &d, const Options &o) {
  memory a({{16}, Dt::f32, Tag::a}, d.engine), b({{16}, Dt::f32, Tag::a}, d.engine);
  dnnl::reorder r(a, b);
  Options more = o;
  more.reps = std::max(o.reps, 50);
  return 1e3 * median_ms([&] { r.execute(d.stream, a, b); d.stream.wait(); }, more);
}

void print_header(Direct &d, const Options &o) {
  const dnnl_version_t *v = dnnl_version();
  std::printf("# Convolution shapes of ResNet-20 (CIFAR-10, batch %lld, 3x3, padding 1): libtorch vs oneDNN direct\n\n",
              static_cast<long long>(kBatch));
  std::printf("- threads: libtorch at::set_num_threads(%d) -> %d; direct oneDNN TBB max_allowed_parallelism %d\n",
              o.threads, at::get_num_threads(), o.threads);
  std::printf("- libtorch %s, its bundled oneDNN %s (OpenMP runtime)\n", TORCH_VERSION,
              libtorch_onednn_version().c_str());
  std::printf("- direct: oneDNN v%d.%d.%d (commit %.8s), CPU runtime %s, threading %s\n", v->major, v->minor,
              v->patch, v->hash, dnnl_runtime2str(v->cpu_runtime), dnnl_runtime2str(DNNL_CPU_THREADING_RUNTIME));
  std::printf("- direct per-call overhead (16-float reorder, execute + wait): %.1f us\n",
              direct_call_overhead_us(d, o));
  std::printf("- median of %d calls after %d warm-up calls; GFLOP/s = 2*N*Cout*Hout*Wout*Cin*9 per pass\n", o.reps,
              o.warmup);
  std::printf("- libtorch rows: weights and activations channels-last as training holds them; fwd uses the cast\n"
              "  weight; 'bwd (as called)' is convolution_backward with mask {input unless stem, weight} plus\n"
              "  .grad.add_(gw); the split rows are the bare calls. Direct rows time execute() + wait only;\n"
              "  the 'weights' row is the once-a-step prepack (and, where oneDNN's weight-gradient layout is not\n"
              "  OHWI, the reorder back). Direct bf16 writes an fp32 weight gradient.\n");
  std::fflush(stdout);
}

void check_headers_match_library() {
  const dnnl_version_t *v = dnnl_version();
  if (v->major != DNNL_VERSION_MAJOR || v->minor != DNNL_VERSION_MINOR)
    throw std::runtime_error("compiled against oneDNN headers " + std::to_string(DNNL_VERSION_MAJOR) + "." +
                             std::to_string(DNNL_VERSION_MINOR) + " but loaded libdnnl " + std::to_string(v->major) +
                             "." + std::to_string(v->minor) + " (libtorch's own dnnl headers came first?)");
}

}  // namespace

int main(int argc, char **argv) {
  Options o = parse_options(argc, argv);
  if (std::getenv("ONEDNN_VERBOSE") || std::getenv("DNNL_VERBOSE")) {
    std::fprintf(stderr, "conv_shapes: unset ONEDNN_VERBOSE/DNNL_VERBOSE: both oneDNN copies would print, and "
                         "the program reads libtorch's verbose output itself\n");
    return 2;
  }
  try {
    check_headers_match_library();
    at::set_num_threads(o.threads);
    // TBB's limit holds for every arena in the process while this object lives.
    tbb::global_control tbb_threads(tbb::global_control::max_allowed_parallelism, o.threads);
    at::manual_seed(0);
    Direct d;
    print_header(d, o);
    if (o.fp32) run_precision(d, Precision::fp32, o);
    if (o.bf16) run_precision(d, Precision::bf16, o);
    std::printf("\n- loaded: %s\n", runtimes_loaded().c_str());
  } catch (const dnnl::error &e) {
    std::fprintf(stderr, "conv_shapes: oneDNN error: %s (status %d)\n", e.what(), static_cast<int>(e.status));
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "conv_shapes: %s\n", e.what());
    return 1;
  }
  return 0;
}
