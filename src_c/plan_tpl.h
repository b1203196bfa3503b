/* The compiled training step over a plan of stages (see fb_plan.h). */

/* The output of stage s, or the step's input X for s = -1. */
static const real *FB(stage_output)(const fb_plan *plan, const real *X, int s)
{
    return s < 0 ? X : (const real *)plan->stages[s].output;
}

/* y = x * mask of a Dropout stage: the masks of the rows' positions in the global batch with
 * plan->ranks. */
static void FB(stage_dropout)(const fb_plan *plan, const fb_stage *st, const real *x, real *y,
                              ptrdiff_t rows)
{
    if (plan->ranks)
        FB(dropout_rows)(x, y, rows, st->out_features, plan->ranks->positions, st->p, st->seed,
                         st->draw);
    else
        FB(dropout)(x, y, rows * st->out_features, st->p, st->seed, st->draw);
}

/* Forward of stages first..last, the first reading the output of stage first - 1 (X for the
 * first stage). `replay`: the stages ran on this input before in this step (gradient
 * checkpointing): BatchNorm then leaves its running statistics as they are (momentum 0 keeps
 * them bit for bit) and Dropout reuses its mask. */
static void FB(forward_stages)(const fb_plan *plan, const real *X, ptrdiff_t rows, int first,
                               int last, int replay)
{
    const real *input = FB(stage_output)(plan, X, first - 1);
    for (int s = first; s <= last; ++s) {
        const fb_stage *st = &plan->stages[s];
        const int out = st->out_features;
        real *A = st->output;
        real *Z = st->preact ? (real *)st->preact : A;
        switch (st->kind) {
        case FB_STAGE_DENSE:
            /* A = f(input W^T + b): one gemm (beta = 0 writes Z without reading it), one fused
             * pass (in place unless the activation's backward needs Z) */
            FB(gemm_rowmajor)(0, 1, (int)rows, out, st->in_features, 1, input, st->in_features,
                              st->weight, st->in_features, 0, Z, out);
            FB(bias_activation_forward)(Z, st->bias, A, rows, out, st->activation, st->params);
            break;
        case FB_STAGE_BATCHNORM: {
            real *mean = st->stats, *invstd = (real *)st->stats + out;
            const double momentum = replay ? 0.0 : st->momentum;
            if (plan->ranks)
                FB(batchnorm_forward_ranked)(input, rows, out, st->weight, st->bias,
                                             st->running_mean, st->running_var, momentum,
                                             st->eps, mean, invstd, A, plan->ranks, st->sums);
            else
                FB(batchnorm_forward)(input, rows, out, st->weight, st->bias, st->running_mean,
                                      st->running_var, 1, momentum, st->eps, mean, invstd, A);
            break;
        }
        case FB_STAGE_ACTIVATION:
            /* A = f(input): out of place, the input stays for backward */
            FB(bias_activation_forward)((real *)input, NULL, A, rows, out, st->activation,
                                        st->params);
            break;
        case FB_STAGE_DROPOUT:
            FB(stage_dropout)(plan, st, input, A, rows);
            break;
        case FB_STAGE_RESIDUAL:
            FB(residual_add)(FB(stage_output)(plan, X, st->skip_from), input, A, rows * out);
            break;
        }
        input = A;
    }
}

/* Mean loss of the last stage's output against `target`; its gradient goes to dout. */
static double FB(plan_loss)(const fb_plan *plan, const void *target, ptrdiff_t rows, real *dout)
{
    const fb_stage *last = &plan->stages[plan->n_stages - 1];
    const real *out = last->output;
    const ptrdiff_t k = last->out_features;
    switch (plan->loss) {
    case FB_LOSS_CROSS_ENTROPY:
        return FB(softmax_cross_entropy)(out, target, rows, k, dout);
    case FB_LOSS_CROSS_ENTROPY_PROBS:
        return FB(softmax_cross_entropy_probs)(out, target, rows, k, dout);
    case FB_LOSS_MSE:
    case FB_LOSS_MSE_HALF:
        return FB(mse)(out, target, rows * k, plan->loss == FB_LOSS_MSE_HALF, dout);
    case FB_LOSS_BCE_WITH_LOGITS:
        return FB(bce_with_logits)(out, target, rows * k, dout);
    case FB_LOSS_EXTERNAL:
        return plan->external_loss(plan->external_context, out, rows, k, dout);
    }
    return NAN;
}

/* The correct predictions of the last forward, as the losses' accuracy counts them: rows whose
 * largest output (the first, on ties, as numpy's argmax) is the label, or the largest target
 * for probability targets; for BCE the elements with (output > 0) == (target > 0.5). */
