extern "C" __global__ void __launch_bounds__(1024) tpat_onehot_fused_less_add_where_one_hot_cast_kernel(float* __restrict__ compute_intermediate_ptr, int64_t* __restrict__ input0_ptr) {
  int cse_v1 = (((int)blockIdx.x) >> 4);
  int64_t condval;
  if ((int64_t)0 < ((int64_t)(input0_ptr[(((int)blockIdx.x) >> 4)] < (int64_t)0))) {
    condval = (input0_ptr[(((int)blockIdx.x) >> 4)] + (int64_t)16384);
  } else {
    condval = input0_ptr[(((int)blockIdx.x) >> 4)];
  }
  compute_intermediate_ptr[((((int)blockIdx.x) * 1024) + ((int)threadIdx.x))] = ((float)((condval == (((((int64_t)((int)blockIdx.x)) & (int64_t)15) * (int64_t)1024) + ((int64_t)((int)threadIdx.x)))) ? 1.000000000000000 : 0.000000000000000));
}
