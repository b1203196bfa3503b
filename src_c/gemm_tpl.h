/* C = alpha op(A) op(B) + beta C in row-major storage.
 * A row-major matrix is the column-major storage of its transpose, and C = op(A) op(B) <=>
 * C^T = op(B)^T op(A)^T, so the column-major call is gemm(tb, ta, n, m, k, B, A).
 * The BLAS's thread count is process-wide and left as set (`fastbp.set_num_threads`): changing
 * it around a product would change the products other threads run meanwhile. */
void FB(gemm_rowmajor)(int trans_a, int trans_b, int m, int n, int k, real alpha,
                       const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc)
{
    char ta = trans_a ? 'T' : 'N';
    char tb = trans_b ? 'T' : 'N';
    if (m == 0 || n == 0)
        return;
    if (k == 0) {  /* C = beta C: an empty product (a rank with no rows of a batch) */
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j)
                C[(ptrdiff_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(ptrdiff_t)i * ldc + j];
        return;
    }
    /* BLAS never writes through A or B; the Fortran ABI merely lacks const. */
#if FB_IS_FLOAT
    fb_blas.sgemm(&tb, &ta, &n, &m, &k, &alpha, (real *)B, &ldb, (real *)A, &lda, &beta, C, &ldc);
#else
    fb_blas.dgemm(&tb, &ta, &n, &m, &k, &alpha, (real *)B, &ldb, (real *)A, &lda, &beta, C, &ldc);
#endif
}
