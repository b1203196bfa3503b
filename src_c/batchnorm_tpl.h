/* Batch normalization, per feature j over the B rows of X (B, D):
 *   mean_j = 1/B sum_i x_ij          var_j = 1/B sum_i (x_ij - mean_j)^2   (biased)
 *   invstd_j = 1 / sqrt(var_j + eps)   xhat_ij = (x_ij - mean_j) invstd_j
 *   y_ij = gamma_j xhat_ij + beta_j
 * Column sums: threads split the columns into blocks, each column is summed in row order in
 * double (as bias_grad). Elementwise passes: threads split the rows. */

/* Batch mean and invstd of every column; running statistics updated as torch.nn.BatchNorm1d:
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var B / (B - 1)   (unbiased)
 * Two passes per column block (mean, then squared deviations) for accuracy. Needs B >= 2. */
static void FB(batchnorm_batch_stats)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                                      double momentum, double eps, real *restrict running_mean,
                                      real *restrict running_var, real *restrict mean,
                                      real *restrict invstd)
{
    const ptrdiff_t blocks = (cols + FB_BN_COLUMN_BLOCK - 1) / FB_BN_COLUMN_BLOCK;
    FB_FOR(blocks > 1 && rows * cols >= FB_PARALLEL_MIN, b, blocks,
        const ptrdiff_t j0 = b * FB_BN_COLUMN_BLOCK;
        const ptrdiff_t width = cols - j0 < FB_BN_COLUMN_BLOCK ? cols - j0 : FB_BN_COLUMN_BLOCK;
        double mu[FB_BN_COLUMN_BLOCK] = {0}, ss[FB_BN_COLUMN_BLOCK] = {0};
        for (ptrdiff_t i = 0; i < rows; ++i) {
            const real *restrict row = X + i * cols + j0;
            for (ptrdiff_t j = 0; j < width; ++j)
                mu[j] += row[j];
        }
        for (ptrdiff_t j = 0; j < width; ++j)
            mu[j] /= (double)rows;
        for (ptrdiff_t i = 0; i < rows; ++i) {
            const real *restrict row = X + i * cols + j0;
            for (ptrdiff_t j = 0; j < width; ++j) {
                const double d = row[j] - mu[j];
                ss[j] += d * d;
            }
        }
        for (ptrdiff_t j = 0; j < width; ++j) {
            const double var = ss[j] / (double)rows;
            const double unbiased = ss[j] / (double)(rows - 1);
            mean[j0 + j] = (real)mu[j];
            invstd[j0 + j] = (real)(1.0 / sqrt(var + eps));
            running_mean[j0 + j] =
                (real)((1.0 - momentum) * running_mean[j0 + j] + momentum * mu[j]);
            running_var[j0 + j] =
                (real)((1.0 - momentum) * running_var[j0 + j] + momentum * unbiased);
        }
    );
}

/* Y = gamma (X - mean) invstd + beta.
 * training: mean and invstd are the batch's (written to `mean`, `invstd`, which backward
 * needs) and the running statistics are updated; otherwise mean = running_mean and
 * invstd = 1 / sqrt(running_var + eps), written to `mean`, `invstd` as well. */
void FB(batchnorm_forward)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                           const real *restrict gamma, const real *restrict beta,
                           real *restrict running_mean, real *restrict running_var, int training,
                           double momentum, double eps, real *restrict mean,
                           real *restrict invstd, real *restrict Y)
{
    if (training) {
        FB(batchnorm_batch_stats)(X, rows, cols, momentum, eps, running_mean, running_var, mean,
                                  invstd);
    } else {
        for (ptrdiff_t j = 0; j < cols; ++j) {
            mean[j] = running_mean[j];
            invstd[j] = (real)(1.0 / sqrt((double)running_var[j] + eps));
        }
    }
    FB_FOR(rows * cols >= FB_PARALLEL_MIN, i, rows,
        const real *restrict x = X + i * cols;
        real *restrict y = Y + i * cols;
        for (ptrdiff_t j = 0; j < cols; ++j)
            y[j] = gamma[j] * ((x[j] - mean[j]) * invstd[j]) + beta[j];
    );
}

/* Backward of the training forward, through the batch statistics. With dxhat = gamma dY:
 *   dbeta_j  = sum_i dY_ij                 dgamma_j = sum_i dY_ij xhat_ij
 *   dX_ij = invstd_j / B (B dxhat_ij - sum_i dxhat_ij - xhat_ij sum_i dxhat_ij xhat_ij)
 *         = gamma_j invstd_j (dY_ij - dbeta_j / B - xhat_ij dgamma_j / B)
 * dgamma, dbeta are written (added to when accumulate); `work` (2 cols) receives this batch's
 * dbeta / B and dgamma / B. dX may be NULL (no input gradient). */
void FB(batchnorm_backward)(const real *restrict X, const real *restrict dY, ptrdiff_t rows,
                            ptrdiff_t cols, const real *restrict gamma,
                            const real *restrict mean, const real *restrict invstd,
                            real *restrict dgamma, real *restrict dbeta, int accumulate,
                            real *restrict work, real *restrict dX)
{
    real *restrict dbeta_mean = work, *restrict dgamma_mean = work + cols;
    const ptrdiff_t blocks = (cols + FB_BN_COLUMN_BLOCK - 1) / FB_BN_COLUMN_BLOCK;
    FB_FOR(blocks > 1 && rows * cols >= FB_PARALLEL_MIN, b, blocks,
        const ptrdiff_t j0 = b * FB_BN_COLUMN_BLOCK;
        const ptrdiff_t width = cols - j0 < FB_BN_COLUMN_BLOCK ? cols - j0 : FB_BN_COLUMN_BLOCK;
        double s1[FB_BN_COLUMN_BLOCK] = {0}, s2[FB_BN_COLUMN_BLOCK] = {0};
        for (ptrdiff_t i = 0; i < rows; ++i) {
            const real *restrict x = X + i * cols + j0;
            const real *restrict dy = dY + i * cols + j0;
            for (ptrdiff_t j = 0; j < width; ++j) {
                const real xhat = (x[j] - mean[j0 + j]) * invstd[j0 + j];
                s1[j] += dy[j];
                s2[j] += (double)dy[j] * xhat;
            }
        }
        for (ptrdiff_t j = 0; j < width; ++j) {
            dbeta[j0 + j] = accumulate ? (real)(dbeta[j0 + j] + s1[j]) : (real)s1[j];
            dgamma[j0 + j] = accumulate ? (real)(dgamma[j0 + j] + s2[j]) : (real)s2[j];
            dbeta_mean[j0 + j] = (real)(s1[j] / (double)rows);
            dgamma_mean[j0 + j] = (real)(s2[j] / (double)rows);
        }
    );
    if (!dX)
        return;
    FB_FOR(rows * cols >= FB_PARALLEL_MIN, i, rows,
        const real *restrict x = X + i * cols;
        const real *restrict dy = dY + i * cols;
        real *restrict dx = dX + i * cols;
        for (ptrdiff_t j = 0; j < cols; ++j) {
            const real xhat = (x[j] - mean[j]) * invstd[j];
            dx[j] = gamma[j] * invstd[j] * (dy[j] - dbeta_mean[j] - xhat * dgamma_mean[j]);
        }
    );
}
