/* Batch normalization, per feature j over the B rows of X (B, D):
 *   mean_j = 1/B sum_i x_ij          var_j = 1/B sum_i (x_ij - mean_j)^2   (biased)
 *   invstd_j = 1 / sqrt(var_j + eps)   xhat_ij = (x_ij - mean_j) invstd_j
 *   y_ij = gamma_j xhat_ij + beta_j
 * Column sums: threads split the columns into blocks, each column is summed in row order in
 * double (as bias_grad). Elementwise passes: threads split the rows. */

/* Sums over the rows of columns j0 .. j0 + width of X, in row order in double: of x_ij when
 * `center` is NULL, else of (x_ij - center[j])^2. */
static void FB(bn_block_sums)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                              ptrdiff_t j0, ptrdiff_t width, const double *restrict center,
                              double *restrict sums)
{
    for (ptrdiff_t j = 0; j < width; ++j)
        sums[j] = 0;
    for (ptrdiff_t i = 0; i < rows; ++i) {
        const real *restrict row = X + i * cols + j0;
        if (center) {
            for (ptrdiff_t j = 0; j < width; ++j) {
                const double d = row[j] - center[j];
                sums[j] += d * d;
            }
        } else {
            for (ptrdiff_t j = 0; j < width; ++j)
                sums[j] += row[j];
        }
    }
}

/* Column j's mean, invstd and running statistics from its mean mu and the sum ss of squared
 * deviations over B rows. */
static void FB(bn_column_stats)(ptrdiff_t j, double mu, double ss, double B, double momentum,
                                double eps, real *restrict running_mean,
                                real *restrict running_var, real *restrict mean,
                                real *restrict invstd)
{
    const double var = ss / B;
    const double unbiased = ss / (B - 1);
    mean[j] = (real)mu;
    invstd[j] = (real)(1.0 / sqrt(var + eps));
    running_mean[j] = (real)((1.0 - momentum) * running_mean[j] + momentum * mu);
    running_var[j] = (real)((1.0 - momentum) * running_var[j] + momentum * unbiased);
}

/* Batch mean and invstd of every column; running statistics updated as torch.nn.BatchNorm1d:
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var B / (B - 1)   (unbiased)
 * Two passes per column block (mean, then squared deviations) for accuracy. Needs B >= 2.
 * With `ranks` the batch is the global one: each pass's column sums (in `sums`, 2 cols) are
 * summed over the ranks before they are used, and B is the global row count. */
static void FB(batchnorm_batch_stats)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                                      double momentum, double eps, real *restrict running_mean,
                                      real *restrict running_var, real *restrict mean,
                                      real *restrict invstd, const fb_ranks *ranks,
                                      double *restrict sums)
{
    const ptrdiff_t blocks = (cols + FB_BN_COLUMN_BLOCK - 1) / FB_BN_COLUMN_BLOCK;
    const int parallel = blocks > 1 && rows * cols >= FB_PARALLEL_MIN;
    if (ranks) {
        const double B = (double)ranks->global_rows;
        double *restrict mu = sums, *restrict ss = sums + cols;
        FB_FOR(parallel, b, blocks, FB_BN_BLOCK(b)
            FB(bn_block_sums)(X, rows, cols, j0, width, NULL, mu + j0););
        ranks->sum(ranks->context, mu, cols);
        for (ptrdiff_t j = 0; j < cols; ++j)
            mu[j] /= B;
        FB_FOR(parallel, b, blocks, FB_BN_BLOCK(b)
            FB(bn_block_sums)(X, rows, cols, j0, width, mu + j0, ss + j0););
        ranks->sum(ranks->context, ss, cols);
        for (ptrdiff_t j = 0; j < cols; ++j)
            FB(bn_column_stats)(j, mu[j], ss[j], B, momentum, eps, running_mean, running_var,
                                mean, invstd);
        return;
    }
    FB_FOR(parallel, b, blocks, FB_BN_BLOCK(b)
        double mu[FB_BN_COLUMN_BLOCK], ss[FB_BN_COLUMN_BLOCK];
        FB(bn_block_sums)(X, rows, cols, j0, width, NULL, mu);
        for (ptrdiff_t j = 0; j < width; ++j)
            mu[j] /= (double)rows;
        FB(bn_block_sums)(X, rows, cols, j0, width, mu, ss);
        for (ptrdiff_t j = 0; j < width; ++j)
            FB(bn_column_stats)(j0 + j, mu[j], ss[j], (double)rows, momentum, eps,
                                running_mean, running_var, mean, invstd);
    );
}

/* Y = gamma (X - mean) invstd + beta, with the training statistics of batchnorm_batch_stats
 * (`ranks` NULL: this batch's) or, when not training, the running ones. */
