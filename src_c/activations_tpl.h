/* sigma(z) = 1 / (1 + e^-z), evaluated so that exp never overflows. */
static inline real FB(sigmoid)(real z)
{
    if (z >= 0) {
        return 1 / (1 + exp(-z));
    }
    real e = exp(z);
    return e / (1 + e);
}

/* softplus(z) = log(1 + e^(beta z)) / beta, or z where beta z > threshold (as torch).
 * log(1 + e^y) = max(y, 0) + log1p(e^-|y|) never overflows, whatever the threshold. */
static inline real FB(softplus)(real z, real beta, real threshold)
{
    const real y = beta * z;
    if (y > threshold)
        return z;
    return (fmax(y, (real)0) + log1p(exp(-fabs(y)))) / beta;
}

/* Constants of GELU: 1/sqrt(2), 1/sqrt(2 pi), sqrt(2/pi) and the cubic coefficient of its tanh
 * approximation. */
#define FB_INV_SQRT2 ((real)0.70710678118654752440)
#define FB_INV_SQRT_2PI ((real)0.39894228040143267794)
#define FB_SQRT_2_OVER_PI ((real)0.79788456080286535588)
#define FB_GELU_CUBIC ((real)0.044715)

/* gelu(z) = z Phi(z) = z erfc(-z / sqrt 2) / 2: erfc keeps the tiny values of z << 0 that
 * 1 + erf(z / sqrt 2) would round to 0. */
static inline real FB(gelu)(real z)
{
    return (real)0.5 * z * erfc(-z * FB_INV_SQRT2);
}

/* gelu'(z) = Phi(z) + z phi(z),  phi(z) = e^(-z^2 / 2) / sqrt(2 pi). */
static inline real FB(gelu_derivative)(real z)
{
    return (real)0.5 * erfc(-z * FB_INV_SQRT2) + z * FB_INV_SQRT_2PI * exp((real)-0.5 * z * z);
}

/* gelu_tanh(z) = z (1 + tanh u) / 2,  u = sqrt(2/pi) (z + 0.044715 z^3).
 * Evaluated as z sigma(2u) (the same function: (1 + tanh u) / 2 = sigma(2u)) with
 * e = e^(-2|u|):  sigma(2u) = 1 / (1 + e) for u >= 0, e / (1 + e) for u < 0.  Unlike 1 + tanh u,
 * this keeps full relative precision where tanh u is close to -1. */
static inline real FB(gelu_tanh)(real z)
{
    const real u = FB_SQRT_2_OVER_PI * (z + FB_GELU_CUBIC * z * z * z);
    const real e = exp(-2 * fabs(u));
    return z * (u >= 0 ? 1 : e) / (1 + e);
}

/* gelu_tanh'(z) = s + 2 z s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 z^2),  s = sigma(2u), where
 * s (1 - s) = e / (1 + e)^2 = sech^2(u) / 4 has no cancellation.  Where that factor is exactly 0
 * the second term is 0 (not 0 * inf when z^2 overflows). */
static inline real FB(gelu_tanh_derivative)(real z)
{
    const real u = FB_SQRT_2_OVER_PI * (z + FB_GELU_CUBIC * z * z * z);
    const real e = exp(-2 * fabs(u));
    const real s = (u >= 0 ? 1 : e) / (1 + e);
    const real s_times_1_minus_s = e / ((1 + e) * (1 + e));
    if (s_times_1_minus_s == 0)
        return s;
    return s + 2 * z * s_times_1_minus_s * FB_SQRT_2_OVER_PI * (1 + 3 * FB_GELU_CUBIC * z * z);
}

/* Applies EXPR (of x = z + bias) to every element of Z, rows in parallel above the threshold.
 * In place when A == Z; otherwise Z keeps x = z + bias and A receives EXPR. */
#define FB_MAP_ROWS(EXPR)                                                                       \
    do {                                                                                        \
        if (A == Z) {                                                                           \
            FB_FOR(parallel, i, rows,                                                           \
                real *restrict z = Z + i * cols;                                                \
                for (ptrdiff_t j = 0; j < cols; ++j) {                                          \
                    const real x = bias ? z[j] + bias[j] : z[j];                                \
                    z[j] = (EXPR);                                                              \
                });                                                                             \
        } else {                                                                                \
            FB_FOR(parallel, i, rows,                                                           \
                real *restrict z = Z + i * cols;                                                \
                real *restrict a = A + i * cols;                                                \
                for (ptrdiff_t j = 0; j < cols; ++j) {                                          \
                    const real x = bias ? z[j] + bias[j] : z[j];                                \
                    if (bias)                                                                   \
                        z[j] = x;                                                               \
                    a[j] = (EXPR);                                                              \
                });                                                                             \
        }                                                                                       \
    } while (0)

