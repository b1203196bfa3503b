/* C = alpha op(A) op(B) + beta C in row-major storage.
 * A row-major matrix is the column-major storage of its transpose, and C = op(A) op(B) <=>
 * C^T = op(B)^T op(A)^T, so the column-major call is gemm(tb, ta, n, m, k, B, A).
 * A product below FB_GEMM_PARALLEL_MIN runs on one BLAS thread; the BLAS's own thread count is
 * put back afterwards. */
void FB(gemm_rowmajor)(int trans_a, int trans_b, int m, int n, int k, real alpha,
                       const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc)
{
    char ta = trans_a ? 'T' : 'N';
    char tb = trans_b ? 'T' : 'N';
    if (m == 0 || n == 0)
        return;
    const int small = (double)m * n * k < FB_GEMM_PARALLEL_MIN;
    const int threads = small && fb_blas.get_threads ? fb_blas.get_threads() : 1;
    if (threads > 1)
        fb_blas.set_threads(1);
    /* BLAS never writes through A or B; the Fortran ABI merely lacks const. */
#if FB_IS_FLOAT
    fb_blas.sgemm(&tb, &ta, &n, &m, &k, &alpha, (real *)B, &ldb, (real *)A, &lda, &beta, C, &ldc);
#else
    fb_blas.dgemm(&tb, &ta, &n, &m, &k, &alpha, (real *)B, &ldb, (real *)A, &lda, &beta, C, &ldc);
#endif
    if (threads > 1)
        fb_blas.set_threads(threads);
}
