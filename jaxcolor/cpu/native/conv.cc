// Native CPU kernels for stride-1 size-preserving kh×kw convolutions (zero padding pt rows above,
// kh-1-pt below, pl columns left, kw-1-pl right: SAME for odd kernels with pt = kh/2, pl = kw/2),
// NHWC maps, HWIO kernels, f32, registered with XLA as FFI custom calls by
// jaxcolor/cpu/native.py:
// - JaxcolorConvWeightGrad: dW[a, b, ci, co] = Σ_{n,h,w} x[n, h+a-pt, w+b-pl, ci] · dy[n,h,w,co]
//   read straight from the forward pass's layout, and the bias gradient db = Σ_{n,h,w} dy. XLA:CPU
//   computes dW as an Eigen convolution that needs x and dy transposed batch-minor first (two
//   full copies per layer) and db as a separate tree reduction (BENCHMARKS.md).
// - JaxcolorConv: y = conv(x, K) + b; also the input gradient (conv of dy with the flipped
//   kernel and padding kh-1-pt, kw-1-pl, b = 0).
// Both use register tiles of vector accumulators and split images over XLA's intra-op thread
// pool. The same source builds for AVX-512F (-mavx512f -mfma: 32 registers of 16 floats) and
// for AVX2 with FMA (-mavx2 -mfma: 16 registers of 8 floats); the vector layer below is the
// only difference.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// The vector layer: Lanes<V> loads, stores and multiplies vectors V of Lanes<V>::kCount floats;
// a Mask selects the first lanes of one. Vec is the widest vector the build targets. Register
// tiles: kRows input channels (weight gradient) or kPixels output pixels (convolution) × up to
// two vectors of output channels, so that the accumulators, two loaded vectors and a broadcast
// fit the register file (AVX-512: 16 + 3 of 32; AVX2: 12 + 3 of 16). A tile's last vector is a
// Narrow one where the output channels left fill it (AVX-512: 24 channels as 16 + 8 lanes):
// AMD's Zen 4 runs a 512-bit multiply-add as two 256-bit halves, masked lanes included, so a
// 24-channel layer takes 3/4 of the multiply-adds (forward 7.6 → 6.2 ms for 32×32, 25 → 24
// channels, batch 100: `python benchmarks/conv_layers.py`, BENCHMARKS.md).
template <class V>
struct Lanes;

// 256-bit vectors: the AVX2 build's Vec, the AVX-512 build's Narrow.
template <>
struct Lanes<__m256> {
  using Mask = __m256i;
  static constexpr int kCount = 8;
  static Mask first(int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // Plain loads and stores where every lane is selected: AMD's masked stores are microcoded.
  static bool all(Mask m) { return _mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xFF; }
  static __m256 load_masked(const float* p, Mask m) {
    return all(m) ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
  }
  static void store_masked(float* p, Mask m, __m256 v) {
    if (all(m)) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, m, v);
    }
  }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load_aligned(const float* p) { return _mm256_load_ps(p); }
  static void store_aligned(float* p, __m256 v) { _mm256_store_ps(p, v); }
  static __m256 broadcast(float a) { return _mm256_set1_ps(a); }
  static __m256 fmadd(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
};

