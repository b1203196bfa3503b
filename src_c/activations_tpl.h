/* sigma(z) = 1 / (1 + e^-z), evaluated so that exp never overflows. */
static inline real FB(sigmoid)(real z)
{
    if (z >= 0) {
        return 1 / (1 + exp(-z));
    }
    real e = exp(z);
    return e / (1 + e);
}

/* Applies EXPR (of x = z + bias) to every element of Z, rows in parallel above the threshold. */
#define FB_MAP_ROWS(EXPR)                                                                       \
    FB_FOR(parallel, i, rows,                                                                   \
        real *restrict z = Z + i * cols;                                                        \
        for (ptrdiff_t j = 0; j < cols; ++j) {                                                  \
            const real x = bias ? z[j] + bias[j] : z[j];                                        \
            z[j] = (EXPR);                                                                      \
        })

/* Z = f(Z + bias), in place.  bias may be NULL.
 *   identity f(z) = z         sigmoid f(z) = 1 / (1 + e^-z)      tanh f(z) = tanh z
 *   relu f(z) = max(z, 0)     leaky_relu f(z) = z if z > 0 else slope * z
 * NaN propagates through every activation. */
void FB(bias_activation_forward)(real *restrict Z, const real *restrict bias, ptrdiff_t rows,
                                 ptrdiff_t cols, fb_activation act, real slope)
{
    const int parallel = rows * cols >= FB_PARALLEL_MIN;
    switch (act) {
    case FB_IDENTITY:
        if (bias)
            FB_MAP_ROWS(x);
        break;
    case FB_SIGMOID:
        FB_MAP_ROWS(FB(sigmoid)(x));
        break;
    case FB_TANH:
        FB_MAP_ROWS(tanh(x));
        break;
    case FB_RELU:
        FB_MAP_ROWS(x < 0 ? 0 : x);
        break;
    case FB_LEAKY_RELU:
        FB_MAP_ROWS(x < 0 ? slope * x : x);
        break;
    }
}
#undef FB_MAP_ROWS

/* Applies EXPR (of d = dA[i], a = A[i]) to every element; dZ may alias dA. */
#define FB_MAP(EXPR)                                                                            \
    FB_FOR(parallel, i, n,                                                                      \
        const real d = dA[i], a = A[i];                                                         \
        (void)a;                                                                                \
        dZ[i] = (EXPR);)

/* dZ = dA * f'(z), with f' written through the output a = f(z) that forward kept:
 *   identity 1    sigmoid a (1 - a)    tanh 1 - a^2    relu [a > 0]    leaky_relu a > 0 ? 1 : slope
 * (for relu-family the derivative at z = 0 is taken as the left one, as PyTorch does). */
void FB(activation_backward)(const real *dA, const real *A, real *dZ, ptrdiff_t n,
                             fb_activation act, real slope)
{
    const int parallel = n >= FB_PARALLEL_MIN;
    switch (act) {
    case FB_IDENTITY:
        if (dZ != dA)
            memcpy(dZ, dA, (size_t)n * sizeof(real));
        break;
    case FB_SIGMOID:
        FB_MAP(d * a * (1 - a));
        break;
    case FB_TANH:
        FB_MAP(d * (1 - a * a));
        break;
    case FB_RELU:
        FB_MAP(a > 0 ? d : 0);
        break;
    case FB_LEAKY_RELU:
        FB_MAP(a > 0 ? d : slope * d);
        break;
    }
}
#undef FB_MAP
