/* Plan functions, declared once per element type by fb_plan.h (no include guard). */

/* One training step on (X, target) of `rows` <= max_rows samples: forward, loss (written to
 * *loss; and, when `hits` is not NULL, the number of correct predictions of a classification
 * loss to *hits), backward into plan->grads, optional clipping (by value, then by norm), then
 * `update`.
 * Returns 0, or 1 when the loss is not finite, in which case gradients, parameters and buffers
 * are left untouched. */
int FB(plan_train_step)(const fb_plan *plan, const real *X, const void *target, ptrdiff_t rows,
                        const fb_update *update, double *loss, ptrdiff_t *hits);

/* The two halves of plan_train_step. plan_forward_backward runs forward, loss and backward
 * into plan->grads and returns as plan_train_step (1: the loss is not finite, nothing else
 * done). With plan->ranks the rows are this rank's part of a global batch: BatchNorm uses the
 * global batch statistics, Dropout the masks of the rows' global positions, the gradients are
 * this rank's part of the global mean loss's (the caller sums them over the ranks), *loss is
 * the mean over this rank's rows (0 when it has none), grads_ready is called as the backward
 * finishes each stage, and a non-finite loss does not stop the step (every rank must make the
 * same sums; the caller checks the global loss and may call plan_restore_buffers). */
int FB(plan_forward_backward)(const fb_plan *plan, const real *X, const void *target,
                              ptrdiff_t rows, double *loss, ptrdiff_t *hits);
/* Clipping (by value, then by norm) and `update`. */
void FB(plan_finish)(const fb_plan *plan, const fb_update *update);
/* Put back the buffers (running statistics) kept before the last forward. */
void FB(plan_restore_buffers)(const fb_plan *plan);

/* 1 when every x[i] is finite. */
int FB(all_finite)(const real *x, ptrdiff_t n);

/* 1 when lo <= x[i] <= hi for every i (NaN fails). */
int FB(all_in_range)(const real *x, ptrdiff_t n, real lo, real hi);