static ptrdiff_t FB(plan_hits)(const fb_plan *plan, const void *target, ptrdiff_t rows)
{
    const fb_stage *last = &plan->stages[plan->n_stages - 1];
    const real *out = last->output;
    const ptrdiff_t k = last->out_features;
    ptrdiff_t hits = 0;
    if (plan->loss == FB_LOSS_BCE_WITH_LOGITS) {
        const real *t = target;
        for (ptrdiff_t i = 0; i < rows * k; ++i)
            hits += (out[i] > 0) == (t[i] > (real)0.5);
        return hits;
    }
    for (ptrdiff_t i = 0; i < rows; ++i) {
        const real *z = out + i * k;
        ptrdiff_t best = 0, want = 0;
        for (ptrdiff_t j = 1; j < k; ++j)
            best = z[j] > z[best] ? j : best;
        if (plan->loss == FB_LOSS_CROSS_ENTROPY) {
            want = ((const int64_t *)target)[i];
        } else {
            const real *t = (const real *)target + i * k;
            for (ptrdiff_t j = 1; j < k; ++j)
                want = t[j] > t[want] ? j : want;
        }
        hits += best == want;
    }
    return hits;
}

/* Backward of one stage from dA (overwritten), given its input; writes its parameter
 * gradients and returns d(loss)/d(input) in `dX` (NULL for the first stage: not needed), or in
 * dA itself for the stages that work in place.
 *   Dense: dZ = dA * f' in place, dW = dZ^T input, db = colsum dZ, dX = dZ W (+ dX: beta_dx 1)
 *   BatchNorm: through the batch statistics (batchnorm_tpl.h)
 *   Activation: dX = dA * f'        Dropout: dX = dA * keep / (1 - p), the same mask
 *   Residual: dA goes on to the block's last stage unchanged and, kept in skip_grad, to the
 *   block input (added where the block's first stage forms its input gradient) */
static real *FB(stage_backward)(const fb_plan *plan, const fb_stage *st, const real *input,
                                ptrdiff_t rows, real *dA, real *dX, real beta_dx)
{
    const int in = st->in_features, out = st->out_features;
    switch (st->kind) {
    case FB_STAGE_DENSE:
        FB(activation_backward)(dA, st->output, st->preact, dA, rows * out, st->activation,
                                st->params);
        FB(gemm_rowmajor)(1, 0, out, in, (int)rows, 1, dA, out, input, in, 0, st->weight_grad,
                          in);
        if (st->bias_grad)
            FB(bias_grad)(dA, rows, out, st->bias_grad, 0);
        if (dX)
            FB(gemm_rowmajor)(0, 0, (int)rows, in, out, 1, dA, out, st->weight, in, beta_dx, dX,
                              in);
        return dX;
    case FB_STAGE_BATCHNORM:
        if (plan->ranks)
            FB(batchnorm_backward_ranked)(input, dA, rows, out, st->weight, st->stats,
                                          (const real *)st->stats + out, st->weight_grad,
                                          st->bias_grad, st->work, dX, plan->ranks, st->sums);
        else
            FB(batchnorm_backward)(input, dA, rows, out, st->weight, st->stats,
                                   (const real *)st->stats + out, st->weight_grad,
                                   st->bias_grad, 0, st->work, dX);
        return dX;
    case FB_STAGE_ACTIVATION:
        if (dX)
            FB(activation_backward)(dA, st->output, input, dA, rows * out, st->activation,
                                    st->params);
        return dA;
    case FB_STAGE_DROPOUT:
        if (dX)
            FB(stage_dropout)(plan, st, dA, dA, rows);
        return dA;
    case FB_STAGE_RESIDUAL:
        memcpy(st->skip_grad, dA, (size_t)(rows * out) * sizeof(real));
        return dA;
    }
    return dX;
}

/* Backward of stage s into `dX`, then the skip gradients of the residual blocks that start at
 * s added to it, innermost first, in the order the layers' own backward adds them: a Dense
 * first stage accumulates onto the innermost skip gradient (a beta = 1 gemm into a copy of
 * it), any other first stage's input gradient is added to it. */
static real *FB(stage_backward_with_skips)(const fb_plan *plan, int s, const real *input,
                                           ptrdiff_t rows, real *dA, real *dX)
{
    const fb_stage *st = &plan->stages[s];
    const size_t n = (size_t)(rows * st->in_features);
    int r = dX ? st->first_residual : -1;
    if (r >= 0 && st->kind == FB_STAGE_DENSE) {
        memcpy(dX, plan->stages[r].skip_grad, n * sizeof(real));
        dX = FB(stage_backward)(plan, st, input, rows, dA, dX, 1);
        r = plan->stages[r].next_residual;
    } else {
        dX = FB(stage_backward)(plan, st, input, rows, dA, dX, 0);
    }
    for (; r >= 0; r = plan->stages[r].next_residual)
        FB(residual_add)(plan->stages[r].skip_grad, dX, dX, (ptrdiff_t)n);
    return dX;
}

/* Backward from dout = d(loss)/d(output) (overwritten), stage by stage; the input gradient of
 * the first stage is never formed. With checkpointing, each segment's forward is first
 * recomputed from the kept output of the segment before it (the last segment's outputs are
 * still in place after the forward pass). */
