//===- HostDevice.h - functions the host and the device both compile ===//
//
// PIPERT_HOST_DEVICE marks a function that nvcc compiles for both sides
// (the bf16 rounding, the norms' lane order) and a host compiler as plain
// C++, so the harness and the CPU emulation share the kernels' definitions.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_KERNELS_CUDA_HOSTDEVICE_H
#define PIPERT_KERNELS_CUDA_HOSTDEVICE_H

#if defined(__CUDACC__)
#define PIPERT_HOST_DEVICE __host__ __device__
#else
#define PIPERT_HOST_DEVICE
#endif

#endif // PIPERT_KERNELS_CUDA_HOSTDEVICE_H
