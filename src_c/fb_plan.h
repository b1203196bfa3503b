/* A compiled training step: a network of stages (Dense + activation, BatchNorm, activation,
 * Dropout) described by C structs that point into the network's flat parameter, gradient and
 * buffer arrays and into preallocated workspaces. One call runs forward, loss, backward and the
 * optimizer update.
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
    FB_LOSS_BCE_WITH_LOGITS = 4,
    FB_LOSS_EXTERNAL = 5             /* computed by plan->external_loss (a loss of the caller's) */
} fb_loss_kind;

/* A loss from outside the C core: the mean loss of `out` (rows, k) (the target is the
 * caller's, through `context`), d(loss)/d(out) written to dout; NaN when it fails. */
typedef double (*fb_external_loss_fn)(void *context, const void *out, ptrdiff_t rows,
                                      ptrdiff_t k, void *dout);

typedef enum {
    FB_UPDATE_NONE = 0, /* gradients only: the caller updates */
    FB_UPDATE_SGD = 1,
    FB_UPDATE_ADAM = 2,
    FB_UPDATE_RMSPROP = 3
} fb_update_kind;

typedef enum {
    FB_STAGE_DENSE = 0,      /* output = f(input W^T + b) */
    FB_STAGE_BATCHNORM = 1,  /* output = gamma (input - mean) invstd + beta, batch statistics */
    FB_STAGE_ACTIVATION = 2, /* output = f(input) */
    FB_STAGE_DROPOUT = 3,    /* output = input * keep(seed, draw, i) / (1 - p) */
    FB_STAGE_RESIDUAL = 4    /* output = block input + input: the end of a residual block whose
                              * layers are the stages after stage skip_from */
} fb_stage_kind;

/* One stage; each kind reads its own fields. */
typedef struct {
    fb_stage_kind kind;
    int in_features, out_features;
    void *weight, *bias;             /* Dense: W (out, in), b (out,) or NULL.  BatchNorm: gamma,
                                      * beta (out,).  In the parameter buffer. */
    void *weight_grad, *bias_grad;   /* the same places in the gradient buffer */
    void *running_mean, *running_var; /* BatchNorm: in the network's buffers array */
    void *stats;                     /* BatchNorm: (2, out) workspace, mean and invstd of the batch */
    void *work;                      /* BatchNorm: (2, out) workspace of backward */
    double *sums;                    /* BatchNorm: (2, out) workspace of the sums over ranks */
    double momentum, eps;            /* BatchNorm */
    double p;                        /* Dropout */
    uint64_t seed, draw;             /* Dropout: the mask of this step */
    void *output;                    /* (max_rows, out) workspace: the output of the last forward */
    void *preact;                    /* (max_rows, out) workspace keeping what the activation
                                      * was applied to, where fb_activation_needs_input, else
                                      * NULL (Dense) */
    fb_activation activation;        /* Dense (fused) and Activation stages */
    fb_activation_params params;
    int skip_from;                   /* Residual: the stage whose output is the block input (-1:
                                      * the step's input X) */
    void *skip_grad;                 /* Residual: (max_rows, out) workspace, the gradient that
                                      * the skip path carries back to the block input */
    int next_residual;               /* Residual: the next Residual stage whose block starts at
                                      * the same stage (nested blocks), or -1 */
    int first_residual;              /* any stage: the innermost Residual stage whose block
                                      * starts at this stage, or -1 */
    int segment_end;                 /* gradient checkpointing: this stage ends a segment, its
                                      * output is kept; the others' are recomputed in backward */
    ptrdiff_t grad_offset;           /* the first gradient element of this stage or a later one:
                                      * once its backward ran, grads[grad_offset:] are final */
} fb_stage;

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
    fb_stage *stages;
    ptrdiff_t max_rows;              /* workspaces hold this many rows */
    void *delta[2];                  /* (max_rows, widest layer) gradient workspaces */
    void *params, *grads;            /* flat buffers of n_params elements */
    void *backup;                    /* receives the parameters before each update; may be NULL */
    ptrdiff_t n_params;
    void *buffers, *buffers_backup;  /* the network's buffers (running statistics) and room for
                                      * a copy, restored when a step fails; NULL when none */
    ptrdiff_t n_buffers;
    int recompute;                   /* gradient checkpointing on: outputs inside a segment share
                                      * buffers with other segments and are recomputed */
    fb_loss_kind loss;
    fb_external_loss_fn external_loss; /* FB_LOSS_EXTERNAL: the loss, called with context */
    void *external_context;
    double clip_value;               /* clamp each gradient to [-clip_value, clip_value] (<= 0: no) */
    double clip_norm;                /* then clip the global gradient norm to this (<= 0: no) */
    const fb_ranks *ranks;           /* data-parallel training: this step's rows are part of a
                                      * global batch (see plan_forward_backward); NULL: not */
} fb_plan;

#define FB_DECLARATIONS "fb_plan_tpl.h"
#include "fb_declare.h"

#endif