static void FB(plan_backward)(const fb_plan *plan, const real *X, ptrdiff_t rows, real *dout)
{
    real *dA = dout;
    int s = plan->n_stages - 1;
    while (s >= 0) {
        int first = s;
        if (plan->recompute) {
            while (first > 0 && !plan->stages[first - 1].segment_end)
                --first;
            if (s < plan->n_stages - 1)
                FB(forward_stages)(plan, X, rows, first, s, 1);
        }
        for (; s >= first; --s) {
            real *other = dA == (real *)plan->delta[0] ? plan->delta[1] : plan->delta[0];
            dA = FB(stage_backward_with_skips)(plan, s, FB(stage_output)(plan, X, s - 1), rows,
                                               dA, s > 0 ? other : NULL);
            if (plan->ranks && plan->ranks->grads_ready)
                plan->ranks->grads_ready(plan->ranks->context, plan->stages[s].grad_offset);
        }
    }
}

static void FB(plan_update)(const fb_plan *plan, const fb_update *u)
{
    real *p = plan->params, *backup = plan->backup;
    const real *g = plan->grads;
    switch (u->kind) {
    case FB_UPDATE_NONE:
        break;
    case FB_UPDATE_SGD:
        FB(sgd_step)(p, g, u->state1, plan->n_params, u->lr, u->momentum, u->nesterov,
                     u->weight_decay, backup);
        break;
    case FB_UPDATE_ADAM:
        FB(adam_step)(p, g, u->state1, u->state2, plan->n_params, u->step, u->lr, u->beta1,
                      u->beta2, u->eps, u->weight_decay, u->decoupled, backup);
        break;
    case FB_UPDATE_RMSPROP:
        FB(rmsprop_step)(p, g, u->state1, u->state2, u->state3, plan->n_params, u->lr, u->alpha,
                         u->eps, u->momentum, u->centered, u->weight_decay, backup);
        break;
    }
}

int FB(plan_forward_backward)(const fb_plan *plan, const real *X, const void *target,
                              ptrdiff_t rows, double *loss, ptrdiff_t *hits)
{
    real *dout = plan->delta[0];
    const fb_ranks *ranks = plan->ranks;
    if (plan->buffers)  /* the forward moves the running statistics: keep them for a failure */
        memcpy(plan->buffers_backup, plan->buffers, (size_t)plan->n_buffers * sizeof(real));
    FB(forward_stages)(plan, X, rows, 0, plan->n_stages - 1, 0);
    *loss = 0;
    if (hits)
        *hits = 0;
    if (rows > 0) {
        *loss = FB(plan_loss)(plan, target, rows, dout);
        if (hits)
            *hits = FB(plan_hits)(plan, target, rows);
    }
    if (!isfinite(*loss) && !ranks) {
        FB(plan_restore_buffers)(plan);
        return 1;
    }
    if (ranks && rows > 0) {  /* d(global mean loss)/d(out) = rows / global_rows d(mean)/d(out) */
        const ptrdiff_t n = rows * plan->stages[plan->n_stages - 1].out_features;
        const real share = (real)((double)rows / (double)ranks->global_rows);
        for (ptrdiff_t i = 0; i < n; ++i)
            dout[i] *= share;
    }
    FB(plan_backward)(plan, X, rows, dout);
    return !isfinite(*loss);
}

void FB(plan_finish)(const fb_plan *plan, const fb_update *update)
{
    if (plan->clip_value > 0)
        FB(clip_grad_value)(plan->grads, plan->n_params, (real)plan->clip_value);
    if (plan->clip_norm > 0)
        FB(clip_grad_norm)(plan->grads, plan->n_params, plan->clip_norm);
    FB(plan_update)(plan, update);
}

void FB(plan_restore_buffers)(const fb_plan *plan)
{
    if (plan->buffers)
        memcpy(plan->buffers, plan->buffers_backup, (size_t)plan->n_buffers * sizeof(real));
}

int FB(plan_train_step)(const fb_plan *plan, const real *X, const void *target, ptrdiff_t rows,
                        const fb_update *update, double *loss, ptrdiff_t *hits)
{
    if (FB(plan_forward_backward)(plan, X, target, rows, loss, hits))
        return 1;
    FB(plan_finish)(plan, update);
    return 0;
}

int FB(all_finite)(const real *x, ptrdiff_t n)
{
    /* |x| <= max is false for Inf and NaN; an integer AND keeps the loop vectorizable */
    const real max = FB_IS_FLOAT ? FLT_MAX : DBL_MAX;
    int ok = 1;
    for (ptrdiff_t i = 0; i < n; ++i)
        ok &= fabs(x[i]) <= max;
    return ok;
}

int FB(all_in_range)(const real *x, ptrdiff_t n, real lo, real hi)
{
    int ok = 1;
    for (ptrdiff_t i = 0; i < n; ++i)
        ok &= x[i] >= lo && x[i] <= hi;
    return ok;
}
