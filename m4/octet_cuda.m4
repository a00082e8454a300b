# OCTET_CHECK_CUDA: optional CUDA backends.
#   --with-cuda=check (default)  build the CUDA twins when nvcc, cudart and cuBLAS are all found
#   --with-cuda / --with-cuda=DIR  require them; fail loudly if any is missing
#   --without-cuda               CPU only
# Defines HAVE_CUDA and the conditional HAVE_CUDA (reached on every path), and substitutes
# NVCC, NVCC_ARCH, CUDA_CPPFLAGS, CUDA_LDFLAGS, CUDA_LIBS.
AC_DEFUN([OCTET_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@], [build the CUDA backends (default: check)])],
    [], [with_cuda=check])
  AC_ARG_VAR([NVCC], [CUDA compiler])
  AC_ARG_VAR([NVCCFLAGS], [extra flags for nvcc])
  AC_ARG_WITH([nvcc-gencode],
    [AS_HELP_STRING([--with-nvcc-gencode=FLAGS], [nvcc -gencode flags (default: sm_80 and sm_90)])],
    [NVCC_ARCH="$withval"],
    [NVCC_ARCH="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90"])
  have_cuda=no
  cuda_missing=""
  AS_IF([test "x$with_cuda" != xno], [
    cuda_dir=""
    AS_CASE([$with_cuda],
      [yes|check], [AS_IF([test -d /usr/local/cuda], [cuda_dir=/usr/local/cuda])],
      [cuda_dir="$with_cuda"])
    cuda_path="$PATH"
    AS_IF([test -n "$cuda_dir"], [
      CUDA_CPPFLAGS="-I$cuda_dir/include"
      CUDA_LDFLAGS="-L$cuda_dir/lib64 -Wl,-rpath,$cuda_dir/lib64"
      cuda_path="$PATH:$cuda_dir/bin"])
    AS_IF([test "x$NVCC" = x], [AC_PATH_PROG([NVCC], [nvcc], [no], [$cuda_path])])
    AS_IF([test "x$NVCC" = xno], [cuda_missing="nvcc"])
    save_CPPFLAGS=$CPPFLAGS; save_LDFLAGS=$LDFLAGS; save_LIBS=$LIBS
    CPPFLAGS="$CPPFLAGS $CUDA_CPPFLAGS"; LDFLAGS="$LDFLAGS $CUDA_LDFLAGS"
    AS_IF([test -z "$cuda_missing"],
      [AC_CHECK_HEADER([cuda_runtime.h], [], [cuda_missing="cuda_runtime.h"])])
    AS_IF([test -z "$cuda_missing"],
      [AC_CHECK_LIB([cudart], [cudaGetDeviceCount], [], [cuda_missing="libcudart"])])
    AS_IF([test -z "$cuda_missing"],
      [AC_CHECK_LIB([cublas], [cublasCreate_v2], [], [cuda_missing="libcublas"])])
    CPPFLAGS=$save_CPPFLAGS; LDFLAGS=$save_LDFLAGS; LIBS=$save_LIBS
    AS_IF([test -z "$cuda_missing"], [have_cuda=yes],
      [AS_IF([test "x$with_cuda" != xcheck],
        [AC_MSG_ERROR([--with-cuda was given but $cuda_missing was not found])],
        [AC_MSG_NOTICE([CUDA not found ($cuda_missing missing): building the CPU backend only])])])
  ])
  AS_IF([test "x$have_cuda" = xyes], [
    CUDA_LIBS="-lcublas -lcudart -lstdc++"
    AC_DEFINE([HAVE_CUDA], [1], [Define if the CUDA backends are built])])
  AC_SUBST([CUDA_CPPFLAGS])
  AC_SUBST([CUDA_LDFLAGS])
  AC_SUBST([CUDA_LIBS])
  AC_SUBST([NVCC_ARCH])
  AM_CONDITIONAL([HAVE_CUDA], [test "x$have_cuda" = xyes])
  AC_MSG_NOTICE([CUDA backends: $have_cuda])
])
