// A prototype weight gradient for issue 38, measured against libtorch's: the bf16 3x3 convolution's
// backward-by-weights (stride 1, padding 1, channels-last, batch 128) written with AVX-512 bf16
// dot products (`vdpbf16ps`), for ResNet-20's three repeated shapes. It answers one question:
// would a kernel of our own beat oneDNN's `jit_bf16` backward-by-weights on a CPU with bf16 units
// but no AMX (a Zen 4)? Built and run by scripts/weight_grad_bf16; not part of the cargo build,
// not used by training.
//
// How it sums: `vdpbf16ps` adds the products of two bf16 pairs into one fp32 lane, so a group of
// images' output gradient and input are first interleaved into pairs of horizontally neighbouring
// pixels (the input twice: pairs starting at even columns, for the middle tap, and at odd ones,
// for the left and right taps, with zeros past the edges). Then every tile of (tap, up to 64
// output channels, up to 16 input channels) sums the group's pixel pairs in 16 registers: output
// channels across the lanes, one input channel's pair broadcast. Each thread takes a contiguous
// part of the batch into its own sums, added at the end in thread order.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <omp.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using u16 = uint16_t;
using u32 = uint32_t;

struct Shape {
  int n, h, w, c, o;  // batch, map height and width (even), input and output channels (multiples of 16)
};

// A few images' operands as pixel pairs (u32: the left pixel's bf16 low, the right one's high).
struct Pairs {
  int images = 0;
  std::vector<u32> grad;  // [image][h][w/2][o]
  std::vector<u32> even;  // [image][h+2][w/2][c]: columns (2j, 2j+1), a zero row above and below
  std::vector<u32> odd;   // [image][h+2][w/2+1][c]: columns (2j-1, 2j), zeros outside the map
};

// Interleaves k channels of two pixels into k pairs; k a multiple of 16.
void interleave(const u16 *left, const u16 *right, int k, u32 *out) {
  alignas(64) static const u16 order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                            8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(order);
  for (int i = 0; i < k; i += 16) {
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(left + i))),
                                      _mm256_loadu_si256((const __m256i *)(right + i)), 1);
    _mm512_storeu_si512(out + i, _mm512_permutexvar_epi16(idx, both));
  }
}

// Pairs `images` images from `first` on.
void pair_images(const Shape &s, const u16 *x, const u16 *gy, int first, int images, const u16 *zeros, Pairs &p) {
  const int half = s.w / 2, rows = s.h + 2;
  p.images = images;
  p.grad.resize((size_t)images * s.h * half * s.o);
  p.even.resize((size_t)images * rows * half * s.c);
  p.odd.resize((size_t)images * rows * (half + 1) * s.c);
  for (int i = 0; i < images; i++) {
    // The zero rows above and below; every other pair is written below.
    for (int pad : {0, rows - 1}) {
      std::fill_n(&p.even[((size_t)i * rows + pad) * half * s.c], (size_t)half * s.c, 0u);
      std::fill_n(&p.odd[((size_t)i * rows + pad) * (half + 1) * s.c], (size_t)(half + 1) * s.c, 0u);
    }
    for (int y = 0; y < s.h; y++) {
      const u16 *g = gy + ((size_t)(first + i) * s.h + y) * s.w * s.o;
      const u16 *in = x + ((size_t)(first + i) * s.h + y) * s.w * s.c;
      u32 *grad = &p.grad[((size_t)i * s.h + y) * half * s.o];
      u32 *even = &p.even[((size_t)i * rows + y + 1) * half * s.c];
      u32 *odd = &p.odd[((size_t)i * rows + y + 1) * (half + 1) * s.c];
      for (int j = 0; j < half; j++) {
        interleave(g + (size_t)2 * j * s.o, g + (size_t)(2 * j + 1) * s.o, s.o, grad + (size_t)j * s.o);
        interleave(in + (size_t)2 * j * s.c, in + (size_t)(2 * j + 1) * s.c, s.c, even + (size_t)j * s.c);
      }
      for (int j = 0; j <= half; j++) {
        const u16 *left = j > 0 ? in + (size_t)(2 * j - 1) * s.c : zeros;
        const u16 *right = j < half ? in + (size_t)2 * j * s.c : zeros;
        interleave(left, right, s.c, odd + (size_t)j * s.c);
      }
    }
  }
}

