// Native CPU kernels for kh×kw convolutions of NHWC maps with HWIO kernels, f32, registered
// with XLA as FFI custom calls by jaxcolor/cpu/native.py. Zero padding pt rows above and pl
// columns left of each image, inside the kernel (0 <= pt < kh, 0 <= pl < kw). Stride s is 1
// (the output keeps the size: SAME for odd kernels with pt = kh/2, pl = kw/2) or 2 (even sizes
// halved: PyTorch's Conv2d(stride=2, padding=pt)).
// - JaxcolorConv: y[n,i,j] = b + Σ_{a,b} x[n, s·i+a-pt, s·j+b-pl] · K[a,b]; also the input
//   gradient of a stride-1 convolution (the convolution of dy with the flipped kernel and
//   padding kh-1-pt, kw-1-pl, b = 0) and of a transposed one (dy with the kernel's channels
//   swapped, stride 2).
// - JaxcolorConvTranspose: PyTorch's ConvTranspose2d(stride=2, padding=pt, output_padding such
//   that sizes double): input pixel i adds x[i]·K[t] to output pixel 2i-pt+t. Each output pixel
//   phase (row, column parity) is a stride-1 convolution of x with the taps that reach it, written
//   straight into its interleaved place. Also the input gradient of a stride-2 convolution.
// - JaxcolorConvWeightGrad: dW[a,b,ci,co] = Σ_{n,h,w} x[n, s·h+a-pt, s·w+b-pl, ci] · dy[n,h,w,co]
//   read straight from the forward pass's layout, and channel sums (the bias gradient) of dy, or
//   of x for a transposed convolution's weight gradient (the same sum with x and dy swapped).
//   XLA:CPU computes dW as an Eigen convolution that needs x and dy transposed batch-minor first
//   (two full copies per layer) and db as a separate tree reduction (BENCHMARKS.md).
// - JaxcolorChannelMoments: BatchNorm's per-channel sums [Σ a, Σ a·(b − m)] in one pass.
// Reading the strided and interleaved layouts in place spares the copies that splitting maps
// into pixel phases for stride-1 kernels costs (BENCHMARKS.md, "Where a step's time goes").
// All use register tiles of vector accumulators and split images over XLA's intra-op thread
// pool. The same source builds for AVX-512F (-mavx512f -mfma: 32 registers of 16 floats) and
// for AVX2 with FMA (-mavx2 -mfma: 16 registers of 8 floats); the vector layer below is the
// only difference.
#include <immintrin.h>

// Vector types serve as template arguments (tags that choose a lane count); the alignment
// attributes GCC drops from them there do not matter.
#pragma GCC diagnostic ignored "-Wignored-attributes"

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
  static __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
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
  static __m512 sub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
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
    // The lower half (no instruction); GCC's _mm512_castps512_ps256 draws a false
    // maybe-uninitialized warning from its own header.
    return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
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

constexpr int64_t kParts = 8;  // partial sums over images (see sum_over_images)

// n images of h×w grid pixels (the strided operand: stride·h × stride·w pixels), ci and co
// channels, a kh×kw kernel, padding pt above and pl left.
struct Shape {
  int64_t n, h, w, ci, co, kh, kw, pt, pl, stride;
};

