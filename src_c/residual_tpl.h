/* y = x + f   (the output of y = x + f(x)); y may alias x or f. */
void FB(residual_add)(const real *x, const real *f, real *y, ptrdiff_t n)
{
    const int parallel = n >= FB_PARALLEL_MIN;
    (void)parallel;
#pragma omp parallel for if(parallel) schedule(static)
    for (ptrdiff_t i = 0; i < n; ++i)
        y[i] = x[i] + f[i];
}
