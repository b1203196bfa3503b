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