// ⌊a / b⌋ and ⌈a / b⌉ for b > 0 and any sign of a.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

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
  const int64_t co = s.co, ci = s.ci, st = s.stride, xh = st * s.h, xw = st * s.w;
  // Grid pixels whose tap (kh, kw) reads inside x: 0 <= st·h + kh - pt < xh.
  const int64_t w_lo = std::max<int64_t>(0, ceil_div(s.pl - kw, st));
  const int64_t w_hi = std::min<int64_t>(s.w, floor_div(xw - 1 + s.pl - kw, st) + 1);
  const int64_t h_lo = std::max<int64_t>(0, ceil_div(s.pt - kh, st));
  const int64_t h_hi = std::min<int64_t>(s.h, floor_div(xh - 1 + s.pt - kh, st) + 1);
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t h = h_lo; h < h_hi; ++h) {
      const float* dyp = dy + ((n * s.h + h) * s.w + w_lo) * co + o0;
      const float* xp = x + ((n * xh + st * h + kh - s.pt) * xw + st * w_lo + kw - s.pl) * ci + c0;
      G acc[ROWS];
#pragma GCC unroll 8
      for (int i = 0; i < ROWS; ++i) acc[i] = G::load_aligned(sums[i][0]);
      for (int64_t w = w_lo; w < w_hi; ++w, dyp += co, xp += st * ci) {
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

// Adds the channel sums of `pixels` pixels of `channels` channels at p into out.
void add_channel_sums(const float* p, int64_t pixels, int64_t channels, float* out) {
  for (int64_t o0 = 0; o0 < channels; o0 += kLanes) {
    const V::Mask mask = V::first(std::min<int64_t>(kLanes, channels - o0));
    Vec sum = V::load_masked(out + o0, mask);
    for (const float* q = p + o0, *end = p + pixels * channels; q < end; q += channels)
      sum = V::add(sum, V::load_masked(q, mask));
    V::store_masked(out + o0, mask, sum);
  }
}

// Adds the weight gradient of images [n0, n1) into out (kh·kw·ci·co floats) and the channel
// sums of dy (co floats), or of x (ci floats) where sums_of_x, into out_sums, while the chunk
// is in cache.
void accumulate(const float* x, const float* dy, const Shape& s, bool sums_of_x, int64_t n0,
                int64_t n1, float* out, float* out_sums) {
  const auto [block, tile] = blocking(s.co, kRows);
  for (int kh = 0; kh < s.kh; ++kh)
    for (int kw = 0; kw < s.kw; ++kw)
      for (int64_t o0 = 0; o0 < s.co; o0 += block)
        for (int64_t c0 = 0; c0 < s.ci; c0 += tile) {
          const int rows = static_cast<int>(std::min<int64_t>(tile, s.ci - c0));
          for_width<WeightGradTile>(std::min<int64_t>(block, s.co - o0), rows == tile,
                                    rows, x, dy, &s, n0, n1, kh, kw, c0, o0, out);
        }
  const int64_t grid = s.h * s.w, strided = grid * s.stride * s.stride;
  if (sums_of_x) {
    add_channel_sums(x + n0 * strided * s.ci, (n1 - n0) * strided, s.ci, out_sums);
  } else {
    add_channel_sums(dy + n0 * grid * s.co, (n1 - n0) * grid, s.co, out_sums);
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

// Sets out (size floats) to the sum over images [0, n) of what body(n0, n1, partial) adds into
// a partial for chunks [n0, n1) of at most `chunk` images. A fixed number of parts (contiguous
// runs of chunks), each summed into its own partial on the pool, the partials added in order:
// the result does not depend on which thread ran which part, nor on the number of threads
// (bit-for-bit reproducible runs).
template <typename Body>
void sum_over_images(ffi::ThreadPool& pool, int64_t n, int64_t chunk, int64_t size, float* out,
                     Body body) {
  const int64_t parts = std::clamp<int64_t>((n + chunk - 1) / chunk, 1, kParts);
  const int64_t per_part = std::max<int64_t>(1, (n + parts - 1) / parts);
  const int64_t used_parts = (n + per_part - 1) / per_part;
  std::fill(out, out + size, 0.0f);
  if (used_parts == 0) return;  // no images
  std::unique_ptr<float[]> partial(new float[used_parts * size]);  // zeroed by each part
  float* partials = partial.get();
  parallel_images(pool, worker_count(pool, used_parts), n, per_part,
                  [=](int64_t part, int64_t n0, int64_t n1) {
                    float* sum = partials + part * size;
                    std::fill(sum, sum + size, 0.0f);
                    for (int64_t m = n0; m < n1; m += chunk) body(m, std::min(n1, m + chunk), sum);
                  });
  for (int64_t part = 0; part < used_parts; ++part)
    for (int64_t i = 0; i < size; ++i) out[i] += partials[part * size + i];
}

// Whether padding (pt, pl) lies inside a kh×kw kernel, so that every output pixel reads its own
// input pixel's neighbourhood (the only layout both kernels handle).
bool padding_fits(int64_t kh, int64_t kw, int64_t pt, int64_t pl) {
  return kh >= 1 && kw >= 1 && pt >= 0 && pt < kh && pl >= 0 && pl < kw;
}

// Whether stride is one the kernels take.
bool stride_fits(int64_t stride) { return stride == 1 || stride == 2; }

// ---------------------------------------------------------------------------------------------
// Channel moments for BatchNorm: [Σ a, Σ a·(b − m)] per channel over every pixel of NHWC maps a
// and b (m per channel) in one pass: the batch statistics (a = b = x, m = 0: Σ x, Σ x²) and the
// backward pass's sums (a = dy, b = x, m = the mean). XLA:CPU's sums need a·(b − m) written out
// first, then one pass per sum.

// Adds one image's moments (pixels × c) into out (2·c floats): fresh accumulators per image,
// two per vector (even and odd pixels), so that no sum runs over more than half an image.
void add_moments(const float* a, const float* b, const float* m, int64_t pixels, int64_t c,
                 float* out) {
  for (int64_t o0 = 0; o0 < c; o0 += kLanes) {
    const V::Mask mask = V::first(std::min<int64_t>(kLanes, c - o0));
    const Vec shift = V::load_masked(m + o0, mask);
    Vec sums[2] = {V::broadcast(0.0f), V::broadcast(0.0f)};
    Vec products[2] = {V::broadcast(0.0f), V::broadcast(0.0f)};
    for (int64_t p = 0; p < pixels; ++p) {
      const Vec va = V::load_masked(a + p * c + o0, mask);
      const Vec vb = V::load_masked(b + p * c + o0, mask);
      sums[p & 1] = V::add(sums[p & 1], va);
      products[p & 1] = V::fmadd(va, V::sub(vb, shift), products[p & 1]);
    }
    V::store_masked(out + o0, mask,
                    V::add(V::load_masked(out + o0, mask), V::add(sums[0], sums[1])));
    V::store_masked(out + c + o0, mask, V::add(V::load_masked(out + c + o0, mask),
                                               V::add(products[0], products[1])));
  }
}

// ---------------------------------------------------------------------------------------------
// Forward convolutions (also the input gradients). Register tile: kPixels output pixels of a row
// × 2·kLanes output channels; each image is first copied into a zero-padded scratch map so that
// the tile loop has no bounds checks, and a tile reads the taps of a Taps list from it.

// One kernel tap of an output pixel: offsets (floats) into the padded map from the pixel's
// read position, and into the kernel.
struct Tap {
  int64_t x, k;
};
using Taps = std::vector<Tap>;

// y[p·y_step + o0..] = bias + Σ_taps Σ_c x[tap.x + p·x_step + c] · kernel[tap.k + c·co + o0..]
// for the tile's pixels p.
template <int PIXELS, int FULL, class Last>
void conv_tile(const float* x, int64_t x_step, const Taps& taps, const float* kernel,
               const float* bias, int64_t ci, int64_t co, int64_t o0,
               typename Lanes<Last>::Mask last_mask, float* y, int64_t y_step) {
  using G = Group<FULL, Last>;
  const G start = G::load(bias + o0, last_mask);
  G acc[PIXELS];
#pragma GCC unroll 8
  for (int p = 0; p < PIXELS; ++p) acc[p] = start;
  for (const Tap& tap : taps) {
    const float* xp = x + tap.x;
    const float* kp = kernel + tap.k + o0;
    for (int64_t c = 0; c < ci; ++c, kp += co) {
      const G g = G::load(kp, last_mask);
#pragma GCC unroll 8
      for (int p = 0; p < PIXELS; ++p) acc[p].multiply_add(xp[c + p * x_step], g);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < PIXELS; ++p) acc[p].store(y + p * y_step + o0, last_mask);
}

// conv_tile<pixels, FULL, Last> for a run-time pixels in 1..kPixels (kWideTile for three
// vectors; a row's last tile may be narrower): a whole tile, or tiles of 4, 2 and 1 pixels.
template <int FULL, class Last>
struct ConvTile {
  static void run(typename Lanes<Last>::Mask mask, int pixels, const float* x, int64_t x_step,
                  const Taps* taps, const float* kernel, const float* bias, int64_t ci,
                  int64_t co, int64_t o0, float* y, int64_t y_step) {
    constexpr int kTile = kTileOf<FULL, kPixels>;
    if (pixels == kTile) return conv_tile<kTile, FULL, Last>(x, x_step, *taps, kernel, bias, ci,
                                                             co, o0, mask, y, y_step);
    if constexpr (std::is_same_v<Last, Vec>) {  // Narrow tails: whole tiles only
      if (pixels & 4) conv_tile<4, FULL, Last>(x, x_step, *taps, kernel, bias, ci, co, o0, mask,
                                               y, y_step),
          x += 4 * x_step, y += 4 * y_step;
      if (pixels & 2) conv_tile<2, FULL, Last>(x, x_step, *taps, kernel, bias, ci, co, o0, mask,
                                               y, y_step),
          x += 2 * x_step, y += 2 * y_step;
      if (pixels & 1) conv_tile<1, FULL, Last>(x, x_step, *taps, kernel, bias, ci, co, o0, mask,
                                               y, y_step);
    }
  }
};

// One row of `width` output pixels: pixel j reads from x + j·x_step and is stored at
// y + j·y_step.
void conv_row(const float* x, int64_t x_step, const Taps& taps, const float* kernel,
              const float* bias, int64_t ci, int64_t co, int64_t width, float* y,
              int64_t y_step) {
  const auto [block, tile] = blocking(co, kPixels);
  for (int64_t o0 = 0; o0 < co; o0 += block)
    for (int64_t w0 = 0; w0 < width; w0 += tile) {
      const int pixels = static_cast<int>(std::min<int64_t>(tile, width - w0));
      for_width<ConvTile>(std::min<int64_t>(block, co - o0), pixels == tile, pixels,
                          x + w0 * x_step, x_step, &taps, kernel, bias, ci, co, o0,
                          y + w0 * y_step, y_step);
    }
}

// Channels as the forward kernels read them: float32 ones one by one, bfloat16 ones in pairs
// (a map's channels padded to even, the kernel's packed in pairs: see the bfloat16 section).
template <class T>
constexpr int64_t kPack = std::is_same_v<T, float> ? 1 : 2;
template <class T>
int64_t packed_channels(int64_t c) {
  return (c + kPack<T> - 1) / kPack<T> * kPack<T>;
}

// Copies image n of x (h×w pixels of ci channels) into the scratch map xpad (pw pixels wide of
// cp >= ci channels, zero where nothing is copied) at row top, column left.
template <class T>
void pad_image(const T* x, int64_t n, int64_t h, int64_t w, int64_t ci, int64_t cp,
               int64_t top, int64_t left, int64_t pw, T* xpad) {
  for (int64_t r = 0; r < h; ++r) {
    const T* from = x + (n * h + r) * w * ci;
    T* to = xpad + ((r + top) * pw + left) * cp;
    if (cp == ci) {
      std::memcpy(to, from, w * ci * sizeof(T));
    } else {
      for (int64_t j = 0; j < w; ++j) std::memcpy(to + j * cp, from + j * ci, ci * sizeof(T));
    }
  }
}

// The convolution for images [n0, n1) (s.h × s.w: the output's size).
template <class T>
void convolve(const T* x, const T* kernel, const float* bias, const Shape& s, int64_t n0,
              int64_t n1, T* y) {
  const int64_t st = s.stride, xh = st * s.h, xw = st * s.w, cp = packed_channels<T>(s.ci);
  const int64_t pw = xw + s.kw - 1, ph = xh + s.kh - 1;
  Taps taps;
  for (int64_t a = 0; a < s.kh; ++a)
    for (int64_t b = 0; b < s.kw; ++b)
      taps.push_back({(a * pw + b) * cp, (a * s.kw + b) * cp * s.co});
  thread_local std::vector<T> xpad;
  xpad.assign(ph * pw * cp, T{0});
  for (int64_t n = n0; n < n1; ++n) {
    pad_image(x, n, xh, xw, s.ci, cp, s.pt, s.pl, pw, xpad.data());
    for (int64_t h = 0; h < s.h; ++h)
      conv_row(&xpad[st * h * pw * cp], st * cp, taps, kernel, bias, cp / kPack<T>, s.co, s.w,
               y + (n * s.h + h) * s.w * s.co, s.co);
  }
}

// The taps of a transposed convolution along one dimension (kernel size k, padding p) that
// reach output phase q: (tap t, input offset (q + p - t)/2) for t ≡ q + p (mod 2).
std::vector<std::pair<int64_t, int64_t>> phase_taps(int64_t k, int64_t p, int64_t q) {
  std::vector<std::pair<int64_t, int64_t>> taps;
  for (int64_t t = 0; t < k; ++t)
    if ((q + p - t) % 2 == 0) taps.emplace_back(t, (q + p - t) / 2);
  return taps;
}

// The transposed convolution for images [n0, n1) (s.h × s.w: the input's size): output pixel
// (2u + q, 2v + r) reads x[u + i, v + j] for the taps (i, j offsets) of phase (q, r).
template <class T>
void convolve_transposed(const T* x, const T* kernel, const float* bias, const Shape& s,
                         int64_t n0, int64_t n1, T* y) {
  std::vector<std::pair<int64_t, int64_t>> rows[2], columns[2];
  int64_t top = 0, bottom = 0, left = 0, right = 0;  // zero padding the offsets need
  for (int q = 0; q < 2; ++q) {
    rows[q] = phase_taps(s.kh, s.pt, q);
    columns[q] = phase_taps(s.kw, s.pl, q);
    for (const auto& [t, i] : rows[q]) top = std::max(top, -i), bottom = std::max(bottom, i);
    for (const auto& [t, j] : columns[q]) left = std::max(left, -j), right = std::max(right, j);
  }
  const int64_t pw = s.w + left + right, ph = s.h + top + bottom, cp = packed_channels<T>(s.ci);
  Taps taps[2][2];
  for (int q = 0; q < 2; ++q)
    for (int r = 0; r < 2; ++r)
      for (const auto& [a, i] : rows[q])
        for (const auto& [b, j] : columns[r])
          taps[q][r].push_back({((i + top) * pw + j + left) * cp, (a * s.kw + b) * cp * s.co});
  thread_local std::vector<T> xpad;
  xpad.assign(ph * pw * cp, T{0});
  const int64_t yw = 2 * s.w;
  for (int64_t n = n0; n < n1; ++n) {
    pad_image(x, n, s.h, s.w, s.ci, cp, top, left, pw, xpad.data());
    for (int64_t u = 0; u < s.h; ++u)
      for (int q = 0; q < 2; ++q)
        for (int r = 0; r < 2; ++r)
          conv_row(&xpad[u * pw * cp], cp, taps[q][r], kernel, bias, cp / kPack<T>, s.co, s.w,
                   y + ((n * 2 * s.h + 2 * u + q) * yw + r) * s.co, 2 * s.co);
  }
}

// Checks shared by both forward handlers: x (N,·,·,Ci), kernel (kh,kw,Ci,Co), bias (Co),
// y (N,·,·,Co), the padding inside the kernel.
bool forward_shapes_fit(ffi::Span<const int64_t> xd, ffi::Span<const int64_t> kd,
                        ffi::Span<const int64_t> yd, int64_t bias_count, int64_t pad_top,
                        int64_t pad_left) {
  return xd.size() == 4 && kd.size() == 4 && yd.size() == 4 &&
         padding_fits(kd[0], kd[1], pad_top, pad_left) && kd[2] == xd[3] && yd[0] == xd[0] &&
         yd[3] == kd[3] && bias_count == kd[3];
}

// Runs a forward convolution (convolve or convolve_transposed) of shape s, one image per task.
template <ffi::DataType D>
using Convolution = void (*)(const ffi::NativeType<D>*, const ffi::NativeType<D>*, const float*,
                             const Shape&, int64_t, int64_t, ffi::NativeType<D>*);
template <ffi::DataType D>
ffi::Error over_images(ffi::ThreadPool& pool, ffi::Buffer<D>& x, ffi::Buffer<D>& kernel,
                       ffi::Buffer<ffi::F32>& bias, ffi::ResultBuffer<D>& y, const Shape& s,
                       Convolution<D> convolution) {
  const auto* xp = x.typed_data();
  const auto* kp = kernel.typed_data();
  const float* bp = bias.typed_data();
  auto* yp = y->typed_data();
  parallel_images(pool, worker_count(pool, s.n), s.n, 1, [=](int64_t, int64_t n0, int64_t n1) {
    convolution(xp, kp, bp, s, n0, n1, yp);
  });
  return ffi::Error::Success();
}

// The forward handlers' binding: x, kernel, bias → y, with the padding attributes.
auto forward_binding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Ret<ffi::Buffer<ffi::F32>>()
      .Attr<int64_t>("pad_top")
      .Attr<int64_t>("pad_left");
}

ffi::Error ConvImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                    ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> y, int64_t pad_top,
                    int64_t pad_left, int64_t stride) {
  const auto xd = x.dimensions(), kd = kernel.dimensions(), yd = y->dimensions();
  if (!forward_shapes_fit(xd, kd, yd, bias.element_count(), pad_top, pad_left) ||
      !stride_fits(stride) || xd[1] != stride * yd[1] || xd[2] != stride * yd[2]) {
    return ffi::Error::InvalidArgument(
        "conv: expected x (N,s·H,s·W,Ci), kernel (kh,kw,Ci,Co), bias (Co), y (N,H,W,Co), "
        "stride s 1 or 2, 0 <= pad_top < kh, 0 <= pad_left < kw");
  }
  return over_images<ffi::F32>(
      pool, x, kernel, bias, y,
      {yd[0], yd[1], yd[2], xd[3], kd[3], kd[0], kd[1], pad_top, pad_left, stride}, convolve);
}

ffi::Error ConvTransposeImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                             ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                             ffi::ResultBuffer<ffi::F32> y, int64_t pad_top, int64_t pad_left) {
  const auto xd = x.dimensions(), kd = kernel.dimensions(), yd = y->dimensions();
  if (!forward_shapes_fit(xd, kd, yd, bias.element_count(), pad_top, pad_left) ||
      yd[1] != 2 * xd[1] || yd[2] != 2 * xd[2]) {
    return ffi::Error::InvalidArgument(
        "conv_transpose: expected x (N,H,W,Ci), kernel (kh,kw,Ci,Co), bias (Co), "
        "y (N,2H,2W,Co), 0 <= pad_top < kh, 0 <= pad_left < kw");
  }
  return over_images<ffi::F32>(
      pool, x, kernel, bias, y,
      {xd[0], xd[1], xd[2], xd[3], kd[3], kd[0], kd[1], pad_top, pad_left, 2},
      convolve_transposed);
}

#if defined(__AVX512BF16__)
// ---------------------------------------------------------------------------------------------
// bfloat16 (the AVX512_BF16 build): maps and kernels in bfloat16, float32 accumulation.
// Forward convolutions multiply channel pairs with vdpbf16ps (two products per float32 lane,
// twice the float32 multiply-add's rate): the kernel comes packed as (kh, kw, ⌈ci/2⌉, co, 2),
// each 32-bit element a pair of input channels for one output channel; a pixel's pair is
// broadcast against it. The outputs are rounded to bfloat16 (nearest even) once. The weight
// gradient multiplies pixel pairs the same way (its maps laid out in pairs per chunk of
// images); the channel moments widen each image to float32 (exact) and run the float32 kernel.
// All sums are float32.
using bf16 = ffi::NativeType<ffi::BF16>;

inline int32_t channel_pair(const bf16* p) {
  int32_t pair;
  std::memcpy(&pair, p, sizeof(pair));
  return pair;
}

// Register tiles of 12 pixels (forward) or input channels (weight gradient) × 2 vectors: 24
// accumulators, 2 loaded vectors and a broadcast of the 32 registers (more uses of each load
// than the float32 kernels' 8 × 2); shorter tiles of 8, 4, 2 and 1.
constexpr int kTileBf16 = 12;

inline __mmask16 first_lanes(int64_t count) {
  return static_cast<__mmask16>((1u << count) - 1);
}

// y[p·y_step + o0..] = bf16(bias + Σ_taps Σ_pairs x-pair · kernel-pair) for the tile's pixels,
// NV vectors of 16 output channels (the last one's lanes masked).
template <int PIXELS, int NV>
void conv_tile_bf16(const bf16* x, int64_t x_step, const Taps& taps, const bf16* kernel,
                    const float* bias, int64_t pairs, int64_t co, int64_t o0, __mmask16 last,
                    bf16* y, int64_t y_step) {
  __m512 acc[PIXELS][NV];
#pragma GCC unroll 2
  for (int j = 0; j < NV; ++j) {
    const __m512 start = _mm512_maskz_loadu_ps(j + 1 < NV ? 0xFFFF : last, bias + o0 + 16 * j);
#pragma GCC unroll 16
    for (int p = 0; p < PIXELS; ++p) acc[p][j] = start;
  }
  for (const Tap& tap : taps) {
    const bf16* xp = x + tap.x;
    const bf16* kp = kernel + tap.k + 2 * o0;
    for (int64_t c = 0; c < pairs; ++c, kp += 2 * co) {
      __m512bh k[NV];
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j)
        k[j] = (__m512bh)_mm512_maskz_loadu_epi32(j + 1 < NV ? 0xFFFF : last, kp + 32 * j);
#pragma GCC unroll 16
      for (int p = 0; p < PIXELS; ++p) {
        const __m512bh a = (__m512bh)_mm512_set1_epi32(channel_pair(xp + 2 * c + p * x_step));
#pragma GCC unroll 2
        for (int j = 0; j < NV; ++j) acc[p][j] = _mm512_dpbf16_ps(acc[p][j], a, k[j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < PIXELS; ++p)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j)
      _mm256_mask_storeu_epi16(y + p * y_step + o0 + 16 * j, j + 1 < NV ? 0xFFFF : last,
                               (__m256i)_mm512_cvtneps_pbh(acc[p][j]));
}

template <int NV>
void conv_tiles_bf16(int pixels, const bf16* x, int64_t x_step, const Taps& taps,
                     const bf16* kernel, const float* bias, int64_t pairs, int64_t co,
                     int64_t o0, __mmask16 last, bf16* y, int64_t y_step) {
  if (pixels == kTileBf16) {
    return conv_tile_bf16<kTileBf16, NV>(x, x_step, taps, kernel, bias, pairs, co, o0, last,
                                         y, y_step);
  }
  if (pixels & 8) conv_tile_bf16<8, NV>(x, x_step, taps, kernel, bias, pairs, co, o0, last, y,
                                        y_step),
      x += 8 * x_step, y += 8 * y_step;
  if (pixels & 4) conv_tile_bf16<4, NV>(x, x_step, taps, kernel, bias, pairs, co, o0, last, y,
                                        y_step),
      x += 4 * x_step, y += 4 * y_step;
  if (pixels & 2) conv_tile_bf16<2, NV>(x, x_step, taps, kernel, bias, pairs, co, o0, last, y,
                                        y_step),
      x += 2 * x_step, y += 2 * y_step;
  if (pixels & 1) conv_tile_bf16<1, NV>(x, x_step, taps, kernel, bias, pairs, co, o0, last, y,
                                        y_step);
}

// One row of `width` output pixels (see the float32 conv_row); `pairs` channel pairs per tap.
void conv_row(const bf16* x, int64_t x_step, const Taps& taps, const bf16* kernel,
              const float* bias, int64_t pairs, int64_t co, int64_t width, bf16* y,
              int64_t y_step) {
  for (int64_t o0 = 0; o0 < co; o0 += 32) {
    const int64_t block = std::min<int64_t>(32, co - o0);
    const __mmask16 last = first_lanes(block > 16 ? block - 16 : block);
    for (int64_t w0 = 0; w0 < width; w0 += kTileBf16) {
      const int pixels = static_cast<int>(std::min<int64_t>(kTileBf16, width - w0));
      if (block > 16) {
        conv_tiles_bf16<2>(pixels, x + w0 * x_step, x_step, taps, kernel, bias, pairs, co, o0,
                           last, y + w0 * y_step, y_step);
      } else {
        conv_tiles_bf16<1>(pixels, x + w0 * x_step, x_step, taps, kernel, bias, pairs, co, o0,
                           last, y + w0 * y_step, y_step);
      }
    }
  }
}

// count bfloat16 values as float32 (exact: the same bits, shifted; the loop vectorizes).
void widen(const bf16* p, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t bits = static_cast<uint32_t>(p[i]) << 16;
    std::memcpy(out + i, &bits, sizeof(float));
  }
}

// Weight gradient: dW[a,b,c,o] = Σ x[n, s·h+a−pt, s·w+b−pl, c] · dy[n,h,w,o] with vdpbf16ps over
// pairs of grid pixels (w, w+1) of a row: per chunk of images, x (per tap column b) and dy are
// laid out in pixel pairs, [n][row][w/2][channel][2] (zero outside the map and in an odd
// tail), so that a channel's pair is one 32-bit element: broadcast for x, a lane for dy.
struct PairLayout {
  int64_t images, xh, xw, grid_w, pairs;  // pairs = ⌈grid width / 2⌉
};

// out[c] = (p0[c], p1[c]) for `channels` channels, a null pixel reading zero.
inline void interleave_pixels(const bf16* p0, const bf16* p1, int64_t channels, bf16* out) {
  if (channels < 16) {  // the first layers' few channels: plain copies beat masked vectors
    for (int64_t c = 0; c < channels; ++c) {
      out[2 * c] = p0 ? p0[c] : bf16{0};
      out[2 * c + 1] = p1 ? p1[c] : bf16{0};
    }
    return;
  }
  for (int64_t c = 0; c < channels; c += 16) {
    const __mmask16 mask = first_lanes(std::min<int64_t>(16, channels - c));
    const __m512i low = p0 ? _mm512_maskz_cvtepu16_epi32(mask, _mm256_maskz_loadu_epi16(mask, p0 + c))
                           : _mm512_setzero_si512();
    const __m512i high = p1 ? _mm512_maskz_cvtepu16_epi32(mask, _mm256_maskz_loadu_epi16(mask, p1 + c))
                            : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(out + 2 * c, mask,
                             _mm512_or_si512(low, _mm512_maskz_slli_epi32(0xFFFF, high, 16)));
  }
}

// x's pixel pairs for tap column b: pair q of a row holds grid pixels 2q and 2q+1, i.e. the
// map's columns s·2q + b − pl and s·(2q+1) + b − pl.
void lay_out_columns(const bf16* x, const Shape& s, const PairLayout& l, int64_t b,
                     bf16* columns) {
  for (int64_t n = 0; n < l.images; ++n)
    for (int64_t r = 0; r < l.xh; ++r) {
      const bf16* row = x + (n * l.xh + r) * l.xw * s.ci;
      bf16* to = columns + (n * l.xh + r) * l.pairs * s.ci * 2;
      if (s.ci == 1 && s.stride == 1) {  // the pairs are the row itself, shifted by b − pl
        const int64_t shift = b - s.pl, width = 2 * l.pairs;
        const int64_t lo = std::clamp<int64_t>(-shift, 0, width);
        const int64_t hi = std::clamp<int64_t>(std::min(l.grid_w, l.xw - shift), lo, width);
        std::fill(to, to + lo, bf16{0});
        std::memcpy(to + lo, row + lo + shift, (hi - lo) * sizeof(bf16));
        std::fill(to + hi, to + width, bf16{0});
        continue;
      }
      for (int64_t q = 0; q < l.pairs; ++q) {
        const bf16* pixel[2];
        for (int e = 0; e < 2; ++e) {
          const int64_t column = s.stride * (2 * q + e) + b - s.pl;
          const bool inside = 2 * q + e < l.grid_w && column >= 0 && column < l.xw;
          pixel[e] = inside ? row + column * s.ci : nullptr;
        }
        interleave_pixels(pixel[0], pixel[1], s.ci, to + q * s.ci * 2);
      }
    }
}

void lay_out_pairs(const bf16* dy, const Shape& s, const PairLayout& l, bf16* pairs) {
  for (int64_t n = 0; n < l.images; ++n)
    for (int64_t h = 0; h < s.h; ++h) {
      const bf16* row = dy + (n * s.h + h) * s.w * s.co;
      for (int64_t q = 0; q < l.pairs; ++q)
        interleave_pixels(row + 2 * q * s.co, 2 * q + 1 < s.w ? row + (2 * q + 1) * s.co : nullptr,
                          s.co, pairs + ((n * s.h + h) * l.pairs + q) * s.co * 2);
    }
}

// Adds the tile (tap row a, outputs o0.. (NV vectors), ROWS rows of dW from the first of
// `columns`, each s.co apart in out) of the laid-out chunk into out. The rows are input
// channels (each pair 2 elements after the last) or, for a 1-channel input (TAP_ROWS), the tap
// columns b (each `row_step` elements after the last: b's layout), so that dy's pairs are read
// once per tap row rather than once per tap. The sums stay in registers for the whole chunk;
// with stride 1 an image's rows (x's rows h + a − pt as dy's rows h) follow each other in both
// layouts, so each image is one run of pairs.
template <int ROWS, int NV, bool TAP_ROWS>
void weight_grad_tile_bf16(const bf16* columns, const bf16* pairs, const Shape& s,
                           const PairLayout& l, int64_t a, int64_t o0, __mmask16 last,
                           int64_t row_step, float* out) {
  const int64_t step = TAP_ROWS ? row_step : 2;
  __m512 acc[ROWS][NV];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t h_lo = std::max<int64_t>(0, ceil_div(s.pt - a, s.stride));
  const int64_t h_hi = std::min<int64_t>(s.h, floor_div(l.xh - 1 + s.pt - a, s.stride) + 1);
  const bool rows_follow = s.stride == 1;
  const int64_t run = rows_follow ? (h_hi - h_lo) * l.pairs : l.pairs;
  for (int64_t n = 0; n < l.images; ++n)
    for (int64_t h = h_lo; h < h_hi; h += rows_follow ? h_hi - h_lo : 1) {
      const bf16* xr = columns + (n * l.xh + s.stride * h + a - s.pt) * l.pairs * s.ci * 2;
      const bf16* dr = pairs + (n * s.h + h) * l.pairs * s.co * 2 + 2 * o0;
      for (int64_t q = 0; q < run; ++q, dr += 2 * s.co, xr += 2 * s.ci) {
        __m512bh g[NV];
#pragma GCC unroll 2
        for (int j = 0; j < NV; ++j)
          g[j] = (__m512bh)_mm512_maskz_loadu_epi32(j + 1 < NV ? 0xFFFF : last, dr + 32 * j);
#pragma GCC unroll 16
        for (int i = 0; i < ROWS; ++i) {
          const __m512bh v = (__m512bh)_mm512_set1_epi32(channel_pair(xr + step * i));
#pragma GCC unroll 2
          for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], v, g[j]);
        }
      }
    }
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j) {
      float* o = out + i * s.co + o0 + 16 * j;
      const __mmask16 mask = j + 1 < NV ? 0xFFFF : last;
      _mm512_mask_storeu_ps(o, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, o), acc[i][j]));
    }
}

