// Micro-benchmark of Resize nearest/linear and OneHot kernel variants (issue 6 experiments).
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)

#include "near_tvm.cu"
#include "lin_tvm.cu"
#include "oh_tvm.cu"

constexpr int NC = 1024, H = 44, W = 50, OH = 176, OW = 200, PLANE = OH * OW, INP = H * W;
constexpr int TOTAL = NC * PLANE;

__device__ __forceinline__ int near_src(int oh, int ow) {
  int ih = (int)fmaxf(fminf(floorf((float)oh / 4.0f), (float)(H - 1)), 0.f);
  int iw = (int)fmaxf(fminf(floorf((float)ow / 4.0f), (float)(W - 1)), 0.f);
  return ih * W + iw;
}
// one element per thread, flat index
__global__ void __launch_bounds__(256) near_flat1(float* __restrict__ out, const float* __restrict__ in) {
  int i = blockIdx.x * 256 + threadIdx.x;
  if (i >= TOTAL) return;
  int p = i / PLANE, t = i - p * PLANE, oh = t / OW, ow = t - oh * OW;
  out[i] = in[p * INP + near_src(oh, ow)];
}
template <bool CS>
__global__ void __launch_bounds__(256) near_flat4(float* __restrict__ out, const float* __restrict__ in) {
  int i = (blockIdx.x * 256 + threadIdx.x) * 4;
  if (i >= TOTAL) return;
  int p = i / PLANE, t = i - p * PLANE, oh = t / OW, ow = t - oh * OW;  // OW % 4 == 0
  const float* src = in + p * INP;
  float4 v = make_float4(src[near_src(oh, ow)], src[near_src(oh, ow + 1)], src[near_src(oh, ow + 2)], src[near_src(oh, ow + 3)]);
  if (CS) __stcs(reinterpret_cast<float4*>(out + i), v); else *reinterpret_cast<float4*>(out + i) = v;
}
// Triton-like: 128 threads, 1024 elements per block, each thread 2 x float4
template <bool CS>
__global__ void __launch_bounds__(128) near_flat8(float* __restrict__ out, const float* __restrict__ in) {
  #pragma unroll
  for (int k = 0; k < 2; ++k) {
    int i = blockIdx.x * 1024 + k * 512 + threadIdx.x * 4;
    if (i >= TOTAL) return;
    int p = i / PLANE, t = i - p * PLANE, oh = t / OW, ow = t - oh * OW;
    const float* src = in + p * INP;
    float4 v = make_float4(src[near_src(oh, ow)], src[near_src(oh, ow + 1)], src[near_src(oh, ow + 2)], src[near_src(oh, ow + 3)]);
    if (CS) __stcs(reinterpret_cast<float4*>(out + i), v); else *reinterpret_cast<float4*>(out + i) = v;
  }
}
// current TPAT layout (8 planes per thread), with streaming stores
__global__ void __launch_bounds__(256) near_p8_cs(float* __restrict__ out, const float* __restrict__ in) {
  int t = blockIdx.x * 256 + threadIdx.x;
  if (t >= PLANE) return;
  int oh = t / OW, ow = t - oh * OW, s = near_src(oh, ow);
  #pragma unroll
  for (int k = 0; k < 8; ++k) { int p = blockIdx.y * 8 + k; __stcs(out + p * PLANE + t, in[p * INP + s]); }
}
// 8 planes per thread, flat x over (plane group, position): blockIdx.x only
__global__ void __launch_bounds__(256) near_p8_1d(float* __restrict__ out, const float* __restrict__ in) {
  int g = blockIdx.x / 138, t = (blockIdx.x - g * 138) * 256 + threadIdx.x;
  if (t >= PLANE) return;
  int oh = t / OW, ow = t - oh * OW, s = near_src(oh, ow);
  #pragma unroll
  for (int k = 0; k < 8; ++k) { int p = g * 8 + k; out[p * PLANE + t] = in[p * INP + s]; }
}
// 2 planes x 4 positions with float4 streaming stores
__global__ void __launch_bounds__(256) near_p2v4_cs(float* __restrict__ out, const float* __restrict__ in) {
  int t = (blockIdx.x * 256 + threadIdx.x) * 4;
  if (t >= PLANE) return;
  int oh = t / OW, ow = t - oh * OW;
  int s0 = near_src(oh, ow), s1 = near_src(oh, ow + 1), s2 = near_src(oh, ow + 2), s3 = near_src(oh, ow + 3);
  #pragma unroll
  for (int k = 0; k < 2; ++k) {
    int p = blockIdx.y * 2 + k; const float* src = in + p * INP;
    __stcs(reinterpret_cast<float4*>(out + p * PLANE + t), make_float4(src[s0], src[s1], src[s2], src[s3]));
  }
}

