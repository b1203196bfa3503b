/* torch.optim.SGD with dampening 0:
 *   d = g + wd p;   if momentum: buf = mu buf + d (buf starts at 0), d = nesterov ? d + mu buf : buf
 *   p -= lr d
 * buf may be NULL when momentum is 0. backup, when not NULL, receives p before the update. */
void FB(sgd_step)(real *restrict p, const real *restrict g, real *restrict buf, ptrdiff_t n,
                  double lr, double momentum, int nesterov, double weight_decay,
                  real *restrict backup)
{
    const real lr_ = (real)lr, mu = (real)momentum, wd = (real)weight_decay;
    const int use_momentum = momentum != 0.0;
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        if (backup)
            backup[i] = p[i];
        real d = g[i];
        if (wd != 0)
            d += wd * p[i];
        if (use_momentum) {
            const real b = mu * buf[i] + d;
            buf[i] = b;
            d = nesterov ? d + mu * b : b;
        }
        p[i] -= lr_ * d;
    );
}

/* torch.optim.Adam (decoupled = 0) and torch.optim.AdamW (decoupled = 1), step t >= 1:
 *   Adam: g += wd p          AdamW: p *= 1 - lr wd
 *   m = m + (1 - b1)(g - m)       v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * One read of p, g, m, v and one write of p, m, v per element (and of backup, when not NULL,
 * which receives p before the update). */
void FB(adam_step)(real *restrict p, const real *restrict g, real *restrict m, real *restrict v,
                   ptrdiff_t n, long step, double lr, double beta1, double beta2, double eps,
                   double weight_decay, int decoupled, real *restrict backup)
{
    const double bias_correction1 = 1.0 - pow(beta1, (double)step);
    const double bias_correction2 = 1.0 - pow(beta2, (double)step);
    const real step_size = (real)(lr / bias_correction1);
    const real inv_sqrt_bc2 = (real)(1.0 / sqrt(bias_correction2));
    const real one_minus_b1 = (real)(1.0 - beta1), b2 = (real)beta2;
    const real one_minus_b2 = (real)(1.0 - beta2), eps_ = (real)eps;
    const real l2 = decoupled ? 0 : (real)weight_decay;
    const real shrink = decoupled ? (real)(1.0 - lr * weight_decay) : 1;
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        if (backup)
            backup[i] = p[i];
        const real w = p[i] * shrink;
        const real grad = g[i] + l2 * p[i];
        const real mi = m[i] + one_minus_b1 * (grad - m[i]);
        const real vi = b2 * v[i] + one_minus_b2 * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - step_size * mi / (sqrt(vi) * inv_sqrt_bc2 + eps_);
    );
}

/* torch.optim.RMSprop, every state buffer starting at 0:
 *   g += wd p;   v = alpha v + (1 - alpha) g^2
 *   centered: m = m + (1 - alpha)(g - m),  avg = sqrt(max(v - m^2, 0)) + eps
 *   otherwise:                             avg = sqrt(v) + eps          (eps outside the sqrt)
 *   momentum > 0: buf = mu buf + g / avg,  p -= lr buf;   otherwise p -= lr g / avg
 * grad_avg (m) may be NULL unless centered, buf unless momentum > 0.  v - m^2 >= 0 in exact
 * arithmetic; the max keeps rounding from turning it into a NaN.  One pass over the buffers. */
void FB(rmsprop_step)(real *restrict p, const real *restrict g, real *restrict square_avg,
                      real *restrict grad_avg, real *restrict buf, ptrdiff_t n, double lr,
                      double alpha, double eps, double momentum, int centered,
                      double weight_decay, real *restrict backup)
{
    const real lr_ = (real)lr, alpha_ = (real)alpha, one_minus_alpha = (real)(1.0 - alpha);
    const real eps_ = (real)eps, mu = (real)momentum, wd = (real)weight_decay;
    const int use_momentum = momentum > 0.0;
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        if (backup)
            backup[i] = p[i];
        real grad = g[i];
        if (wd != 0)
            grad += wd * p[i];
        const real v = alpha_ * square_avg[i] + one_minus_alpha * grad * grad;
        square_avg[i] = v;
        real avg;
        if (centered) {
            const real m = grad_avg[i] + one_minus_alpha * (grad - grad_avg[i]);
            grad_avg[i] = m;
            avg = sqrt(fmax(v - m * m, (real)0)) + eps_;
        } else {
            avg = sqrt(v) + eps_;
        }
        if (use_momentum) {
            const real b = mu * buf[i] + grad / avg;
            buf[i] = b;
            p[i] -= lr_ * b;
        } else {
            p[i] -= lr_ * (grad / avg);
        }
    );
}

/* Momentum SGD in the velocity form of scikit-learn's MLP (Sutskever et al. 2013):
 *   u = mu u - lr g;  p += nesterov ? mu u - lr g : u      (u starts at 0)
 * It differs from torch.optim.SGD once lr changes between steps (torch's buffer carries no lr).
 * backup, when not NULL, receives p before the update. */
void FB(velocity_sgd_step)(real *restrict p, const real *restrict g, real *restrict velocity,
                           ptrdiff_t n, double lr, double momentum, int nesterov,
                           real *restrict backup)
{
    const real lr_ = (real)lr, mu = (real)momentum;
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        if (backup)
            backup[i] = p[i];
        const real u = mu * velocity[i] - lr_ * g[i];
        velocity[i] = u;
        p[i] += nesterov ? mu * u - lr_ * g[i] : u;
    );
}

/* Adam as Kingma & Ba's algorithm 1 writes it, scikit-learn's MLP form, step t >= 1:
 *   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
 *   p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 * (the bias corrections folded into the step size, eps added to sqrt(v): not torch.optim.Adam's
 * eps, which is added to sqrt(v / (1 - b2^t))). backup, when not NULL, receives p before the
 * update. */
void FB(adam_folded_step)(real *restrict p, const real *restrict g, real *restrict m,
                          real *restrict v, ptrdiff_t n, long step, double lr, double beta1,
                          double beta2, double eps, real *restrict backup)
{
    const real step_size = (real)(lr * sqrt(1.0 - pow(beta2, (double)step))
                                  / (1.0 - pow(beta1, (double)step)));
    const real b1 = (real)beta1, one_minus_b1 = (real)(1.0 - beta1);
    const real b2 = (real)beta2, one_minus_b2 = (real)(1.0 - beta2), eps_ = (real)eps;
    const int parallel = n >= FB_PARALLEL_MIN;
    FB_FOR(parallel, i, n,
        if (backup)
            backup[i] = p[i];
        const real mi = b1 * m[i] + one_minus_b1 * g[i];
        const real vi = b2 * v[i] + one_minus_b2 * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        p[i] += -step_size * mi / (sqrt(vi) + eps_);
    );
}