// Tap-column tiles hold a kernel row's taps whole (up to kTapTile: kernels up to 5 wide in one
// pass over dy's pairs).
constexpr int kTapTile = 5;

template <int NV, bool TAP_ROWS>
void weight_grad_tiles_bf16(int rows, const bf16* columns, const bf16* pairs, const Shape& s,
                            const PairLayout& l, int64_t a, int64_t o0, __mmask16 last,
                            int64_t row_step, float* out) {
  if constexpr (TAP_ROWS) {
    switch (rows) {
      case 5: return weight_grad_tile_bf16<5, NV, true>(columns, pairs, s, l, a, o0, last,
                                                        row_step, out);
      case 4: return weight_grad_tile_bf16<4, NV, true>(columns, pairs, s, l, a, o0, last,
                                                        row_step, out);
      case 3: return weight_grad_tile_bf16<3, NV, true>(columns, pairs, s, l, a, o0, last,
                                                        row_step, out);
      case 2: return weight_grad_tile_bf16<2, NV, true>(columns, pairs, s, l, a, o0, last,
                                                        row_step, out);
      default: return weight_grad_tile_bf16<1, NV, true>(columns, pairs, s, l, a, o0, last,
                                                         row_step, out);
    }
  } else {
    if (rows == kTileBf16) {
      return weight_grad_tile_bf16<kTileBf16, NV, false>(columns, pairs, s, l, a, o0, last,
                                                         row_step, out);
    }
    if (rows & 8) weight_grad_tile_bf16<8, NV, false>(columns, pairs, s, l, a, o0, last,
                                                      row_step, out),
        columns += 2 * 8, out += 8 * s.co;
    if (rows & 4) weight_grad_tile_bf16<4, NV, false>(columns, pairs, s, l, a, o0, last,
                                                      row_step, out),
        columns += 2 * 4, out += 4 * s.co;
    if (rows & 2) weight_grad_tile_bf16<2, NV, false>(columns, pairs, s, l, a, o0, last,
                                                      row_step, out),
        columns += 2 * 2, out += 2 * s.co;
    if (rows & 1) weight_grad_tile_bf16<1, NV, false>(columns, pairs, s, l, a, o0, last,
                                                      row_step, out);
  }
}

