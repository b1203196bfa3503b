/* y = x + f   (the output of y = x + f(x)); y may alias x or f. */
void FB(residual_add)(const real *x, const real *f, real *y, ptrdiff_t n)
{
    FB_FOR(n >= FB_PARALLEL_MIN, i, n,
        y[i] = x[i] + f[i];
    );
}
