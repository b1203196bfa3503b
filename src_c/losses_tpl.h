/* For one row z of k logits: writes e_j = exp(z_j - max z) into out and returns
 * sum_j e_j (>= 1, so its log is safe); *zmax receives max z. */
static inline double FB(shifted_exp_row)(const real *restrict z, ptrdiff_t k, real *restrict out,
                                         real *zmax)
{
    real mx = z[0];
    for (ptrdiff_t j = 1; j < k; ++j)
        mx = z[j] > mx ? z[j] : mx;
    double sum = 0.0;
    for (ptrdiff_t j = 0; j < k; ++j) {
        out[j] = exp(z[j] - mx);
        sum += out[j];
    }
    *zmax = mx;
    return sum;
}

/* Softmax cross-entropy with integer labels y_i in [0, k):
 *   loss = 1/n sum_i (logsumexp(z_i) - z_i[y_i])
 *   dlogits = (softmax(z) - onehot(y)) / n */
double FB(softmax_cross_entropy)(const real *restrict logits, const int64_t *restrict labels,
                                 ptrdiff_t rows, ptrdiff_t cols, real *restrict dlogits)
{
    const real inv_n = (real)(1.0 / (double)rows);
    double total;
    FB_CHUNKED_SUM(total, rows, rows * cols, i, acc, {
        const real *restrict z = logits + i * cols;
        real *restrict d = dlogits + i * cols;
        real zmax;
        const double sum = FB(shifted_exp_row)(z, cols, d, &zmax);
        const real scale = (real)(1.0 / (sum * (double)rows));
        for (ptrdiff_t j = 0; j < cols; ++j)
            d[j] *= scale;
        d[labels[i]] -= inv_n;
        acc += log(sum) - (double)(z[labels[i]] - zmax);
    });
    return total / (double)rows;
}

/* Softmax cross-entropy with target probabilities t (rows need not sum to one):
 *   loss = -1/n sum_i sum_j t_ij log softmax(z_i)_j
 *   dlogits = (softmax(z) * sum_j t_ij - t) / n */
double FB(softmax_cross_entropy_probs)(const real *restrict logits, const real *restrict targets,
                                       ptrdiff_t rows, ptrdiff_t cols, real *restrict dlogits)
{
    double total;
    FB_CHUNKED_SUM(total, rows, rows * cols, i, acc, {
        const real *restrict z = logits + i * cols;
        const real *restrict t = targets + i * cols;
        real *restrict d = dlogits + i * cols;
        real zmax;
        const double sum = FB(shifted_exp_row)(z, cols, d, &zmax);
        const double log_sum = log(sum);
        double t_sum = 0.0, row_loss = 0.0;
        for (ptrdiff_t j = 0; j < cols; ++j) {
            t_sum += t[j];
            row_loss += (double)t[j] * (log_sum - (double)(z[j] - zmax));
        }
        const real scale = (real)(t_sum / (sum * (double)rows));
        const real inv_n = (real)(1.0 / (double)rows);
        for (ptrdiff_t j = 0; j < cols; ++j)
            d[j] = d[j] * scale - t[j] * inv_n;
        acc += row_loss;
    });
    return total / (double)rows;
}

/* Mean squared error over all n elements (torch.nn.MSELoss), halved when `half`
 * (the textbook 1/2 (y - p)^2):
 *   loss = c/n sum (p - y)^2,  grad = 2c (p - y) / n,  c = 1/2 if half else 1 */
double FB(mse)(const real *restrict pred, const real *restrict target, ptrdiff_t n, int half,
               real *restrict grad)
{
    const double c = half ? 0.5 : 1.0;
    const real g_scale = (real)(2.0 * c / (double)n);
    double total;
    FB_CHUNKED_SUM(total, n, n, i, acc, {
        const real diff = pred[i] - target[i];
        grad[i] = g_scale * diff;
        acc += (double)diff * diff;
    });
    return c * total / (double)n;
}

/* Binary cross-entropy on logits z with targets y, mean over all n elements:
 *   loss = 1/n sum max(z, 0) - z y + log(1 + e^-|z|)    (stable for any z)
 *   grad = (sigmoid(z) - y) / n */
double FB(bce_with_logits)(const real *restrict logits, const real *restrict target, ptrdiff_t n,
                           real *restrict grad)
{
    const real inv_n = (real)(1.0 / (double)n);
    double total;
    FB_CHUNKED_SUM(total, n, n, i, acc, {
        const real z = logits[i], y = target[i];
        const real e = exp(-fabs(z));
        const real sig = z >= 0 ? 1 / (1 + e) : e / (1 + e);
        grad[i] = (sig - y) * inv_n;
        acc += (double)(z > 0 ? z : 0) - (double)z * y + log1p((double)e);
    });
    return total / (double)n;
}

/* Losses over rows i with sample weights w_i (w = NULL: every w_i = 1), divided by the weight
 * sum W the caller gives (the sum of w_i over the rows, or the row count): a row of weight 2
 * counts as the same row twice. Each loss is summed over a row's k outputs, and each gradient
 * is d(loss)/d(output), as scikit-learn's MLP defines them (its "delta", divided by W). */

