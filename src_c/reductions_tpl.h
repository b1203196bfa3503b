/* db[j] = sum_i dZ[i, j]   (db += ... when accumulate).
 * Threads split the columns, never the rows, and each column is summed in row order in double:
 * the result does not depend on the thread count. */
void FB(bias_grad)(const real *restrict dZ, ptrdiff_t rows, ptrdiff_t cols, real *restrict db,
                   int accumulate)
{
    const ptrdiff_t blocks = (cols + FB_COLUMN_BLOCK - 1) / FB_COLUMN_BLOCK;
    const int parallel = blocks > 1 && rows * cols >= FB_PARALLEL_MIN;
    FB_FOR(parallel, b, blocks,
        const ptrdiff_t j0 = b * FB_COLUMN_BLOCK;
        const ptrdiff_t width = cols - j0 < FB_COLUMN_BLOCK ? cols - j0 : FB_COLUMN_BLOCK;
        double acc[FB_COLUMN_BLOCK] = {0};
        for (ptrdiff_t i = 0; i < rows; ++i) {
            const real *restrict row = dZ + i * cols + j0;
            for (ptrdiff_t j = 0; j < width; ++j)
                acc[j] += row[j];
        }
        for (ptrdiff_t j = 0; j < width; ++j)
            db[j0 + j] = accumulate ? (real)(db[j0 + j] + acc[j]) : (real)acc[j];
    );
}

/* sum_i x[i]^2, accumulated in double in fixed chunks. */
double FB(sum_squares)(const real *x, ptrdiff_t n)
{
    double total;
    FB_CHUNKED_SUM(total, n, n, i, acc, acc += (double)x[i] * x[i];);
    return total;
}

/* The L2 penalty of weights p with gradients g: g += c p, and returns sum p^2 (one pass). The
 * squares are summed 8 at a time as a tree, so that the sum is not one chain of dependent
 * additions (which ran at a quarter of the memory's speed). */
double FB(add_l2_gradient)(const real *restrict p, real *restrict g, ptrdiff_t n, double c)
{
    const real c_ = (real)c;
    const ptrdiff_t groups = n / 8;
    double total;
    FB_CHUNKED_SUM(total, groups, n, k, acc, {
        double sq[8];
        for (int j = 0; j < 8; ++j) {
            const ptrdiff_t i = 8 * k + j;
            sq[j] = (double)p[i] * p[i];
            g[i] += c_ * p[i];
        }
        acc += ((sq[0] + sq[1]) + (sq[2] + sq[3])) + ((sq[4] + sq[5]) + (sq[6] + sq[7]));
    });
    for (ptrdiff_t i = 8 * groups; i < n; ++i) {
        total += (double)p[i] * p[i];
        g[i] += c_ * p[i];
    }
    return total;
}

/* x *= factor */
void FB(scale)(real *x, ptrdiff_t n, real factor)
{
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        x[i] *= factor;
    );
}

/* norm = ||g||_2; g *= max_norm / (norm + 1e-6) when that factor is below 1 (as
 * torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. */
double FB(clip_grad_norm)(real *g, ptrdiff_t n, double max_norm)
{
    const double norm = sqrt(FB(sum_squares)(g, n));
    const double factor = max_norm / (norm + 1e-6);
    if (factor < 1.0)
        FB(scale)(g, n, (real)factor);
    return norm;
}

/* out[i, :] = src[indices[i], :]  (rows of `cols` elements) */
void FB(gather_rows)(const real *restrict src, ptrdiff_t cols, const int64_t *restrict indices,
                     ptrdiff_t n, real *restrict out)
{
    const int parallel = n * cols >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        memcpy(out + i * cols, src + indices[i] * cols, (size_t)cols * sizeof(real));
    );
}

/* g = min(max(g, -c), c) elementwise, as torch.nn.utils.clip_grad_value_ (NaN stays NaN). */
void FB(clip_grad_value)(real *g, ptrdiff_t n, real c)
{
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        const real x = g[i];
        g[i] = x < -c ? -c : (x > c ? c : x);
    );
}

/* active[j] = active[j] OR (A[i, j] > 0 for some row i): accumulates, over batches, which units
 * of an activation output (rows, cols) were ever positive. Threads split the columns. */
void FB(mark_active_units)(const real *restrict A, ptrdiff_t rows, ptrdiff_t cols,
                           uint8_t *restrict active)
{
    const ptrdiff_t blocks = (cols + FB_COLUMN_BLOCK - 1) / FB_COLUMN_BLOCK;
    const int parallel = blocks > 1 && rows * cols >= FB_PARALLEL_MIN;
    FB_FOR(parallel, b, blocks,
        const ptrdiff_t j0 = b * FB_COLUMN_BLOCK;
        const ptrdiff_t width = cols - j0 < FB_COLUMN_BLOCK ? cols - j0 : FB_COLUMN_BLOCK;
        uint8_t seen[FB_COLUMN_BLOCK];
        for (ptrdiff_t j = 0; j < width; ++j)
            seen[j] = active[j0 + j] != 0;
        for (ptrdiff_t i = 0; i < rows; ++i) {
            const real *restrict row = A + i * cols + j0;
            for (ptrdiff_t j = 0; j < width; ++j)
                seen[j] |= row[j] > 0;
        }
        for (ptrdiff_t j = 0; j < width; ++j)
            active[j0 + j] = seen[j];
    );
}
