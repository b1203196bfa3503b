/* Plan functions, declared once per element type by fb_plan.h (no include guard). */

/* One training step on (X, target) of `rows` <= max_rows samples: forward, loss (written to
 * *loss; and, when `hits` is not NULL, the number of correct predictions of a classification
 * loss to *hits), backward into plan->grads, optional clipping (by value, then by norm), then
 * `update`.
 * Returns 0, or 1 when the loss is not finite, in which case gradients, parameters and buffers
 * are left untouched. */
int FB(plan_train_step)(const fb_plan *plan, const real *X, const void *target, ptrdiff_t rows,
                        const fb_update *update, double *loss, ptrdiff_t *hits);

/* 1 when every x[i] is finite. */
int FB(all_finite)(const real *x, ptrdiff_t n);

/* 1 when lo <= x[i] <= hi for every i (NaN fails). */
int FB(all_in_range)(const real *x, ptrdiff_t n, real lo, real hi);