// Adds the paired images' contribution to the tile (tap kh, kw; output channels o0.., 16 * OV of them;
// input channels c0.., CV of them) of `gw`, laid out [o][kh][kw][c] in fp32.
template <int OV, int CV>
void tile(const Shape &s, const Pairs &p, int kh, int kw, int o0, int c0, float *gw) {
  __m512 sum[OV][CV];
  for (int v = 0; v < OV; v++)
    for (int c = 0; c < CV; c++) sum[v][c] = _mm512_setzero_ps();
  const int half = s.w / 2;
  // The middle tap reads the even pairs in place; the left one the odd pairs in place; the right
  // one the odd pairs one further on.
  const std::vector<u32> &in = kw == 1 ? p.even : p.odd;
  const int width = kw == 1 ? half : half + 1, shift = kw == 2 ? 1 : 0;
  for (int row = 0; row < p.images * s.h; row++) {
    const int i = row / s.h, y = row % s.h;
    const u32 *x_row = in.data() + ((size_t)(i * (s.h + 2) + y + kh) * width + shift) * s.c + c0;
    const u32 *g_row = p.grad.data() + (size_t)row * half * s.o + o0;
    for (int j = 0; j < half; j++) {
      __m512bh g[OV];
      for (int v = 0; v < OV; v++) g[v] = (__m512bh)_mm512_loadu_si512(g_row + (size_t)j * s.o + 16 * v);
      const u32 *xp = x_row + (size_t)j * s.c;
      for (int c = 0; c < CV; c++) {
        const __m512bh b = (__m512bh)_mm512_set1_epi32((int)xp[c]);
        for (int v = 0; v < OV; v++) sum[v][c] = _mm512_dpbf16_ps(sum[v][c], g[v], b);
      }
    }
  }
  alignas(64) float lanes[16];
  for (int v = 0; v < OV; v++)
    for (int c = 0; c < CV; c++) {
      _mm512_store_ps(lanes, sum[v][c]);
      for (int l = 0; l < 16; l++) gw[(((size_t)(o0 + 16 * v + l) * 3 + kh) * 3 + kw) * s.c + c0 + c] += lanes[l];
    }
}

template <int OV, int CV>
void images_into(const Shape &s, const Pairs &p, float *gw) {
  for (int kh = 0; kh < 3; kh++)
    for (int kw = 0; kw < 3; kw++)
      for (int o0 = 0; o0 < s.o; o0 += 16 * OV)
        for (int c0 = 0; c0 < s.c; c0 += CV) tile<OV, CV>(s, p, kh, kw, o0, c0, gw);
}

// The weight gradient, [o][3][3][c] in fp32, of channels-last bf16 `x` [n][h][w][c] and `gy` [n][h][w][o].
void weight_grad(const Shape &s, const u16 *x, const u16 *gy, float *gw) {
  const int threads = omp_get_max_threads();
  const size_t size = (size_t)s.o * 9 * s.c;
  std::vector<std::vector<float>> parts(threads, std::vector<float>(size, 0.f));
  const std::vector<u16> zeros(s.c, 0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int per = (s.n + threads - 1) / threads, end = std::min(s.n, (t + 1) * per);
    // Enough images at a time for 256 pixel pairs a tile: a tile's sums are stored once per
    // group, and a group's pairs stay in the core's caches across its 9 taps.
    const int group = std::max(1, 512 / (s.h * s.w));
    // Kept from call to call, as a training step would: fresh buffers each call fault in pages.
    static thread_local Pairs p;
    for (int i = t * per; i < end; i += group) {
      pair_images(s, x, gy, i, std::min(group, end - i), zeros.data(), p);
      // Registers: OV * CV sums (16), OV gradient vectors.
      if (s.o % 64 == 0) images_into<4, 4>(s, p, parts[t].data());
      else if (s.o % 32 == 0) images_into<2, 8>(s, p, parts[t].data());
      else images_into<1, 16>(s, p, parts[t].data());
    }
  }
  for (size_t k = 0; k < size; k++) {
    float v = 0;
    for (int t = 0; t < threads; t++) v += parts[t][k];
    gw[k] = v;
  }
}