#if defined(__AVX512F__)
template <>
struct Lanes<__m512> {
  using Mask = __mmask16;
  static constexpr int kCount = 16;
  static Mask first(int64_t count) { return static_cast<Mask>((1u << count) - 1); }
  static __m512 load_masked(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_masked(float* p, Mask m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_aligned(const float* p) { return _mm512_load_ps(p); }
  static void store_aligned(float* p, __m512 v) { _mm512_store_ps(p, v); }
  static __m512 broadcast(float a) { return _mm512_set1_ps(a); }
  static __m512 fmadd(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
};
using Vec = __m512;
using Narrow = __m256;
constexpr int kRows = 8;
constexpr int kPixels = 8;
constexpr bool kWideBlocks = false;  // see the AVX2 build
constexpr int kWideTile = 0;
// A broadcast as a Last vector: itself, or its lower half (no instruction).
template <class Last>
inline Last narrow(__m512 v) {
  if constexpr (std::is_same_v<Last, __m512>) {
    return v;
  } else {
    return _mm512_castps512_ps256(v);
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
using Narrow = __m256;  // no narrower tail worth it
constexpr int kRows = 6;
constexpr int kPixels = 6;
// Output channels in blocks of three vectors where they divide into them (24, 48, 96), with
// tiles of kWideTile rows or pixels: 12 accumulators, where blocks of 16 + 8 leave the 8-channel
// tile only 6, too few to cover the multiply-add's latency (the AVX2 UNet train step went from
// 1.19× to 1.38× PyTorch channels-last: BENCHMARKS.md, "Train steps with the AVX2 kernels").
constexpr bool kWideBlocks = true;
constexpr int kWideTile = 4;
template <class Last>
inline Last narrow(__m256 v) { return v; }
#else
#error "build with -mavx512f -mfma or -mavx2 -mfma"
#endif

using V = Lanes<Vec>;
constexpr int kLanes = V::kCount;

constexpr int64_t kWeightGradParts = 8;  // partial weight gradients (see ConvWeightGradImpl)

struct Shape {
  int64_t n, h, w, ci, co, kh, kw, pt, pl;  // kernel kh×kw; padding pt above, pl left
};

// The output-channel vectors of one register-tile row: FULL (0 to 2) whole Vec vectors, then a
// Last vector whose first lanes (a mask) are used.
template <int FULL, class Last>
struct Group {
  using L = Lanes<Last>;
  using Mask = typename L::Mask;
  Vec full[FULL > 0 ? FULL : 1];
  Last last;

  __attribute__((always_inline)) static Group load(const float* p, Mask m) {
    Group g;
#pragma GCC unroll 2
    for (int j = 0; j < FULL; ++j) g.full[j] = V::load(p + kLanes * j);
    g.last = L::load_masked(p + kLanes * FULL, m);
    return g;
  }
  // From / to a scratch row of (FULL + 1)·kLanes floats, 64-byte aligned.
  __attribute__((always_inline)) static Group load_aligned(const float* p) {
    Group g;
#pragma GCC unroll 2
    for (int j = 0; j < FULL; ++j) g.full[j] = V::load_aligned(p + kLanes * j);
    g.last = L::load_aligned(p + kLanes * FULL);
    return g;
  }
  __attribute__((always_inline)) void store_aligned(float* p) const {
#pragma GCC unroll 2
    for (int j = 0; j < FULL; ++j) V::store_aligned(p + kLanes * j, full[j]);
    L::store_aligned(p + kLanes * FULL, last);
  }
  __attribute__((always_inline)) void store(float* p, Mask m) const {
#pragma GCC unroll 2
    for (int j = 0; j < FULL; ++j) V::store_masked(p + kLanes * j, V::first(kLanes), full[j]);
    L::store_masked(p + kLanes * FULL, m, last);
  }
  // this += a · g for a scalar a.
  __attribute__((always_inline)) void multiply_add(float a, const Group& g) {
    const Vec scalar = V::broadcast(a);
#pragma GCC unroll 2
    for (int j = 0; j < FULL; ++j) full[j] = V::fmadd(scalar, g.full[j], full[j]);
    last = L::fmadd(narrow<Last>(scalar), g.last, last);
  }
  // p[...] += this (the used lanes).
  __attribute__((always_inline)) void add_to(float* p, Mask m) const {
#pragma GCC unroll 2
    for (int j = 0; j < FULL; ++j) V::store_masked(p + kLanes * j, V::first(kLanes),
                                                   V::add(V::load(p + kLanes * j), full[j]));
    L::store_masked(p + kLanes * FULL, m, L::add(L::load_masked(p + kLanes * FULL, m), last));
  }
};

// A block of output channels and the rows or pixels of its register tiles: three vectors where
// kWideBlocks and they divide the channels, else two (the last block may be narrower).
struct Blocking {
  int64_t width;
  int tile;
};
Blocking blocking(int64_t co, int tile) {
  if constexpr (kWideBlocks) {
    if (co % (3 * kLanes) == 0) return {3 * kLanes, kWideTile};
  }
  return {2 * kLanes, tile};
}
template <int FULL, int TILE>
constexpr int kTileOf = FULL == 2 ? kWideTile : TILE;
// A partial tile (rows or pixels short of a whole one: the first layer's one input channel, 25
// channels, AVX2's 32-pixel rows) runs as tiles of 4, 2 and 1: 3 instances per vector width
// instead of kTile - 1, a faster first build (which a cold start waits for).

// Runs Body<FULL, Last>::run(mask, args...) with the vectors that cover `width` (1 to
// 2·kLanes, or 3·kLanes with kWideBlocks) output channels: a Narrow last vector where the
// channels left fill one exactly (a partly used one would need AVX2's masked loads and stores,
// slower than AVX-512's masks) and the tile is whole (kRows or kPixels: fewer Narrow instances,
// a faster first build).
template <template <int, class> class Body, class... Args>
void for_width(int64_t width, bool whole_tile, Args... args) {
  if constexpr (kWideBlocks) {
    if (width == 3 * kLanes) return Body<2, Vec>::run(V::first(kLanes), args...);
  }
  const int64_t tail = width > kLanes ? width - kLanes : width;
  const bool narrow_tail = !std::is_same_v<Narrow, Vec> && whole_tile &&
                           tail == Lanes<Narrow>::kCount;
  if (width > kLanes) {
    if (narrow_tail) {
      Body<1, Narrow>::run(Lanes<Narrow>::first(tail), args...);
    } else {
      Body<1, Vec>::run(V::first(tail), args...);
    }
  } else if (narrow_tail) {
    Body<0, Narrow>::run(Lanes<Narrow>::first(tail), args...);
  } else {
    Body<0, Vec>::run(V::first(tail), args...);
  }
}

// Adds the tile (kh, kw, channels c0..c0+ROWS, outputs o0.. (FULL + 1 vectors)) of images
// [n0, n1) into out. Accumulators live in registers over one image row and in `sums` between
// rows (GCC keeps them in memory if they live across the row loop).
template <int ROWS, int FULL, class Last>
void tile(const float* x, const float* dy, const Shape& s, int64_t n0, int64_t n1, int kh,
          int kw, int64_t c0, int64_t o0, typename Lanes<Last>::Mask last_mask, float* out) {
  using G = Group<FULL, Last>;
  alignas(64) float sums[ROWS][FULL + 1][kLanes] = {};
  const int64_t co = s.co, ci = s.ci;
  const int64_t w_lo = std::max<int64_t>(0, s.pl - kw);
  const int64_t w_hi = std::min<int64_t>(s.w, s.w + s.pl - kw);
  const int64_t h_lo = std::max<int64_t>(0, s.pt - kh);
  const int64_t h_hi = std::min<int64_t>(s.h, s.h + s.pt - kh);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t h = h_lo; h < h_hi; ++h) {
      const float* dyp = dy + ((n * s.h + h) * s.w + w_lo) * co + o0;
      const float* xp = x + ((n * s.h + h + kh - s.pt) * s.w + w_lo + kw - s.pl) * ci + c0;
      G acc[ROWS];
#pragma GCC unroll 8
      for (int i = 0; i < ROWS; ++i) acc[i] = G::load_aligned(sums[i][0]);
      for (int64_t w = w_lo; w < w_hi; ++w, dyp += co, xp += ci) {
        const G g = G::load(dyp, last_mask);
#pragma GCC unroll 8
        for (int i = 0; i < ROWS; ++i) acc[i].multiply_add(xp[i], g);
      }
#pragma GCC unroll 8
      for (int i = 0; i < ROWS; ++i) acc[i].store_aligned(sums[i][0]);
    }
  }
  float* o = out + ((kh * s.kw + kw) * s.ci + c0) * s.co + o0;
  for (int i = 0; i < ROWS; ++i) G::load_aligned(sums[i][0]).add_to(o + i * s.co, last_mask);
}

// tile<rows, FULL, Last> for a run-time rows in 1..kRows (kWideTile for three vectors; the last
// channel block may be narrower): a whole tile, or tiles of 4, 2 and 1 rows (see kTileOf).
template <int FULL, class Last>
struct WeightGradTile {
  static void run(typename Lanes<Last>::Mask mask, int rows, const float* x, const float* dy,
                  const Shape* s, int64_t n0, int64_t n1, int kh, int kw, int64_t c0,
                  int64_t o0, float* out) {
    constexpr int kTile = kTileOf<FULL, kRows>;
    if (rows == kTile) return tile<kTile, FULL, Last>(x, dy, *s, n0, n1, kh, kw, c0, o0, mask,
                                                      out);
    if constexpr (std::is_same_v<Last, Vec>) {  // Narrow tails: whole tiles only
      if (rows & 4) tile<4, FULL, Last>(x, dy, *s, n0, n1, kh, kw, c0, o0, mask, out), c0 += 4;
      if (rows & 2) tile<2, FULL, Last>(x, dy, *s, n0, n1, kh, kw, c0, o0, mask, out), c0 += 2;
      if (rows & 1) tile<1, FULL, Last>(x, dy, *s, n0, n1, kh, kw, c0, o0, mask, out);
    }
  }
};

// Adds the weight gradient of images [n0, n1) into out (kh·kw·ci·co floats) and the bias
// gradient (Σ dy per output channel) into out_bias (co floats), while the chunk is in cache.
void accumulate(const float* x, const float* dy, const Shape& s, int64_t n0, int64_t n1,
                float* out, float* out_bias) {
  const auto [block, tile] = blocking(s.co, kRows);
  for (int kh = 0; kh < s.kh; ++kh)
    for (int kw = 0; kw < s.kw; ++kw)
      for (int64_t o0 = 0; o0 < s.co; o0 += block)
        for (int64_t c0 = 0; c0 < s.ci; c0 += tile) {
          const int rows = static_cast<int>(std::min<int64_t>(tile, s.ci - c0));
          for_width<WeightGradTile>(std::min<int64_t>(block, s.co - o0), rows == tile,
                                    rows, x, dy, &s, n0, n1, kh, kw, c0, o0, out);
        }
  for (int64_t o0 = 0; o0 < s.co; o0 += kLanes) {
    const V::Mask mask = V::first(std::min<int64_t>(kLanes, s.co - o0));
    Vec sum = V::load_masked(out_bias + o0, mask);
    for (const float* p = dy + n0 * s.h * s.w * s.co + o0, *end = dy + n1 * s.h * s.w * s.co;
         p < end; p += s.co)
      sum = V::add(sum, V::load_masked(p, mask));
    V::store_masked(out_bias + o0, mask, sum);
  }
}

// Runs body(c, n0, n1) for the chunks c of images [n0, n1) = [c·chunk, (c+1)·chunk) ∩ [0, n), on
// the calling thread and on tasks of XLA's intra-op pool. A task that starts after all chunks
// are taken returns at once, so the caller never waits for a task that has not started (no
// deadlock when the pool is busy with other work); shared ownership keeps the counters alive
// for such late tasks.
template <typename Body>
void parallel_images(ffi::ThreadPool& pool, int workers, int64_t n, int64_t chunk, Body body) {
  struct State {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto state = std::make_shared<State>();
  const int64_t chunks = (n + chunk - 1) / chunk;
  auto run = [state, chunks, chunk, n, body] {
    for (int64_t c; (c = state->next.fetch_add(1)) < chunks;) {
      body(c, c * chunk, std::min(n, (c + 1) * chunk));
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int i = 1; i < workers; ++i) pool.Schedule(decltype(run)(run));
  run();
  while (state->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
}

// Pool threads worth using for `chunks` chunks (at least the caller).
int worker_count(ffi::ThreadPool& pool, int64_t chunks) {
  return static_cast<int>(std::clamp<int64_t>(pool.num_threads(), 1, std::max<int64_t>(1, chunks)));
}

// Whether padding (pt, pl) lies inside a kh×kw kernel, so that every output pixel reads its own
// input pixel's neighbourhood (the only layout both kernels handle).
bool padding_fits(int64_t kh, int64_t kw, int64_t pt, int64_t pl) {
  return kh >= 1 && kw >= 1 && pt >= 0 && pt < kh && pl >= 0 && pl < kw;
}

ffi::Error ConvWeightGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                              ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dw,
                              ffi::ResultBuffer<ffi::F32> db, int64_t pad_top,
                              int64_t pad_left) {
  const auto xd = x.dimensions(), gd = dy.dimensions(), wd = dw->dimensions();
  if (xd.size() != 4 || gd.size() != 4 || wd.size() != 4 || xd[0] != gd[0] ||
      xd[1] != gd[1] || xd[2] != gd[2] || !padding_fits(wd[0], wd[1], pad_top, pad_left) ||
      wd[2] != xd[3] || wd[3] != gd[3] || db->element_count() != gd[3]) {
    return ffi::Error::InvalidArgument(
        "conv_weight_grad: expected x (N,H,W,Ci), dy (N,H,W,Co), dw (kh,kw,Ci,Co), "
        "db (Co), 0 <= pad_top < kh, 0 <= pad_left < kw");
  }
  const Shape s{xd[0], xd[1], xd[2], xd[3], gd[3], wd[0], wd[1], pad_top, pad_left};
  // Each part's partial: the weight gradient, then the bias gradient.
  const int64_t weights = s.kh * s.kw * s.ci * s.co, size = weights + s.co;
  // About 256 KiB of x and dy per chunk (one 32×32 image, several small ones): L2-resident
  // while every tile of the chunk streams it.
  const int64_t image_bytes = std::max<int64_t>(1, s.h * s.w * (s.ci + s.co) * 4);
  const int64_t chunk = std::max<int64_t>(1, (int64_t{256} << 10) / image_bytes);
  // A fixed number of parts (contiguous runs of chunks), each summed into its own partial
  // gradient, the partials added in order: the result does not depend on which thread ran
  // which part, nor on the number of threads (bit-for-bit reproducible runs).
  const int64_t parts = std::clamp<int64_t>((s.n + chunk - 1) / chunk, 1, kWeightGradParts);
  const int64_t per_part = std::max<int64_t>(1, (s.n + parts - 1) / parts);
  const int64_t used_parts = (s.n + per_part - 1) / per_part;
  float* out = dw->typed_data();
  float* out_bias = db->typed_data();
  if (used_parts == 0) {  // no images
    std::fill(out, out + weights, 0.0f);
    std::fill(out_bias, out_bias + s.co, 0.0f);
    return ffi::Error::Success();
  }
  std::unique_ptr<float[]> partial(new float[used_parts * size]);  // zeroed by each part
  const float* xp = x.typed_data();
  const float* dyp = dy.typed_data();
  float* partials = partial.get();
  parallel_images(pool, worker_count(pool, parts), s.n, per_part,
                  [=](int64_t part, int64_t n0, int64_t n1) {
                    float* out = partials + part * size;
                    std::fill(out, out + size, 0.0f);
                    for (int64_t m = n0; m < n1; m += chunk)
                      accumulate(xp, dyp, s, m, std::min(n1, m + chunk), out, out + weights);
                  });
  for (int64_t part = 1; part < used_parts; ++part)
    for (int64_t i = 0; i < size; ++i) partials[i] += partials[part * size + i];
  std::memcpy(out, partials, weights * sizeof(float));
  std::memcpy(out_bias, partials + weights, s.co * sizeof(float));
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------------------------
// Forward convolution y[n,h,w,co] = Σ x[n, h+a-pt, w+b-pl, ci] · K[a, b, ci, co] (also the
// input gradient: the convolution of dy with the flipped, transposed kernel). Register tile:
// kPixels output pixels of a row × 2·kLanes output channels; each image is first copied into a
// zero-padded scratch map so that the tile loop has no bounds checks.

template <int PIXELS, int FULL, class Last>
void conv_tile(const float* xpad, int64_t pw, const float* kernel, const float* bias,
               const Shape& s, int64_t h, int64_t w0, int64_t o0,
               typename Lanes<Last>::Mask last_mask, float* y) {
  using G = Group<FULL, Last>;
  const int64_t ci = s.ci, co = s.co;
  const G start = G::load(bias + o0, last_mask);
  G acc[PIXELS];
#pragma GCC unroll 8
  for (int p = 0; p < PIXELS; ++p) acc[p] = start;
  for (int64_t kh = 0; kh < s.kh; ++kh) {
    for (int64_t kw = 0; kw < s.kw; ++kw) {
      const float* xp = xpad + ((h + kh) * pw + w0 + kw) * ci;
      const float* kp = kernel + (kh * s.kw + kw) * ci * co + o0;
      for (int64_t c = 0; c < ci; ++c, kp += co) {
        const G g = G::load(kp, last_mask);
#pragma GCC unroll 8
        for (int p = 0; p < PIXELS; ++p) acc[p].multiply_add(xp[c + p * ci], g);
      }
    }
  }
  float* yp = y + w0 * co + o0;
#pragma GCC unroll 8
  for (int p = 0; p < PIXELS; ++p) acc[p].store(yp + p * co, last_mask);
}

// conv_tile<pixels, FULL, Last> for a run-time pixels in 1..kPixels (kWideTile for three
// vectors; a row's last tile may be narrower): a whole tile, or tiles of 4, 2 and 1 pixels.
template <int FULL, class Last>
struct ConvTile {
  static void run(typename Lanes<Last>::Mask mask, int pixels, const float* xpad, int64_t pw,
                  const float* kernel, const float* bias, const Shape* s, int64_t h,
                  int64_t w0, int64_t o0, float* y) {
    constexpr int kTile = kTileOf<FULL, kPixels>;
    if (pixels == kTile) return conv_tile<kTile, FULL, Last>(xpad, pw, kernel, bias, *s, h, w0,
                                                             o0, mask, y);
    if constexpr (std::is_same_v<Last, Vec>) {  // Narrow tails: whole tiles only
      if (pixels & 4) conv_tile<4, FULL, Last>(xpad, pw, kernel, bias, *s, h, w0, o0, mask, y),
          w0 += 4;
      if (pixels & 2) conv_tile<2, FULL, Last>(xpad, pw, kernel, bias, *s, h, w0, o0, mask, y),
          w0 += 2;
      if (pixels & 1) conv_tile<1, FULL, Last>(xpad, pw, kernel, bias, *s, h, w0, o0, mask, y);
    }
  }
};

// y for images [n0, n1).
void convolve(const float* x, const float* kernel, const float* bias, const Shape& s,
              int64_t n0, int64_t n1, float* y) {
  const int64_t pw = s.w + s.kw - 1, ph = s.h + s.kh - 1;
  const auto [block, tile] = blocking(s.co, kPixels);
  thread_local std::vector<float> xpad;
  xpad.assign(ph * pw * s.ci, 0.0f);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t h = 0; h < s.h; ++h)
      std::memcpy(&xpad[((h + s.pt) * pw + s.pl) * s.ci], x + (n * s.h + h) * s.w * s.ci,
                  s.w * s.ci * sizeof(float));
    for (int64_t h = 0; h < s.h; ++h) {
      float* yrow = y + (n * s.h + h) * s.w * s.co;
      for (int64_t o0 = 0; o0 < s.co; o0 += block)
        for (int64_t w0 = 0; w0 < s.w; w0 += tile) {
          const int pixels = static_cast<int>(std::min<int64_t>(tile, s.w - w0));
          for_width<ConvTile>(std::min<int64_t>(block, s.co - o0), pixels == tile,
                              pixels, xpad.data(), static_cast<int64_t>(pw), kernel, bias, &s,
                              h, w0, o0, yrow);
        }
    }
  }
}

ffi::Error ConvImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                    ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> y, int64_t pad_top,
                    int64_t pad_left) {
  const auto xd = x.dimensions(), kd = kernel.dimensions(), yd = y->dimensions();
  if (xd.size() != 4 || kd.size() != 4 || yd.size() != 4 ||
      !padding_fits(kd[0], kd[1], pad_top, pad_left) || kd[2] != xd[3] || yd[0] != xd[0] ||
      yd[1] != xd[1] || yd[2] != xd[2] || yd[3] != kd[3] || bias.element_count() != kd[3]) {
    return ffi::Error::InvalidArgument(
        "conv: expected x (N,H,W,Ci), kernel (kh,kw,Ci,Co), bias (Co), y (N,H,W,Co), "
        "0 <= pad_top < kh, 0 <= pad_left < kw");
  }
  const Shape s{xd[0], xd[1], xd[2], xd[3], kd[3], kd[0], kd[1], pad_top, pad_left};
  const float* xp = x.typed_data();
  const float* kp = kernel.typed_data();
  const float* bp = bias.typed_data();
  float* yp = y->typed_data();
  parallel_images(pool, worker_count(pool, s.n), s.n, 1, [=](int64_t, int64_t n0, int64_t n1) {
    convolve(xp, kp, bp, s, n0, n1, yp);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConvWeightGrad, ConvWeightGradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConv, ConvImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));
