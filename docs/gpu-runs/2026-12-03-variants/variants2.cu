// Round 2: Resize linear window variants, b shapes, OneHot with rotating sets.
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cmath>
#include <functional>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)
#include "lin_tvm.cu"
#include "resize_linear_b.cu"
#include "resize_nearest_b.cu"
#include "oh_tvm.cu"

template <int H, int W, int OH, int OW> struct Geo {
  static constexpr int PLANE = OH * OW, INP = H * W;
  __device__ static __forceinline__ void y(int oh, int& y0, int& dy, float& ly) {
    float s = ((float)oh + 0.5f) / ((float)OH / (float)H) - 0.5f;
    float c = fmaxf(fminf(s, (float)(H - 1)), 0.f); y0 = (int)c; dy = y0 < H - 1 ? W : 0; ly = c - (float)y0;
  }
  __device__ static __forceinline__ void x(int ow, int& x0, int& dx, float& lx) {
    float s = ((float)ow + 0.5f) / ((float)OW / (float)W) - 0.5f;
    float c = fmaxf(fminf(s, (float)(W - 1)), 0.f); x0 = (int)c; dx = x0 < W - 1 ? 1 : 0; lx = c - (float)x0;
  }
  __device__ static __forceinline__ int near(int oh, int ow) {
    int ih = (int)fmaxf(fminf(floorf((float)oh / ((float)OH / (float)H)), (float)(H - 1)), 0.f);
    int iw = (int)fmaxf(fminf(floorf((float)ow / ((float)OW / (float)W)), (float)(W - 1)), 0.f);
    return ih * W + iw;
  }
};

// window variant: 4 consecutive ow per thread, a window of K columns from 2 rows, PL planes
template <class G, int W, int OW, int K, int PL, bool CS>
__global__ void __launch_bounds__(256) lin_win(float* __restrict__ out, const float* __restrict__ in) {
  int t = (blockIdx.x * 256 + threadIdx.x) * 4;
  if (t >= G::PLANE) return;
  int oh = t / OW, ow = t - oh * OW;
  int y0, dy; float ly; G::y(oh, y0, dy, ly);
  int x0[4], dx[4]; float lx[4];
  #pragma unroll
  for (int j = 0; j < 4; ++j) G::x(ow + j, x0[j], dx[j], lx[j]);
  int xb = x0[0];
  int rel[4], rel1[4];
  #pragma unroll
  for (int j = 0; j < 4; ++j) { rel[j] = x0[j] - xb; rel1[j] = rel[j] + dx[j]; }
  #pragma unroll
  for (int k = 0; k < PL; ++k) {
    int p = blockIdx.y * PL + k;
    const float* r0 = in + p * G::INP + y0 * W;
    const float* r1 = r0 + dy;
    float a[K], b[K];
    #pragma unroll
    for (int m = 0; m < K; ++m) { int c = min(xb + m, W - 1); a[m] = __ldg(r0 + c); b[m] = __ldg(r1 + c); }
    float o[4];
    #pragma unroll
    for (int j = 0; j < 4; ++j) {
      float a0 = a[0], a1 = a[0], b0 = b[0], b1 = b[0];
      #pragma unroll
      for (int m = 1; m < K; ++m) { if (rel[j] == m) { a0 = a[m]; b0 = b[m]; } if (rel1[j] == m) { a1 = a[m]; b1 = b[m]; } }
      float top = a0 * (1.f - lx[j]) + a1 * lx[j], bot = b0 * (1.f - lx[j]) + b1 * lx[j];
      o[j] = top * (1.f - ly) + bot * ly;
    }
    float4 v = make_float4(o[0], o[1], o[2], o[3]);
    float4* dst = reinterpret_cast<float4*>(out + p * G::PLANE + t);
    if (CS) __stcs(dst, v); else *dst = v;
  }
}
// scalar p8 (clean version, no cs / cs), TH threads
template <class G, int W, int OW, int PL, int TH, bool CS>
__global__ void __launch_bounds__(TH) lin_scalar(float* __restrict__ out, const float* __restrict__ in) {
  int t = blockIdx.x * TH + threadIdx.x;
  if (t >= G::PLANE) return;
  int oh = t / OW, ow = t - oh * OW, y0, dy, x0, dx; float ly, lx;
  G::y(oh, y0, dy, ly); G::x(ow, x0, dx, lx);
  int off = y0 * W + x0;
  #pragma unroll
  for (int k = 0; k < PL; ++k) {
    int p = blockIdx.y * PL + k; const float* s = in + p * G::INP + off;
    float v00 = s[0], v01 = s[dx], v10 = s[dy], v11 = s[dy + dx];
    float top = v00 * (1.f - lx) + v01 * lx, bot = v10 * (1.f - lx) + v11 * lx;
    float v = top * (1.f - ly) + bot * ly;
    if (CS) __stcs(out + p * G::PLANE + t, v); else out[p * G::PLANE + t] = v;
  }
}
template <class G, int OW, int PL, bool CS>
__global__ void __launch_bounds__(256) near_p(float* __restrict__ out, const float* __restrict__ in) {
  int t = blockIdx.x * 256 + threadIdx.x;
  if (t >= G::PLANE) return;
  int oh = t / OW, ow = t - oh * OW, s = G::near(oh, ow);
  #pragma unroll
  for (int k = 0; k < PL; ++k) { int p = blockIdx.y * PL + k; float v = in[p * G::INP + s]; if (CS) __stcs(out + p * G::PLANE + t, v); else out[p * G::PLANE + t] = v; }
}

