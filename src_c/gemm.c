/* Row-major GEMM over SciPy's Fortran ?gemm, with no transposed copies. */
#include "fastbp_core.h"

fb_blas_table fb_blas = {0, 0};

void fb_set_blas(fb_sgemm_fn sgemm, fb_dgemm_fn dgemm)
{
    fb_blas.sgemm = sgemm;
    fb_blas.dgemm = dgemm;
}

#define FB_TEMPLATE "gemm_tpl.h"
#include "fb_instantiate.h"