// 16 bfloat16 values as float32 (the same bits, shifted; the masked forms spare GCC's headers a
// false maybe-uninitialized warning).
inline __m512 widened(__m256i v) {
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF,
                                                     _mm512_maskz_cvtepu16_epi32(0xFFFF, v), 16));
}

// Adds the channel sums of `pixels` pixels of `channels` bfloat16 channels at p into out.
void add_channel_sums(const bf16* p, int64_t pixels, int64_t channels, float* out) {
  for (int64_t o0 = 0; o0 < channels; o0 += 16) {
    const __mmask16 mask = first_lanes(std::min<int64_t>(16, channels - o0));
    __m512 sum = _mm512_maskz_loadu_ps(mask, out + o0);
    for (const bf16* q = p + o0, *end = p + pixels * channels; q < end; q += channels)
      sum = _mm512_add_ps(sum, widened(_mm256_maskz_loadu_epi16(mask, q)));
    _mm512_mask_storeu_ps(out + o0, mask, sum);
  }
}

// The bfloat16 weight gradient of images [n0, n1) added into out and the channel sums of dy
// (or of x, sums_of_x) into out_sums.
void accumulate(const bf16* x, const bf16* dy, const Shape& s, bool sums_of_x, int64_t n0,
                     int64_t n1, float* out, float* out_sums) {
  const PairLayout l{n1 - n0, s.stride * s.h, s.stride * s.w, s.w, (s.w + 1) / 2};
  const int64_t x_image = l.xh * l.xw * s.ci, dy_image = s.h * s.w * s.co;
  const int64_t columns_size = l.images * l.xh * s.ci * 2 * l.pairs;
  thread_local std::vector<bf16> columns, pairs;
  columns.resize(s.kw * columns_size);
  pairs.resize(l.images * s.h * l.pairs * s.co * 2);
  for (int64_t b = 0; b < s.kw; ++b)
    lay_out_columns(x + n0 * x_image, s, l, b, columns.data() + b * columns_size);
  lay_out_pairs(dy + n0 * dy_image, s, l, pairs.data());
  // Tiles of dW rows: up to kTileBf16 input channels of one tap, or (1 channel) up to kTapTile
  // tap columns.
  const bool tap_rows = s.ci == 1;
  const int64_t row_count = tap_rows ? s.kw : s.ci, tap_count = tap_rows ? 1 : s.kw;
  for (int64_t a = 0; a < s.kh; ++a)
    for (int64_t b = 0; b < tap_count; ++b)
      for (int64_t o0 = 0; o0 < s.co; o0 += 32) {
        const int64_t block = std::min<int64_t>(32, s.co - o0);
        const __mmask16 last = first_lanes(block > 16 ? block - 16 : block);
        const int64_t tile = tap_rows ? kTapTile : kTileBf16;
        for (int64_t r0 = 0; r0 < row_count; r0 += tile) {
          const int rows = static_cast<int>(std::min<int64_t>(tile, row_count - r0));
          const bf16* cols = columns.data() + (tap_rows ? r0 * columns_size
                                                        : b * columns_size + 2 * r0);
          float* o = out + ((a * s.kw + b) * s.ci + r0) * s.co;
          const auto tiles = [&](auto nv, auto by_tap) {
            weight_grad_tiles_bf16<decltype(nv)::value, decltype(by_tap)::value>(
                rows, cols, pairs.data(), s, l, a, o0, last, columns_size, o);
          };
          using One = std::integral_constant<int, 1>;
          using Two = std::integral_constant<int, 2>;
          if (block > 16) {
            tap_rows ? tiles(Two{}, std::true_type{}) : tiles(Two{}, std::false_type{});
          } else {
            tap_rows ? tiles(One{}, std::true_type{}) : tiles(One{}, std::false_type{});
          }
        }
      }
  if (sums_of_x) {
    add_channel_sums(x + n0 * x_image, l.images * l.xh * l.xw, s.ci, out_sums);
  } else {
    add_channel_sums(dy + n0 * dy_image, l.images * s.h * s.w, s.co, out_sums);
  }
}

