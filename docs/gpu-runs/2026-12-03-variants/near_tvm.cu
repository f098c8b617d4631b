extern "C" __global__ void __launch_bounds__(256) tpat_resize_nearest_a_resize2d_tpat_kernel(float* __restrict__ out_buf_ptr, float* __restrict__ x_ptr) {
  int cse_v1 = (((int)blockIdx.x) * 256);
  int cse_v4 = ((((int)blockIdx.x) * 256) + ((int)threadIdx.x));
  int v = ((((int)blockIdx.x) * 256) + ((int)threadIdx.x));
  if (((((int)blockIdx.x) * 2) + (((int)threadIdx.x) >> 7)) < 275) {
    int cse_v5 = (((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200);
    int v_1 = (((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200);
    int cse_v6 = (((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200);
    int v_2 = (((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200);
    float cse_v8 = (((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/);
    float v_3 = (((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/);
    float cse_v9 = (((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/);
    float v_4 = (((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/);
    int v_5 = ((((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/)));
    int cse_v2 = (((int)blockIdx.y) * 8);
    int v_6 = (((int)blockIdx.y) * 8);
    int cse_v3 = (((int)blockIdx.y) * 17600);
    int cse_v7 = (((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x));
    out_buf_ptr[(((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x))] = x_ptr[(((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/)))];
    int v_7 = ((((int)blockIdx.y) * 8) + 1);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 35200)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 2200)];
    int v_8 = ((((int)blockIdx.y) * 8) + 2);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 70400)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 4400)];
    int v_9 = ((((int)blockIdx.y) * 8) + 3);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 105600)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 6600)];
    int v_10 = ((((int)blockIdx.y) * 8) + 4);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 140800)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 8800)];
    int v_11 = ((((int)blockIdx.y) * 8) + 5);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 176000)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 11000)];
    int v_12 = ((((int)blockIdx.y) * 8) + 6);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 211200)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 13200)];
    int v_13 = ((((int)blockIdx.y) * 8) + 7);
    out_buf_ptr[((((((int)blockIdx.y) * 281600) + (((int)blockIdx.x) * 256)) + ((int)threadIdx.x)) + 246400)] = x_ptr[((((((int)blockIdx.y) * 17600) + (((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) / 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.58p+5f/*4.300000e+01*/), 0x0p+0f/*0.000000e+00*/)) * 50)) + ((int)max(min(floorf((((float)(((((int)blockIdx.x) * 256) + ((int)threadIdx.x)) % 200)) / 0x1p+2f/*4.000000e+00*/)), 0x1.88p+5f/*4.900000e+01*/), 0x0p+0f/*0.000000e+00*/))) + 15400)];
  }
}
