/* Kernel declarations, included once per element type by fastbp_core.h (no include guard).
 * Matrices are row-major; `ld*` are row strides in elements. */

/* gemm.c: C = alpha * op(A) op(B) + beta * C, row-major, op(X) = X or X^T.
 * C is (m, n); op(A) is (m, k); op(B) is (k, n). beta = 0 never reads C. */
void FB(gemm_rowmajor)(int trans_a, int trans_b, int m, int n, int k, real alpha,
                       const real *A, int lda, const real *B, int ldb, real beta, real *C, int ldc);

/* activations.c */
void FB(bias_activation_forward)(real *Z, const real *restrict bias, real *A, ptrdiff_t rows,
                                 ptrdiff_t cols, fb_activation act, fb_activation_params params);
void FB(activation_backward)(const real *dA, const real *A, const real *Z, real *dZ, ptrdiff_t n,
                             fb_activation act, fb_activation_params params);

/* reductions.c */
void FB(bias_grad)(const real *restrict dZ, ptrdiff_t rows, ptrdiff_t cols, real *restrict db,
                   int accumulate);
double FB(sum_squares)(const real *x, ptrdiff_t n);
void FB(scale)(real *x, ptrdiff_t n, real factor);
double FB(clip_grad_norm)(real *g, ptrdiff_t n, double max_norm);
double FB(add_l2_gradient)(const real *restrict p, real *restrict g, ptrdiff_t n, double c);
void FB(gather_rows)(const real *restrict src, ptrdiff_t cols, const int64_t *restrict indices,
                     ptrdiff_t n, real *restrict out);
void FB(clip_grad_value)(real *g, ptrdiff_t n, real c);
void FB(mark_active_units)(const real *restrict A, ptrdiff_t rows, ptrdiff_t cols,
                           uint8_t *restrict active);

/* losses.c: each returns the mean loss and writes its gradient with respect to the first input. */
double FB(softmax_cross_entropy)(const real *restrict logits, const int64_t *restrict labels,
                                 ptrdiff_t rows, ptrdiff_t cols, real *restrict dlogits);
double FB(softmax_cross_entropy_probs)(const real *restrict logits, const real *restrict targets,
                                       ptrdiff_t rows, ptrdiff_t cols, real *restrict dlogits);
double FB(mse)(const real *restrict pred, const real *restrict target, ptrdiff_t n, int half,
               real *restrict grad);
double FB(bce_with_logits)(const real *restrict logits, const real *restrict target, ptrdiff_t n,
                           real *restrict grad);
/* ... and these the weighted mean over rows of each row's loss summed over its outputs. */
double FB(weighted_softmax_cross_entropy)(const real *restrict logits,
                                          const int64_t *restrict labels,
                                          const real *restrict weights, ptrdiff_t rows,
                                          ptrdiff_t cols, double weight_sum,
                                          real *restrict dlogits);
double FB(weighted_bce_with_logits)(const real *restrict logits, const real *restrict target,
                                    const real *restrict weights, ptrdiff_t rows, ptrdiff_t cols,
                                    double weight_sum, real *restrict grad);
double FB(weighted_half_squared_error)(const real *restrict pred, const real *restrict target,
                                       const real *restrict weights, ptrdiff_t rows,
                                       ptrdiff_t cols, double weight_sum, real *restrict grad);
double FB(weighted_poisson_log_link)(const real *restrict logmean, const real *restrict target,
                                     const real *restrict weights, ptrdiff_t rows,
                                     ptrdiff_t cols, double weight_sum, real *restrict grad);

/* optim.c: single-pass updates over flat buffers, torch.optim semantics (the last two:
 * scikit-learn's MLP). */
void FB(sgd_step)(real *restrict p, const real *restrict g, real *restrict buf, ptrdiff_t n,
                  double lr, double momentum, int nesterov, double weight_decay,
                  real *restrict backup);
void FB(adam_step)(real *restrict p, const real *restrict g, real *restrict m, real *restrict v,
                   ptrdiff_t n, long step, double lr, double beta1, double beta2, double eps,
                   double weight_decay, int decoupled, real *restrict backup);
void FB(rmsprop_step)(real *restrict p, const real *restrict g, real *restrict square_avg,
                      real *restrict grad_avg, real *restrict buf, ptrdiff_t n, double lr,
                      double alpha, double eps, double momentum, int centered,
                      double weight_decay, real *restrict backup);
void FB(velocity_sgd_step)(real *restrict p, const real *restrict g, real *restrict velocity,
                           ptrdiff_t n, double lr, double momentum, int nesterov,
                           real *restrict backup);
void FB(adam_folded_step)(real *restrict p, const real *restrict g, real *restrict m,
                          real *restrict v, ptrdiff_t n, long step, double lr, double beta1,
                          double beta2, double eps, real *restrict backup);

/* batchnorm.c: per-feature normalization over the batch; backward through the batch statistics. */
void FB(batchnorm_forward)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                           const real *restrict gamma, const real *restrict beta,
                           real *restrict running_mean, real *restrict running_var, int training,
                           double momentum, double eps, real *restrict mean,
                           real *restrict invstd, real *restrict Y);
void FB(batchnorm_backward)(const real *restrict X, const real *restrict dY, ptrdiff_t rows,
                            ptrdiff_t cols, const real *restrict gamma,
                            const real *restrict mean, const real *restrict invstd,
                            real *restrict dgamma, real *restrict dbeta, int accumulate,
                            real *restrict work, real *restrict dX);
/* The same over a global batch of which X holds this rank's rows: the batch statistics and the
 * sums of backward are summed over the ranks (`sums`: a workspace of 2 cols). */
void FB(batchnorm_forward_ranked)(const real *restrict X, ptrdiff_t rows, ptrdiff_t cols,
                                  const real *restrict gamma, const real *restrict beta,
                                  real *restrict running_mean, real *restrict running_var,
                                  double momentum, double eps, real *restrict mean,
                                  real *restrict invstd, real *restrict Y, const fb_ranks *ranks,
                                  double *restrict sums);
void FB(batchnorm_backward_ranked)(const real *restrict X, const real *restrict dY,
                                   ptrdiff_t rows, ptrdiff_t cols, const real *restrict gamma,
                                   const real *restrict mean, const real *restrict invstd,
                                   real *restrict dgamma, real *restrict dbeta,
                                   real *restrict work, real *restrict dX, const fb_ranks *ranks,
                                   double *restrict sums);

/* dropout.c: y = x * keep(seed, draw, i) / (1 - p), forward and backward alike. */
void FB(dropout)(const real *x, real *y, ptrdiff_t n, double p, uint64_t seed, uint64_t draw);
/* The same mask for rows of a larger batch: row i of x (rows, cols) is row positions[i] there. */
void FB(dropout_rows)(const real *x, real *y, ptrdiff_t rows, ptrdiff_t cols,
                      const int64_t *positions, double p, uint64_t seed, uint64_t draw);

/* residual.c: y = x + f */
void FB(residual_add)(const real *x, const real *f, real *y, ptrdiff_t n);