// One image's moments of bfloat16 maps: widened to float32 (exact), then as float32's.
void add_moments(const bf16* a, const bf16* b, const float* m, int64_t pixels, int64_t c,
                 float* out) {
  thread_local std::vector<float> wide_a, wide_b;
  wide_a.resize(pixels * c);
  widen(a, pixels * c, wide_a.data());
  if (b != a) {
    wide_b.resize(pixels * c);
    widen(b, pixels * c, wide_b.data());
  }
  add_moments(wide_a.data(), b != a ? wide_b.data() : wide_a.data(), m, pixels, c, out);
}

// The packed kernel (kh, kw, ⌈ci/2⌉, co, 2) of a bfloat16 convolution of x (N,·,·,ci) into y.
bool packed_kernel_fits(ffi::Span<const int64_t> xd, ffi::Span<const int64_t> kd,
                        ffi::Span<const int64_t> yd, int64_t bias_count, int64_t pad_top,
                        int64_t pad_left) {
  return xd.size() == 4 && kd.size() == 5 && yd.size() == 4 && kd[4] == 2 &&
         padding_fits(kd[0], kd[1], pad_top, pad_left) && kd[2] == (xd[3] + 1) / 2 &&
         yd[0] == xd[0] && yd[3] == kd[3] && bias_count == kd[3];
}

