import Foundation
import Testing

@testable import TPATKit

/// TVM's CUDA source as the plugins embed it.
struct KernelSourceTests {
    /// TVM's float16 preamble defines `max`, `min` and `make_half4` with external linkage: two
    /// float16 plugins could not be linked into one binary (found by the conformance run).
    @Test func helpersGetInternalLinkage() {
        let tvm = """
            #include <cuda_fp16.h>
            __device__ half max(half a, half b)
            {
              return __hgt(__half(a), __half(b)) ? a : b;
            }
            __host__ __device__ half4 make_half4(__half x, __half y, __half z, __half w) {
                return half4(x, y, z, w);
            }
            static inline __device__ __host__ unsigned
            __pack_half2(const half x, const half y) {
            extern "C" __global__ void __launch_bounds__(1024) tpat_p_kernel(half* __restrict__ a);
            extern "C" __global__ void __launch_bounds__(1024) tpat_p_kernel(half* __restrict__ a) {
              __device__ int not_top_level(int);
            }
            """
        let out = PluginModel.internalHelpers(tvm)
        #expect(out.contains("\nstatic __device__ half max(half a, half b)\n"))
        #expect(out.contains("\nstatic __host__ __device__ half4 make_half4("))
        #expect(out.contains("\nstatic inline __device__ __host__ unsigned\n"))
        #expect(out.contains("\nextern \"C\" __global__ void __launch_bounds__(1024) tpat_p_kernel(half* __restrict__ a);\n"))
        #expect(out.contains("\n  __device__ int not_top_level(int);\n"))
        #expect(!out.contains("static static"))
    }

    @Test func sourceWithoutHelpersIsUnchanged() {
        let tvm = "extern \"C\" __global__ void k(float* a) {\n  a[0] = 1;\n}\n"
        #expect(PluginModel.internalHelpers(tvm) == tvm)
    }
}
