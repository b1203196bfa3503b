/* A compiled training step: a network of Dense + activation stages described by C structs that
 * point into the network's flat parameter and gradient buffers and into preallocated
 * workspaces. One call runs forward, loss, backward and the optimizer update.
 *
 * The structs are shared by float and double plans (pointers are void *); the functions are
 * instantiated for both element types from plan_tpl.h. */
#ifndef FB_PLAN_H
#define FB_PLAN_H

#include "fb_common.h"

typedef enum {
    FB_LOSS_CROSS_ENTROPY = 0,       /* softmax cross-entropy, int64 labels */
    FB_LOSS_CROSS_ENTROPY_PROBS = 1, /* softmax cross-entropy, target probability rows */
    FB_LOSS_MSE = 2,
    FB_LOSS_MSE_HALF = 3,
    FB_LOSS_BCE_WITH_LOGITS = 4
} fb_loss_kind;

typedef enum {
    FB_UPDATE_NONE = 0, /* gradients only: the caller updates */
    FB_UPDATE_SGD = 1,
    FB_UPDATE_ADAM = 2,
    FB_UPDATE_RMSPROP = 3
} fb_update_kind;

/* One Dense layer and the activation after it: output = f(input W^T + b). */
typedef struct {
    int in_features, out_features;
    void *weight, *bias;             /* (out, in) and (out,) in the parameter buffer; bias may be NULL */
    void *weight_grad, *bias_grad;   /* same places in the gradient buffer */
    void *output;                    /* (max_rows, out) workspace: the output of the last forward */
    void *preact;                    /* (max_rows, out) workspace keeping input W^T + b where
                                      * fb_activation_needs_input(activation), else NULL */
    fb_activation activation;
    fb_activation_params params;
} fb_dense_stage;

/* The optimizer update of one step (torch.optim semantics, see optim_tpl.h). */
typedef struct {
    fb_update_kind kind;
    long step;                       /* Adam: the step number t >= 1 of this update */
    double lr, beta1, beta2, eps, weight_decay, momentum, alpha;
    int decoupled, nesterov, centered;
    /* Adam: m, v.  SGD: momentum buffer.  RMSprop: square_avg, grad_avg, momentum buffer.
     * A state an update does not use may be NULL. */
    void *state1, *state2, *state3;
} fb_update;

typedef struct {
    int n_stages;
    fb_dense_stage *stages;
    ptrdiff_t max_rows;              /* workspaces hold this many rows */
    void *delta[2];                  /* (max_rows, widest layer) gradient workspaces */
    void *params, *grads;            /* flat buffers of n_params elements */
    void *backup;                    /* receives the parameters before each update; may be NULL */
    ptrdiff_t n_params;
    fb_loss_kind loss;
    double clip_value;               /* clamp each gradient to [-clip_value, clip_value] (<= 0: no) */
    double clip_norm;                /* then clip the global gradient norm to this (<= 0: no) */
} fb_plan;

#define real float
#define FB(name) FB_CONCAT(name, f32)
#include "fb_plan_tpl.h"
#undef real
#undef FB

#define real double
#define FB(name) FB_CONCAT(name, f64)
#include "fb_plan_tpl.h"
#undef real
#undef FB

#endif
