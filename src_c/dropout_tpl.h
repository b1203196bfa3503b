/* y = x * keep / (1 - p), the mask `keep` a pure function of (seed, draw, element index):
 *   stream = mix64(seed ^ mix64(draw))
 *   h_k    = mix64(stream + (k + 1) * 0x9E3779B97F4A7C15)       (splitmix64's k-th output)
 *   u_i    = low 32 bits of h_{i / 2} for even i, high 32 bits for odd i
 *   keep_i = u_i >= ceil(p 2^32)                                  (probability 1 - p)
 * The same (seed, draw) gives the same mask whatever the thread count, so forward and backward
 * (dX = dY * keep / (1 - p)) are this one function. y may alias x. */
void FB(dropout)(const real *x, real *y, ptrdiff_t n, double p, uint64_t seed, uint64_t draw)
{
    const uint64_t stream = fb_mix64(seed ^ fb_mix64(draw));
    const uint64_t threshold = (uint64_t)ceil(p * 4294967296.0);
    /* factor[keep]: an indexed load, not a branch (the mask is random: branches mispredict). */
    const real factor[2] = {0, (real)(1.0 / (1.0 - p))};
    const ptrdiff_t pairs = n / 2;
    FB_FOR(n >= FB_PARALLEL_MIN, k, pairs,
        const uint64_t h = fb_mix64(stream + (uint64_t)(k + 1) * FB_GOLDEN_GAMMA);
        y[2 * k] = x[2 * k] * factor[(h & 0xFFFFFFFFu) >= threshold];
        y[2 * k + 1] = x[2 * k + 1] * factor[(h >> 32) >= threshold];
    );
    if (n % 2) {
        const uint64_t h = fb_mix64(stream + (uint64_t)(pairs + 1) * FB_GOLDEN_GAMMA);
        y[n - 1] = x[n - 1] * factor[(h & 0xFFFFFFFFu) >= threshold];
    }
}

/* The mask of element (positions[i], j) of a (?, cols) batch for element (i, j) of x: a rank's
 * rows of a global batch get the masks one process gives them there. Element by element, so
 * about half the speed of `dropout`. */
void FB(dropout_rows)(const real *x, real *y, ptrdiff_t rows, ptrdiff_t cols,
                      const int64_t *positions, double p, uint64_t seed, uint64_t draw)
{
    const uint64_t stream = fb_mix64(seed ^ fb_mix64(draw));
    const uint64_t threshold = (uint64_t)ceil(p * 4294967296.0);
    const real factor[2] = {0, (real)(1.0 / (1.0 - p))};
    FB_FOR(rows * cols >= FB_PARALLEL_MIN, i, rows,
        const uint64_t first = (uint64_t)positions[i] * (uint64_t)cols;
        for (ptrdiff_t j = 0; j < cols; ++j)
            y[i * cols + j] = x[i * cols + j] *
                factor[fb_mask_word(stream, first + (uint64_t)j) >= threshold];
    );
}