ffi::Error ConvBf16Impl(ffi::ThreadPool pool, ffi::Buffer<ffi::BF16> x,
                        ffi::Buffer<ffi::BF16> kernel, ffi::Buffer<ffi::F32> bias,
                        ffi::ResultBuffer<ffi::BF16> y, int64_t pad_top, int64_t pad_left,
                        int64_t stride) {
  const auto xd = x.dimensions(), kd = kernel.dimensions(), yd = y->dimensions();
  if (!packed_kernel_fits(xd, kd, yd, bias.element_count(), pad_top, pad_left) ||
      !stride_fits(stride) || xd[1] != stride * yd[1] || xd[2] != stride * yd[2]) {
    return ffi::Error::InvalidArgument(
        "conv_bf16: expected x (N,s·H,s·W,Ci), kernel (kh,kw,⌈Ci/2⌉,Co,2), bias (Co) float32, "
        "y (N,H,W,Co), stride s 1 or 2, 0 <= pad_top < kh, 0 <= pad_left < kw");
  }
  return over_images<ffi::BF16>(
      pool, x, kernel, bias, y,
      {yd[0], yd[1], yd[2], xd[3], kd[3], kd[0], kd[1], pad_top, pad_left, stride},
      convolve<bf16>);
}

ffi::Error ConvTransposeBf16Impl(ffi::ThreadPool pool, ffi::Buffer<ffi::BF16> x,
                                 ffi::Buffer<ffi::BF16> kernel, ffi::Buffer<ffi::F32> bias,
                                 ffi::ResultBuffer<ffi::BF16> y, int64_t pad_top,
                                 int64_t pad_left) {
  const auto xd = x.dimensions(), kd = kernel.dimensions(), yd = y->dimensions();
  if (!packed_kernel_fits(xd, kd, yd, bias.element_count(), pad_top, pad_left) ||
      yd[1] != 2 * xd[1] || yd[2] != 2 * xd[2]) {
    return ffi::Error::InvalidArgument(
        "conv_transpose_bf16: expected x (N,H,W,Ci), kernel (kh,kw,⌈Ci/2⌉,Co,2), bias (Co) "
        "float32, y (N,2H,2W,Co), 0 <= pad_top < kh, 0 <= pad_left < kw");
  }
  return over_images<ffi::BF16>(
      pool, x, kernel, bias, y,
      {xd[0], xd[1], xd[2], xd[3], kd[3], kd[0], kd[1], pad_top, pad_left, 2},
      convolve_transposed<bf16>);
}