double median_ms(const std::function<void()> &f, int reps) {
  for (int i = 0; i < 5; i++) f();
  std::vector<double> ms;
  for (int i = 0; i < reps; i++) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char **argv) {
  int threads = 2, rounds = 3, reps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int v = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = v;
    else if (!std::strcmp(argv[i], "--rounds")) rounds = v;
    else if (!std::strcmp(argv[i], "--reps")) reps = v;
    else {
      std::fprintf(stderr, "usage: weight_grad_bf16 [--threads N] [--rounds N] [--reps N]\n");
      return 2;
    }
  }
  if (threads < 1 || rounds < 1 || reps < 1) {
    std::fprintf(stderr, "weight_grad_bf16: --threads, --rounds and --reps want positive counts\n");
    return 2;
  }
  at::set_num_threads(threads);
  omp_set_num_threads(threads);
  std::printf("bf16 3x3 weight gradient, batch 128, %d thread(s): libtorch %s (oneDNN) against the prototype,\n"
              "alternating, %d rounds of %d calls each (medians)\n\n",
              threads, TORCH_VERSION, rounds, reps);
  std::printf("| shape | libtorch ms (by round) | prototype ms (by round) | prototype / libtorch, median (range) | "
              "prototype GFLOP/s | largest difference / largest value |\n|---|---|---|---|---|---|\n");
  const Shape shapes[] = {{128, 32, 32, 16, 16}, {128, 16, 16, 32, 32}, {128, 8, 8, 64, 64}};
  for (const Shape &s : shapes) {
    auto cl = at::MemoryFormat::ChannelsLast;
    auto x = at::randn({s.n, s.c, s.h, s.w}).to(at::kBFloat16).contiguous(cl);
    auto gy = at::randn({s.n, s.o, s.h, s.w}).to(at::kBFloat16).contiguous(cl);
    auto w = at::randn({s.o, s.c, 3, 3}).to(at::kBFloat16).contiguous(cl);
    auto libtorch = [&] {
      return std::get<1>(at::convolution_backward(gy, x, w, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                                  {false, true, false}));
    };
    std::vector<float> ours((size_t)s.o * 9 * s.c);
    auto prototype = [&] { weight_grad(s, (const u16 *)x.data_ptr(), (const u16 *)gy.data_ptr(), ours.data()); };

    // Checked before timing: libtorch's gradient (bf16, [o][kh][kw][c] in memory when channels-last).
    prototype();
    auto expected = libtorch().to(at::kFloat).contiguous(cl);
    const float *e = expected.data_ptr<float>();
    double worst = 0, largest = 0;
    for (size_t k = 0; k < ours.size(); k++) {
      worst = std::max(worst, (double)std::fabs(ours[k] - e[k]));
      largest = std::max(largest, (double)std::fabs(e[k]));
    }
    const double relative = worst / largest;
    if (!(relative < 2e-2)) {
      std::fprintf(stderr, "weight_grad_bf16: %d->%d differs from libtorch by %.3g of its largest value\n", s.c, s.o,
                   relative);
      return 1;
    }

    std::vector<double> lt, pr, ratio;
    for (int r = 0; r < rounds; r++) {
      lt.push_back(median_ms(libtorch, reps));
      pr.push_back(median_ms(prototype, reps));
      ratio.push_back(pr.back() / lt.back());
    }
    auto list = [](const std::vector<double> &v) {
      std::string out;
      char buf[32];
      for (double d : v) {
        std::snprintf(buf, sizeof buf, "%s%.2f", out.empty() ? "" : ", ", d);
        out += buf;
      }
      return out;
    };
    std::vector<double> sorted = ratio, fastest = pr;
    std::sort(sorted.begin(), sorted.end());
    std::sort(fastest.begin(), fastest.end());
    const double gflop = 2.0 * s.n * s.h * s.w * s.o * s.c * 9 / 1e9;
    std::printf("| %d->%d %dx%d | %s | %s | %.2f (%.2f-%.2f) | %.0f | %.1e |\n", s.c, s.o, s.h, s.w, list(lt).c_str(),
                list(pr).c_str(), sorted[sorted.size() / 2], sorted.front(), sorted.back(),
                gflop / (fastest[fastest.size() / 2] / 1e3), relative);
    std::fflush(stdout);
  }
}