// ---- linear, half_pixel, ONNX Runtime arithmetic
struct LinCoord { int off, dy, dx; float ly, lx; };
__device__ __forceinline__ LinCoord lin_coord(int oh, int ow) {
  float sy = ((float)oh + 0.5f) / 4.0f - 0.5f, sx = ((float)ow + 0.5f) / 4.0f - 0.5f;
  float yc = fmaxf(fminf(sy, (float)(H - 1)), 0.f), xc = fmaxf(fminf(sx, (float)(W - 1)), 0.f);
  int y0 = (int)yc, x0 = (int)xc;
  return {y0 * W + x0, y0 < H - 1 ? W : 0, x0 < W - 1 ? 1 : 0, yc - (float)y0, xc - (float)x0};
}
__device__ __forceinline__ float lin_val(const float* __restrict__ src, LinCoord c) {
  float v00 = __ldg(src + c.off), v01 = __ldg(src + c.off + c.dx), v10 = __ldg(src + c.off + c.dy), v11 = __ldg(src + c.off + c.dy + c.dx);
  float top = v00 * (1.f - c.lx) + v01 * c.lx, bot = v10 * (1.f - c.lx) + v11 * c.lx;
  return top * (1.f - c.ly) + bot * c.ly;
}
__global__ void __launch_bounds__(256) lin_p8_cs(float* __restrict__ out, const float* __restrict__ in) {
  int t = blockIdx.x * 256 + threadIdx.x;
  if (t >= PLANE) return;
  int oh = t / OW, ow = t - oh * OW; LinCoord c = lin_coord(oh, ow);
  #pragma unroll
  for (int k = 0; k < 8; ++k) { int p = blockIdx.y * 8 + k; __stcs(out + p * PLANE + t, lin_val(in + p * INP, c)); }
}
template <int PL, bool CS>
__global__ void __launch_bounds__(256) lin_pv4(float* __restrict__ out, const float* __restrict__ in) {
  int t = (blockIdx.x * 256 + threadIdx.x) * 4;
  if (t >= PLANE) return;
  int oh = t / OW, ow = t - oh * OW;
  LinCoord c0 = lin_coord(oh, ow), c1 = lin_coord(oh, ow + 1), c2 = lin_coord(oh, ow + 2), c3 = lin_coord(oh, ow + 3);
  #pragma unroll
  for (int k = 0; k < PL; ++k) {
    int p = blockIdx.y * PL + k; const float* src = in + p * INP;
    float4 v = make_float4(lin_val(src, c0), lin_val(src, c1), lin_val(src, c2), lin_val(src, c3));
    if (CS) __stcs(reinterpret_cast<float4*>(out + p * PLANE + t), v); else *reinterpret_cast<float4*>(out + p * PLANE + t) = v;
  }
}
template <bool CS>
__global__ void __launch_bounds__(256) lin_flat4(float* __restrict__ out, const float* __restrict__ in) {
  int i = (blockIdx.x * 256 + threadIdx.x) * 4;
  if (i >= TOTAL) return;
  int p = i / PLANE, t = i - p * PLANE, oh = t / OW, ow = t - oh * OW;
  const float* src = in + p * INP;
  float4 v = make_float4(lin_val(src, lin_coord(oh, ow)), lin_val(src, lin_coord(oh, ow + 1)), lin_val(src, lin_coord(oh, ow + 2)), lin_val(src, lin_coord(oh, ow + 3)));
  if (CS) __stcs(reinterpret_cast<float4*>(out + i), v); else *reinterpret_cast<float4*>(out + i) = v;
}