#endif  // __AVX512BF16__

// ---------------------------------------------------------------------------------------------
// The weight-gradient and moments handlers, for float32 maps and (AVX512_BF16) bfloat16 ones;
// their sums are float32 either way.

template <ffi::DataType D>
ffi::Error ConvWeightGradImpl(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<D> dy,
                              ffi::ResultBuffer<ffi::F32> dw, ffi::ResultBuffer<ffi::F32> db,
                              int64_t pad_top, int64_t pad_left, int64_t stride,
                              bool sums_of_x) {
  const auto xd = x.dimensions(), gd = dy.dimensions(), wd = dw->dimensions();
  if (xd.size() != 4 || gd.size() != 4 || wd.size() != 4 || !stride_fits(stride) ||
      xd[0] != gd[0] || xd[1] != stride * gd[1] || xd[2] != stride * gd[2] ||
      !padding_fits(wd[0], wd[1], pad_top, pad_left) || wd[2] != xd[3] || wd[3] != gd[3] ||
      static_cast<int64_t>(db->element_count()) != (sums_of_x ? xd[3] : gd[3])) {
    return ffi::Error::InvalidArgument(
        "conv_weight_grad: expected x (N,s·H,s·W,Ci), dy (N,H,W,Co), dw (kh,kw,Ci,Co), "
        "db (Ci if sums_of_x else Co), stride s 1 or 2, 0 <= pad_top < kh, "
        "0 <= pad_left < kw");
  }
  const Shape s{gd[0], gd[1], gd[2], xd[3], gd[3], wd[0], wd[1], pad_top, pad_left, stride};
  // Each part's partial: the weight gradient, then the channel sums.
  const int64_t weights = s.kh * s.kw * s.ci * s.co, sums = db->element_count();
  const int64_t size = weights + sums;
  // About 256 KiB per chunk of what its tiles stream (one 32×32 image, several small ones),
  // L2-resident: x and dy (float32), or x's tap columns and dy's pairs (bfloat16).
  const int64_t pixel_bytes = D == ffi::DataType::F32
                                  ? (stride * stride * s.ci + s.co) * 4
                                  : (stride * stride * s.kw * s.ci + s.co) * 2;
  const int64_t chunk =
      std::max<int64_t>(1, (int64_t{256} << 10) / std::max<int64_t>(1, s.h * s.w * pixel_bytes));
  const auto* xp = x.typed_data();
  const auto* dyp = dy.typed_data();
  std::unique_ptr<float[]> sum(new float[size]);
  sum_over_images(pool, s.n, chunk, size, sum.get(), [=](int64_t n0, int64_t n1, float* out) {
    accumulate(xp, dyp, s, sums_of_x, n0, n1, out, out + weights);
  });
  std::memcpy(dw->typed_data(), sum.get(), weights * sizeof(float));
  std::memcpy(db->typed_data(), sum.get() + weights, sums * sizeof(float));
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error ChannelMomentsImpl(ffi::ThreadPool pool, ffi::Buffer<D> a, ffi::Buffer<D> b,
                              ffi::Buffer<ffi::F32> m, ffi::ResultBuffer<ffi::F32> out) {
  const auto ad = a.dimensions(), bd = b.dimensions();
  if (ad.size() != 4 || bd.size() != 4 || !std::equal(ad.begin(), ad.end(), bd.begin()) ||
      static_cast<int64_t>(m.element_count()) != ad[3] ||
      static_cast<int64_t>(out->element_count()) != 2 * ad[3]) {
    return ffi::Error::InvalidArgument(
        "channel_moments: expected a and b (N,H,W,C), m (C) float32, out (2,C)");
  }
  const int64_t n = ad[0], pixels = ad[1] * ad[2], c = ad[3];
  const int64_t chunk = std::max<int64_t>(1, (int64_t{256} << 10) /
                                                 std::max<int64_t>(1, pixels * c * 8));
  const auto* ap = a.typed_data();
  const auto* bp = b.typed_data();
  const float* mp = m.typed_data();
  sum_over_images(pool, n, chunk, 2 * c, out->typed_data(),
                  [=](int64_t n0, int64_t n1, float* sum) {
                    for (int64_t i = n0; i < n1; ++i)
                      add_moments(ap + i * pixels * c, bp + i * pixels * c, mp, pixels, c, sum);
                  });
  return ffi::Error::Success();
}

template <ffi::DataType D>
auto weight_grad_binding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .template Arg<ffi::Buffer<D>>()
      .template Arg<ffi::Buffer<D>>()
      .template Ret<ffi::Buffer<ffi::F32>>()
      .template Ret<ffi::Buffer<ffi::F32>>()
      .template Attr<int64_t>("pad_top")
      .template Attr<int64_t>("pad_left")
      .template Attr<int64_t>("stride")
      .template Attr<bool>("sums_of_x");
}

template <ffi::DataType D>
auto moments_binding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .template Arg<ffi::Buffer<D>>()
      .template Arg<ffi::Buffer<D>>()
      .template Arg<ffi::Buffer<ffi::F32>>()
      .template Ret<ffi::Buffer<ffi::F32>>();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConvWeightGrad, ConvWeightGradImpl<ffi::F32>,
                              weight_grad_binding<ffi::F32>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorChannelMoments, ChannelMomentsImpl<ffi::F32>,
                              moments_binding<ffi::F32>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConv, ConvImpl, forward_binding().Attr<int64_t>("stride"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConvTranspose, ConvTransposeImpl, forward_binding());

#if defined(__AVX512BF16__)
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConvBf16, ConvBf16Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::BF16>>()
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("stride"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConvTransposeBf16, ConvTransposeBf16Impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::BF16>>()
                                  .Attr<int64_t>("pad_top")
                                  .Attr<int64_t>("pad_left"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorConvWeightGradBf16, ConvWeightGradImpl<ffi::BF16>,
                              weight_grad_binding<ffi::BF16>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxcolorChannelMomentsBf16, ChannelMomentsImpl<ffi::BF16>,
                              moments_binding<ffi::BF16>());
#endif  // __AVX512BF16__