static inline real FB(row_weight)(const real *restrict weights, ptrdiff_t i)
{
    return weights ? weights[i] : (real)1;
}

/* Softmax cross-entropy with integer labels y_i in [0, k):
 *   loss = 1/W sum_i w_i (logsumexp(z_i) - z_i[y_i])
 *   dlogits = w_i (softmax(z_i) - onehot(y_i)) / W */
double FB(weighted_softmax_cross_entropy)(const real *restrict logits,
                                          const int64_t *restrict labels,
                                          const real *restrict weights, ptrdiff_t rows,
                                          ptrdiff_t cols, double weight_sum,
                                          real *restrict dlogits)
{
    double total;
    FB_CHUNKED_SUM(total, rows, rows * cols, i, acc, {
        const real *restrict z = logits + i * cols;
        real *restrict d = dlogits + i * cols;
        const real w = FB(row_weight)(weights, i);
        real zmax;
        const double sum = FB(shifted_exp_row)(z, cols, d, &zmax);
        const real scale = (real)((double)w / (sum * weight_sum));
        for (ptrdiff_t j = 0; j < cols; ++j)
            d[j] *= scale;
        d[labels[i]] -= (real)((double)w / weight_sum);
        acc += (double)w * (log(sum) - (double)(z[labels[i]] - zmax));
    });
    return total / weight_sum;
}

/* The pass of a weighted loss whose row loss is the sum of its elements' losses: for element
 * j of row i, z = OUT[j] and y = TARGET[j], the body sets `d`, the element's unweighted
 * d(loss)/dz, and `term`, its loss; GRAD[j] = w_i d / W and the result is sum_i w_i row_i
 * (divided by W by the caller). */
#define FB_WEIGHTED_ELEMENTWISE_LOSS(TOTAL, OUT, TARGET, WEIGHTS, ROWS, COLS, WEIGHT_SUM, GRAD, \
                                     ...)                                                   \
    FB_CHUNKED_SUM(TOTAL, ROWS, (ROWS) * (COLS), i, acc, {                                   \
        const real scale = (real)((double)FB(row_weight)(WEIGHTS, i) / (WEIGHT_SUM));        \
        double row = 0.0;                                                                    \
        for (ptrdiff_t j = i * (COLS); j < (i + 1) * (COLS); ++j) {                          \
            const real z = (OUT)[j], y = (TARGET)[j];                                        \
            real d;                                                                          \
            double term;                                                                     \
            __VA_ARGS__                                                                      \
            (GRAD)[j] = d * scale;                                                           \
            row += term;                                                                     \
        }                                                                                    \
        acc += (double)FB(row_weight)(WEIGHTS, i) * row;                                     \
    })

/* Binary cross-entropy on logits z with targets y in [0, 1], summed over a row's outputs:
 *   loss = 1/W sum_i w_i sum_j max(z, 0) - z y + log(1 + e^-|z|)    (stable for any z)
 *   grad = w_i (sigmoid(z) - y) / W */
double FB(weighted_bce_with_logits)(const real *restrict logits, const real *restrict target,
                                    const real *restrict weights, ptrdiff_t rows, ptrdiff_t cols,
                                    double weight_sum, real *restrict grad)
{
    double total;
    FB_WEIGHTED_ELEMENTWISE_LOSS(total, logits, target, weights, rows, cols, weight_sum, grad,
        const real e = exp(-fabs(z));
        d = (z >= 0 ? 1 / (1 + e) : e / (1 + e)) - y;
        term = (double)(z > 0 ? z : 0) - (double)z * y + log1p((double)e);
    );
    return total / weight_sum;
}

/* Half squared error, summed over a row's outputs:
 *   loss = 1/W sum_i w_i sum_j (p - y)^2 / 2,   grad = w_i (p - y) / W */
double FB(weighted_half_squared_error)(const real *restrict pred, const real *restrict target,
                                       const real *restrict weights, ptrdiff_t rows,
                                       ptrdiff_t cols, double weight_sum, real *restrict grad)
{
    double total;
    FB_WEIGHTED_ELEMENTWISE_LOSS(total, pred, target, weights, rows, cols, weight_sum, grad,
        d = z - y;
        term = 0.5 * (double)d * d;
    );
    return total / weight_sum;
}

/* Poisson deviance (unhalved) with the log link: z is the log of the predicted mean, y >= 0,
 * summed over a row's outputs:
 *   loss = 1/W sum_i w_i sum_j y log y - y z - y + e^z   (y log y = 0 at y = 0)
 *   grad = w_i (e^z - y) / W */
double FB(weighted_poisson_log_link)(const real *restrict logmean, const real *restrict target,
                                     const real *restrict weights, ptrdiff_t rows,
                                     ptrdiff_t cols, double weight_sum, real *restrict grad)
{
    double total;
    FB_WEIGHTED_ELEMENTWISE_LOSS(total, logmean, target, weights, rows, cols, weight_sum, grad,
        const real mean = exp(z);
        d = mean - y;
        term = (y > 0 ? (double)y * log((double)y) : 0.0) - (double)y * z - y + mean;
    );
    return total / weight_sum;
}