// ---- OneHot depth 16384, 16 indices (int64), float out
constexpr int OHN = 16, DEPTH = 16384;
__global__ void __launch_bounds__(256) oh_v4(float* __restrict__ out, const int64_t* __restrict__ idx) {
  int i = (blockIdx.x * 256 + threadIdx.x) * 4;  // 64 blocks per row
  int r = i / DEPTH, d = i - r * DEPTH;
  int64_t v = idx[r]; int h = (int)(v < 0 ? v + DEPTH : v) - d;
  *reinterpret_cast<float4*>(out + i) = make_float4(h == 0, h == 1, h == 2, h == 3);
}
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

static float time_us(const std::function<void(cudaStream_t)>& launch, int per_graph = 20, int reps = 25) {
  cudaStream_t s; CK(cudaStreamCreate(&s));
  launch(s); CK(cudaStreamSynchronize(s));
  cudaGraph_t g; cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < per_graph; ++i) launch(s);
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
  printf("GPU %s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  // floor: copy kernel bandwidth over 2 GiB buffers
  size_t cn = (size_t)1 << 27; float4 *ca, *cb; CK(cudaMalloc(&ca, cn * 16)); CK(cudaMalloc(&cb, cn * 16));
  CK(cudaMemset(ca, 0, cn * 16));
  float tc = time_us([&](cudaStream_t s) { copy4<<<prop.multiProcessorCount * 8, 512, 0, s>>>(cb, ca, cn); }, 2, 9);
  double bw = 2.0 * cn * 16 / (tc * 1e-6);
  printf("copy kernel %.0f GB/s\n", bw / 1e9);
  CK(cudaFree(ca)); CK(cudaFree(cb));

  float *in, *ref, *out; int64_t* idx;
  CK(cudaMalloc(&in, (size_t)NC * INP * 4)); CK(cudaMalloc(&ref, (size_t)TOTAL * 4)); CK(cudaMalloc(&out, (size_t)TOTAL * 4));
  { std::vector<float> h((size_t)NC * INP); for (size_t i = 0; i < h.size(); ++i) h[i] = (float)((i * 2654435761u) % 1000) / 1000.f;
    CK(cudaMemcpy(in, h.data(), h.size() * 4, cudaMemcpyHostToDevice)); }
  double floor_us = ((double)NC * INP * 4 + (double)TOTAL * 4) / bw * 1e6;
  printf("resize floor %.1f us\n", floor_us);
  auto run = [&](const char* name, const std::function<void(cudaStream_t)>& k) {
    CK(cudaMemset(out, 0xff, (size_t)TOTAL * 4)); k(0); CK(cudaDeviceSynchronize());
    double d = maxdiff(out, ref, TOTAL);
    float t = time_us(k);
    printf("%-22s %7.1f us  %4.0f%% floor  maxdiff %.2e\n", name, t, 100 * floor_us / t, d);
  };
  dim3 g8(138, NC / 8);
  tpat_resize_nearest_a_resize2d_tpat_kernel<<<g8, 256>>>(ref, in); CK(cudaDeviceSynchronize());
  run("near tvm (p8)", [&](cudaStream_t s) { tpat_resize_nearest_a_resize2d_tpat_kernel<<<g8, 256, 0, s>>>(out, in); });
  run("near p8 cs", [&](cudaStream_t s) { near_p8_cs<<<g8, 256, 0, s>>>(out, in); });
  run("near p8 1d", [&](cudaStream_t s) { near_p8_1d<<<138 * NC / 8, 256, 0, s>>>(out, in); });
  run("near p2 v4 cs", [&](cudaStream_t s) { near_p2v4_cs<<<dim3(35, NC / 2), 256, 0, s>>>(out, in); });
  run("near flat1", [&](cudaStream_t s) { near_flat1<<<TOTAL / 256, 256, 0, s>>>(out, in); });
  run("near flat4", [&](cudaStream_t s) { near_flat4<false><<<TOTAL / 1024, 256, 0, s>>>(out, in); });
  run("near flat4 cs", [&](cudaStream_t s) { near_flat4<true><<<TOTAL / 1024, 256, 0, s>>>(out, in); });
  run("near flat8 (triton)", [&](cudaStream_t s) { near_flat8<false><<<TOTAL / 1024, 128, 0, s>>>(out, in); });
  run("near flat8 cs", [&](cudaStream_t s) { near_flat8<true><<<TOTAL / 1024, 128, 0, s>>>(out, in); });

  tpat_resize_linear_a_resize2d_tpat_kernel<<<g8, 256>>>(ref, in); CK(cudaDeviceSynchronize());
  run("lin tvm (p8)", [&](cudaStream_t s) { tpat_resize_linear_a_resize2d_tpat_kernel<<<g8, 256, 0, s>>>(out, in); });
  run("lin p8 cs", [&](cudaStream_t s) { lin_p8_cs<<<g8, 256, 0, s>>>(out, in); });
  run("lin p1 v4", [&](cudaStream_t s) { lin_pv4<1, false><<<dim3(35, NC), 256, 0, s>>>(out, in); });
  run("lin p1 v4 cs", [&](cudaStream_t s) { lin_pv4<1, true><<<dim3(35, NC), 256, 0, s>>>(out, in); });
  run("lin p2 v4 cs", [&](cudaStream_t s) { lin_pv4<2, true><<<dim3(35, NC / 2), 256, 0, s>>>(out, in); });
  run("lin p4 v4 cs", [&](cudaStream_t s) { lin_pv4<4, true><<<dim3(35, NC / 4), 256, 0, s>>>(out, in); });
  run("lin flat4", [&](cudaStream_t s) { lin_flat4<false><<<TOTAL / 1024, 256, 0, s>>>(out, in); });
  run("lin flat4 cs", [&](cudaStream_t s) { lin_flat4<true><<<TOTAL / 1024, 256, 0, s>>>(out, in); });

  // OneHot
  CK(cudaMalloc(&idx, OHN * 8));
  { int64_t h[OHN]; for (int i = 0; i < OHN; ++i) h[i] = (i * 7919) % DEPTH - (i % 3 == 0 ? DEPTH : 0); CK(cudaMemcpy(idx, h, sizeof h, cudaMemcpyHostToDevice)); }
  size_t on = (size_t)OHN * DEPTH;
  tpat_onehot_fused_less_add_where_one_hot_cast_kernel<<<256, 1024>>>(ref, idx); CK(cudaDeviceSynchronize());
  auto runo = [&](const char* name, const std::function<void(cudaStream_t)>& k) {
    CK(cudaMemset(out, 0xff, on * 4)); k(0); CK(cudaDeviceSynchronize());
    double d = maxdiff(out, ref, on);
    printf("%-22s %7.2f us  maxdiff %.2e\n", name, time_us(k, 50, 25), d);
  };
  runo("onehot tvm", [&](cudaStream_t s) { tpat_onehot_fused_less_add_where_one_hot_cast_kernel<<<256, 1024, 0, s>>>(out, idx); });
  runo("onehot i32 1024", [&](cudaStream_t s) { oh_i32<<<256, 1024, 0, s>>>(out, idx); });
  runo("onehot v4 256", [&](cudaStream_t s) { oh_v4<<<256, 256, 0, s>>>(out, idx); });
  runo("onehot v4x2 128", [&](cudaStream_t s) { oh_v4_multi<2><<<256, 128, 0, s>>>(out, idx); });
  runo("onehot v4x4 128", [&](cudaStream_t s) { oh_v4_multi<4><<<128, 128, 0, s>>>(out, idx); });
  runo("onehot v4x8 128", [&](cudaStream_t s) { oh_v4_multi<8><<<64, 128, 0, s>>>(out, idx); });
  runo("empty-ish (v4x8 on 1 blk)", [&](cudaStream_t s) { oh_v4_multi<1><<<1, 128, 0, s>>>(out, idx); });
  return 0;
}