static void FB(batchnorm_normalize)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                                    const real *restrict gamma, const real *restrict beta,
                                    real *restrict running_mean, real *restrict running_var,
                                    int training, double momentum, double eps,
                                    real *restrict mean, real *restrict invstd, real *restrict Y,
                                    const fb_ranks *ranks, double *restrict sums)
{
    if (training) {
        FB(batchnorm_batch_stats)(X, rows, cols, momentum, eps, running_mean, running_var, mean,
                                  invstd, ranks, sums);
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
    FB(batchnorm_normalize)(X, rows, cols, gamma, beta, running_mean, running_var, training,
                            momentum, eps, mean, invstd, Y, NULL, NULL);
}

/* The training forward over a global batch of which X holds this rank's rows (see
 * batchnorm_batch_stats); `sums` is a workspace of 2 cols. */
void FB(batchnorm_forward_ranked)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                                  const real *restrict gamma, const real *restrict beta,
                                  real *restrict running_mean, real *restrict running_var,
                                  double momentum, double eps, real *restrict mean,
                                  real *restrict invstd, real *restrict Y, const fb_ranks *ranks,
                                  double *restrict sums)
{
    FB(batchnorm_normalize)(X, rows, cols, gamma, beta, running_mean, running_var, 1, momentum,
                            eps, mean, invstd, Y, ranks, sums);
}

/* Backward of the training forward, through the batch statistics. With dxhat = gamma dY:
 *   dbeta_j  = sum_i dY_ij                 dgamma_j = sum_i dY_ij xhat_ij
 *   dX_ij = invstd_j / B (B dxhat_ij - sum_i dxhat_ij - xhat_ij sum_i dxhat_ij xhat_ij)
 *         = gamma_j invstd_j (dY_ij - dbeta_j / B - xhat_ij dgamma_j / B)
 * dgamma, dbeta are written (added to when accumulate); `work` (2 cols) receives this batch's
 * dbeta / B and dgamma / B. dX may be NULL (no input gradient). With `ranks`, dgamma and dbeta
 * are this rank's part (the caller sums them over the ranks with the other gradients), while
 * dX needs the global sums: they are summed over the ranks in `sums` (2 cols) and B is the
 * global row count. */
static void FB(batchnorm_grads)(const real *restrict X, const real *restrict dY, ptrdiff_t rows,
                                ptrdiff_t cols, const real *restrict gamma,
                                const real *restrict mean, const real *restrict invstd,
                                real *restrict dgamma, real *restrict dbeta, int accumulate,
                                real *restrict work, real *restrict dX, const fb_ranks *ranks,
                                double *restrict sums)
{
    real *restrict dbeta_mean = work, *restrict dgamma_mean = work + cols;
    const ptrdiff_t blocks = (cols + FB_BN_COLUMN_BLOCK - 1) / FB_BN_COLUMN_BLOCK;
    FB_FOR(blocks > 1 && rows * cols >= FB_PARALLEL_MIN, b, blocks, FB_BN_BLOCK(b)
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
            if (ranks) {
                sums[j0 + j] = s1[j];
                sums[cols + j0 + j] = s2[j];
            } else {
                dbeta_mean[j0 + j] = (real)(s1[j] / (double)rows);
                dgamma_mean[j0 + j] = (real)(s2[j] / (double)rows);
            }
        }
    );
    if (ranks) {
        ranks->sum(ranks->context, sums, 2 * cols);
        for (ptrdiff_t j = 0; j < cols; ++j) {
            dbeta_mean[j] = (real)(sums[j] / (double)ranks->global_rows);
            dgamma_mean[j] = (real)(sums[cols + j] / (double)ranks->global_rows);
        }
    }
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

void FB(batchnorm_backward)(const real *restrict X, const real *restrict dY, ptrdiff_t rows,
                            ptrdiff_t cols, const real *restrict gamma,
                            const real *restrict mean, const real *restrict invstd,
                            real *restrict dgamma, real *restrict dbeta, int accumulate,
                            real *restrict work, real *restrict dX)
{
    FB(batchnorm_grads)(X, dY, rows, cols, gamma, mean, invstd, dgamma, dbeta, accumulate, work,
                        dX, NULL, NULL);
}

/* The backward of batchnorm_forward_ranked (see batchnorm_grads). */
void FB(batchnorm_backward_ranked)(const real *restrict X, const real *restrict dY,
                                   ptrdiff_t rows, ptrdiff_t cols, const real *restrict gamma,
                                   const real *restrict mean, const real *restrict invstd,
                                   real *restrict dgamma, real *restrict dbeta,
                                   real *restrict work, real *restrict dX, const fb_ranks *ranks,
                                   double *restrict sums)
{
    FB(batchnorm_grads)(X, dY, rows, cols, gamma, mean, invstd, dgamma, dbeta, 0, work, dX,
                        ranks, sums);
}