/* A = f(Z + bias).  bias may be NULL.  A == Z computes in place; a separate A (not overlapping Z)
 * leaves Z holding Z + bias, the pre-activation that backward reads when
 * fb_activation_needs_input(act).
 *   identity f(z) = z         sigmoid f(z) = 1 / (1 + e^-z)      tanh f(z) = tanh z
 *   relu f(z) = max(z, 0)     leaky_relu f(z) = z if z > 0 else slope * z
 *   elu f(z) = z if z > 0 else alpha (e^z - 1)
 *   softplus f(z) = log(1 + e^(beta z)) / beta, or z where beta z > threshold
 *   gelu f(z) = z Phi(z)      gelu_tanh f(z) = z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2
 * NaN propagates through every activation. */
void FB(bias_activation_forward)(real *Z, const real *restrict bias, real *A, ptrdiff_t rows,
                                 ptrdiff_t cols, fb_activation act, fb_activation_params params)
{
    const int parallel = rows * cols >= FB_PARALLEL_MIN;
    const real slope = (real)params.slope, alpha = (real)params.alpha;
    const real beta = (real)params.beta, threshold = (real)params.threshold;
    switch (act) {
    case FB_IDENTITY:
        if (bias || A != Z)
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
    case FB_ELU:
        FB_MAP_ROWS(x > 0 ? x : alpha * expm1(x));
        break;
    case FB_SOFTPLUS:
        FB_MAP_ROWS(FB(softplus)(x, beta, threshold));
        break;
    case FB_GELU:
        FB_MAP_ROWS(FB(gelu)(x));
        break;
    case FB_GELU_TANH:
        FB_MAP_ROWS(FB(gelu_tanh)(x));
        break;
    }
}
#undef FB_MAP_ROWS

/* Applies EXPR (of d = dA[i] and VAR = SRC[i]) to every element; dZ may alias dA. */
#define FB_MAP(VAR, SRC, EXPR)                                                                  \
    FB_FOR(parallel, i, n,                                                                      \
        const real d = dA[i], VAR = SRC[i];                                                     \
        dZ[i] = (EXPR);)

/* dZ = dA * f'(z).  Where fb_activation_needs_input(act), f' is computed from the pre-activation
 * Z that forward kept; otherwise it is written through the output A = f(z).  The pointer that
 * `act` does not read may be NULL.  From the output a:
 *   identity 1    sigmoid a (1 - a)    tanh 1 - a^2    relu [a > 0]    leaky_relu a > 0 ? 1 : slope
 *   elu a > 0 ? 1 : a + alpha   (= alpha e^z; alpha >= 0 keeps a > 0 <=> z > 0)
 * From the pre-activation z:
 *   softplus beta z > threshold ? 1 : sigma(beta z)        gelu Phi(z) + z phi(z)
 *   gelu_tanh sigma(2u) + 2 z sigma(2u) sigma(-2u) u'(z)   (see FB(gelu_tanh_derivative))
 * (for relu-family the derivative at z = 0 is taken as the left one, as PyTorch does). */
void FB(activation_backward)(const real *dA, const real *A, const real *Z, real *dZ, ptrdiff_t n,
                             fb_activation act, fb_activation_params params)
{
    const int parallel = n >= FB_PARALLEL_MIN;
    const real slope = (real)params.slope, alpha = (real)params.alpha;
    const real beta = (real)params.beta, threshold = (real)params.threshold;
    switch (act) {
    case FB_IDENTITY:
        if (dZ != dA)
            memcpy(dZ, dA, (size_t)n * sizeof(real));
        break;
    case FB_SIGMOID:
        FB_MAP(a, A, d * a * (1 - a));
        break;
    case FB_TANH:
        FB_MAP(a, A, d * (1 - a * a));
        break;
    case FB_RELU:
        FB_MAP(a, A, a > 0 ? d : 0);
        break;
    case FB_LEAKY_RELU:
        FB_MAP(a, A, a > 0 ? d : slope * d);
        break;
    case FB_ELU:
        FB_MAP(a, A, a > 0 ? d : d * (a + alpha));
        break;
    case FB_SOFTPLUS:
        FB_MAP(z, Z, beta * z > threshold ? d : d * FB(sigmoid)(beta * z));
        break;
    case FB_GELU:
        FB_MAP(z, Z, d * FB(gelu_derivative)(z));
        break;
    case FB_GELU_TANH:
        FB_MAP(z, Z, d * FB(gelu_tanh_derivative)(z));
        break;
    }
}
#undef FB_MAP
#undef FB_INV_SQRT2
#undef FB_INV_SQRT_2PI
#undef FB_SQRT_2_OVER_PI
#undef FB_GELU_CUBIC