constexpr int DEPTH = 16384;
template <int PER>
__global__ void __launch_bounds__(128) oh_v4_multi(float* __restrict__ out, const int64_t* __restrict__ idx) {
  #pragma unroll
  for (int k = 0; k < PER; ++k) {
    int i = (blockIdx.x * 128 * PER + k * 128 + threadIdx.x) * 4;
    int r = i / DEPTH, d = i - r * DEPTH;
    int64_t v = idx[r]; int h = (int)(v < 0 ? v + DEPTH : v) - d;
    *reinterpret_cast<float4*>(out + i) = make_float4(h == 0, h == 1, h == 2, h == 3);
  }
}
__global__ void __launch_bounds__(1024) oh_i32(float* __restrict__ out, const int64_t* __restrict__ idx) {
  int i = blockIdx.x * 1024 + threadIdx.x; int r = i >> 14, d = i & (DEPTH - 1);
  int64_t v = idx[r]; int h = (int)(v < 0 ? v + DEPTH : v);
  out[i] = h == d ? 1.f : 0.f;
}
__global__ void copy4(float4* __restrict__ o, const float4* __restrict__ a, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) o[i] = a[i];
}

static float time_us(const std::function<void(cudaStream_t, int)>& launch, int per_graph = 20, int reps = 25) {
  cudaStream_t s; CK(cudaStreamCreate(&s));
  launch(s, 0); CK(cudaStreamSynchronize(s));
  cudaGraph_t g; cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < per_graph; ++i) launch(s, i);
  CK(cudaStreamEndCapture(s, &g)); CK(cudaGraphInstantiate(&ge, g, 0));
  CK(cudaGraphLaunch(ge, s)); CK(cudaStreamSynchronize(s));
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    CK(cudaEventRecord(e0, s)); CK(cudaGraphLaunch(ge, s)); CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1)); t.push_back(ms * 1000.f / per_graph);
  }
  std::sort(t.begin(), t.end());
  CK(cudaGraphExecDestroy(ge)); CK(cudaGraphDestroy(g)); CK(cudaStreamDestroy(s));
  return t[t.size() / 2];
}
static double maxdiff(const float* a, const float* b, size_t n) {
  std::vector<float> x(n), y(n);
  CK(cudaMemcpy(x.data(), a, n * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(y.data(), b, n * 4, cudaMemcpyDeviceToHost));
  double m = 0; for (size_t i = 0; i < n; ++i) m = std::max(m, (double)std::fabs(x[i] - y[i])); return m;
}

int main() {
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  size_t cn = (size_t)1 << 27; float4 *ca, *cb; CK(cudaMalloc(&ca, cn * 16)); CK(cudaMalloc(&cb, cn * 16)); CK(cudaMemset(ca, 0, cn * 16));
  float tc = time_us([&](cudaStream_t s, int) { copy4<<<prop.multiProcessorCount * 8, 512, 0, s>>>(cb, ca, cn); }, 2, 9);
  double bw = 2.0 * cn * 16 / (tc * 1e-6);
  printf("%s copy kernel %.0f GB/s\n", prop.name, bw / 1e9);
  CK(cudaFree(ca)); CK(cudaFree(cb));
  const int TOTAL = 1024 * 176 * 200;
  float *in, *ref, *out; CK(cudaMalloc(&in, 64 << 20)); CK(cudaMalloc(&ref, (size_t)TOTAL * 8)); CK(cudaMalloc(&out, (size_t)TOTAL * 8));
  { std::vector<float> h(16 << 20); for (size_t i = 0; i < h.size(); ++i) h[i] = (float)((i * 2654435761u) % 1000) / 1000.f;
    CK(cudaMemcpy(in, h.data(), h.size() * 4, cudaMemcpyHostToDevice)); }
  double floor_a = ((double)1024 * 44 * 50 * 4 + (double)TOTAL * 4) / bw * 1e6;
  double floor_b = ((double)2048 * 11 * 12 * 4 + (double)TOTAL * 8) / bw * 1e6;
  auto run = [&](const char* name, double fl, size_t n, const std::function<void(cudaStream_t, int)>& k) {
    CK(cudaMemset(out, 0xff, n * 4)); k(0, 0); CK(cudaDeviceSynchronize());
    double d = maxdiff(out, ref, n); float t = time_us(k);
    printf("%-26s %7.1f us  %4.0f%% floor  maxdiff %.2e\n", name, t, 100 * fl / t, d);
  };
  using GA = Geo<44, 50, 176, 200>; using GB = Geo<11, 12, 176, 200>;
  dim3 g8(138, 1024 / 8), g8b(138, 2048 / 8);
  // linear a
  tpat_resize_linear_a_resize2d_tpat_kernel<<<g8, 256>>>(ref, in); CK(cudaDeviceSynchronize());
  printf("floor a %.1f us, b %.1f us\n", floor_a, floor_b);
  run("lin_a tvm p8", floor_a, TOTAL, [&](cudaStream_t s, int) { tpat_resize_linear_a_resize2d_tpat_kernel<<<g8, 256, 0, s>>>(out, in); });
  run("lin_a scalar p8", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_scalar<GA, 50, 200, 8, 256, false><<<g8, 256, 0, s>>>(out, in); });
  run("lin_a scalar p8 cs", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_scalar<GA, 50, 200, 8, 256, true><<<g8, 256, 0, s>>>(out, in); });
  run("lin_a scalar p4", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_scalar<GA, 50, 200, 4, 256, false><<<dim3(138, 256), 256, 0, s>>>(out, in); });
  run("lin_a scalar p16", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_scalar<GA, 50, 200, 16, 256, false><<<dim3(138, 64), 256, 0, s>>>(out, in); });
  run("lin_a scalar p8 t128", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_scalar<GA, 50, 200, 8, 128, false><<<dim3(275, 128), 128, 0, s>>>(out, in); });
  run("lin_a win3 p1", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 1, false><<<dim3(35, 1024), 256, 0, s>>>(out, in); });
  run("lin_a win3 p1 cs", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 1, true><<<dim3(35, 1024), 256, 0, s>>>(out, in); });
  run("lin_a win3 p2", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 2, false><<<dim3(35, 512), 256, 0, s>>>(out, in); });
  run("lin_a win3 p2 cs", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 2, true><<<dim3(35, 512), 256, 0, s>>>(out, in); });
  run("lin_a win3 p4", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 4, false><<<dim3(35, 256), 256, 0, s>>>(out, in); });
  run("lin_a win3 p4 cs", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 4, true><<<dim3(35, 256), 256, 0, s>>>(out, in); });
  run("lin_a win3 p8", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 8, false><<<dim3(35, 128), 256, 0, s>>>(out, in); });
  run("lin_a win3 p8 cs", floor_a, TOTAL, [&](cudaStream_t s, int) { lin_win<GA, 50, 200, 3, 8, true><<<dim3(35, 128), 256, 0, s>>>(out, in); });
  // linear b
  tpat_resize_linear_b_resize2d_tpat_kernel<<<g8b, 256>>>(ref, in); CK(cudaDeviceSynchronize());
  run("lin_b tvm p8", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { tpat_resize_linear_b_resize2d_tpat_kernel<<<g8b, 256, 0, s>>>(out, in); });
  run("lin_b scalar p8 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { lin_scalar<GB, 12, 200, 8, 256, true><<<g8b, 256, 0, s>>>(out, in); });
  run("lin_b win2 p2 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { lin_win<GB, 12, 200, 2, 2, true><<<dim3(35, 1024), 256, 0, s>>>(out, in); });
  run("lin_b win2 p4", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { lin_win<GB, 12, 200, 2, 4, false><<<dim3(35, 512), 256, 0, s>>>(out, in); });
  run("lin_b win2 p4 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { lin_win<GB, 12, 200, 2, 4, true><<<dim3(35, 512), 256, 0, s>>>(out, in); });
  run("lin_b win2 p8 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { lin_win<GB, 12, 200, 2, 8, true><<<dim3(35, 256), 256, 0, s>>>(out, in); });
  // nearest b
  tpat_resize_nearest_b_resize2d_tpat_kernel<<<g8b, 256>>>(ref, in); CK(cudaDeviceSynchronize());
  run("near_b tvm p8", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { tpat_resize_nearest_b_resize2d_tpat_kernel<<<g8b, 256, 0, s>>>(out, in); });
  run("near_b p8 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { near_p<GB, 200, 8, true><<<g8b, 256, 0, s>>>(out, in); });
  run("near_b p4 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { near_p<GB, 200, 4, true><<<dim3(138, 512), 256, 0, s>>>(out, in); });
  run("near_b p16 cs", floor_b, 2 * TOTAL, [&](cudaStream_t s, int) { near_p<GB, 200, 16, true><<<dim3(138, 128), 256, 0, s>>>(out, in); });
  // OneHot with 16 rotating sets (as bench-kernels.py does)
  int64_t* idx; CK(cudaMalloc(&idx, 16 * 16 * 8));
  { std::vector<int64_t> h(256); for (int i = 0; i < 256; ++i) h[i] = (i * 7919) % DEPTH; CK(cudaMemcpy(idx, h.data(), 256 * 8, cudaMemcpyHostToDevice)); }
  const size_t on = 16 * DEPTH;
  tpat_onehot_fused_less_add_where_one_hot_cast_kernel<<<256, 1024>>>(ref, idx); CK(cudaDeviceSynchronize());
  auto runo = [&](const char* name, int per, const std::function<void(cudaStream_t, int)>& k) {
    CK(cudaMemset(out, 0xff, on * 4)); k(0, 0); CK(cudaDeviceSynchronize());
    double d = maxdiff(out, ref, on);
    printf("%-26s %7.2f us (graph of %d)  maxdiff %.2e\n", name, time_us(k, per, 25), per, d);
  };
  for (int per : {16, 50}) {
    runo("onehot tvm rot16", per, [&](cudaStream_t s, int i) { tpat_onehot_fused_less_add_where_one_hot_cast_kernel<<<256, 1024, 0, s>>>(out + (i % 16) * on, idx + (i % 16) * 16); });
    runo("onehot tvm same", per, [&](cudaStream_t s, int i) { tpat_onehot_fused_less_add_where_one_hot_cast_kernel<<<256, 1024, 0, s>>>(out, idx); });
    runo("onehot i32 rot16", per, [&](cudaStream_t s, int i) { oh_i32<<<256, 1024, 0, s>>>(out + (i % 16) * on, idx + (i % 16) * 16); });
    runo("onehot v4x2 rot16", per, [&](cudaStream_t s, int i) { oh_v4_multi<2><<<256, 128, 0, s>>>(out + (i % 16) * on, idx + (i % 16) * 16); });
    runo("onehot v4x1 rot16", per, [&](cudaStream_t s, int i) { oh_v4_multi<1><<<512, 128, 0, s>>>(out + (i % 16) * on, idx + (i % 16) * 16); });
    runo("onehot v4x4 rot16", per, [&](cudaStream_t s, int i) { oh_v4_multi<4><<<128, 128, 0, s>>>(out + (i % 16) * on, idx + (i % 16) * 16); });
  }
  return 0;
}
