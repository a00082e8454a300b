/* hd.h: portability macros for code that both the C compiler and nvcc compile.
 *
 * The per-element math of every op and optimizer lives once, in a *_math.h header of
 * OCTET_HD functions: plain `static inline` for the C compiler, `__host__ __device__` under
 * nvcc. We guard on __CUDACC__ (set in both nvcc passes), not __CUDA_ARCH__ (device pass only).
 * Headers included from both C and .cu files wrap their prototypes in OCTET_EXTERN_C_BEGIN/END,
 * so that C callers link against unmangled names. Keep such headers in the common subset of
 * C11 and C++: no designated initialisers, no implicit void* conversions. */
#ifndef OCTET_HD_H
#define OCTET_HD_H

#ifdef __CUDACC__
#  define OCTET_HD static inline __host__ __device__
#else
#  define OCTET_HD static inline
#endif

#ifdef __cplusplus
#  define OCTET_EXTERN_C_BEGIN extern "C" {
#  define OCTET_EXTERN_C_END   }
#else
#  define OCTET_EXTERN_C_BEGIN
#  define OCTET_EXTERN_C_END
#endif

#endif
