/* Shared definitions of the fastbp C core: type templating, threading threshold, BLAS pointers.
 *
 * Every kernel family is written once in a `*_tpl.h` file in terms of `real` and `FB(name)`, then
 * instantiated for float (suffix _f32) and double (suffix _f64) by its `.c` file. */
#ifndef FB_COMMON_H
#define FB_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this many elements an elementwise kernel runs on one thread. Waking the sleeping
 * OpenMP workers (passive waiting, so that they leave the cores to BLAS) costs about 50 us on
 * the 2-core machines we measure on: a relu pass over 2^19 floats takes 94 us on one thread and
 * 114 us on two, over 2^20 floats 186 and 147 us; Adam breaks even near 2^18. */
#define FB_PARALLEL_MIN_DEFAULT (1 << 19)
#define FB_PARALLEL_MIN fb_parallel_min
extern ptrdiff_t fb_parallel_min;  /* FB_PARALLEL_MIN_DEFAULT; tests lower it to reach the
                                    * parallel branches with small arrays */

/* Reductions split their input into this many fixed chunks whatever the thread count, and combine
 * the partial sums in chunk order: results do not depend on the number of threads. */
#define FB_REDUCE_CHUNKS 64

#define FB_CONCAT_(a, b) a##_##b
#define FB_CONCAT(a, b) FB_CONCAT_(a, b)

/* Fortran-ABI ?gemm as exported by scipy.linalg.cython_blas (every argument by address). */
typedef void (*fb_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                            float *a, int *lda, float *b, int *ldb, float *beta, float *c, int *ldc);
typedef void (*fb_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                            double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                            int *ldc);

typedef struct {
    fb_sgemm_fn sgemm;
    fb_dgemm_fn dgemm;
} fb_blas_table;

/* Set once by the bindings at import, before any gemm runs. */
void fb_set_blas(fb_sgemm_fn sgemm, fb_dgemm_fn dgemm);
extern fb_blas_table fb_blas;

/* The activations: X(CODE, name) for each, in the order of their codes (FB_CODE = 0, 1, ...).
 * `name` is the one the Python front end uses; the bindings build their table from it. */
#define FB_ACTIVATION_LIST(X)                                                                 \
    X(IDENTITY, identity)                                                                     \
    X(SIGMOID, sigmoid)                                                                       \
    X(TANH, tanh)                                                                             \
    X(RELU, relu)                                                                             \
    X(LEAKY_RELU, leaky_relu)                                                                 \
    X(ELU, elu)                                                                               \
    X(SOFTPLUS, softplus)                                                                     \
    X(GELU, gelu)                                                                             \
    X(GELU_TANH, gelu_tanh)

/* Activation codes shared by the forward and backward kernels. */
#define FB_ACTIVATION_CODE(CODE, name) FB_##CODE,
typedef enum { FB_ACTIVATION_LIST(FB_ACTIVATION_CODE) } fb_activation;
#undef FB_ACTIVATION_CODE

#define FB_ACTIVATION_ONE(CODE, name) +1
enum { FB_N_ACTIVATIONS = 0 FB_ACTIVATION_LIST(FB_ACTIVATION_ONE) };
#undef FB_ACTIVATION_ONE

/* The name of `act` ("relu", ...), or NULL for a code that is not an activation. */
const char *fb_activation_name(fb_activation act);

/* The C core's thread count (fb_set_num_threads), process-wide: OpenMP's own setting is per
 * calling thread, so a Python thread other than the one that set it would get OpenMP's
 * default. */
extern int fb_num_threads;

/* 1 once a parallel loop has run on more than one thread: GNU OpenMP then keeps a pool of
 * threads that a forked child does not have, and a parallel region there would wait for them
 * forever. A fork handler (fb_install_fork_handler) makes such a child run on one thread. */
extern int fb_threads_started;

/* for (I = 0; I < N; ++I) { BODY }, the iterations split over fb_num_threads OpenMP threads
 * when PARALLEL is true. The serial branch is a plain loop: entering a parallel region costs
 * far more than the arithmetic of a small array, even under if(0). */
#define FB_FOR(PARALLEL, I, N, ...)                                                           \
    do {                                                                                      \
        const ptrdiff_t fb_for_n_ = (N);                                                      \
        if (PARALLEL) {                                                                       \
            if (fb_num_threads > 1)                                                           \
                fb_threads_started = 1;                                                       \
            _Pragma("omp parallel for schedule(guided) num_threads(fb_num_threads)")          \
            for (ptrdiff_t I = 0; I < fb_for_n_; ++I) {                                       \
                __VA_ARGS__                                                                   \
            }                                                                                 \
        } else {                                                                              \
            for (ptrdiff_t I = 0; I < fb_for_n_; ++I) {                                       \
                __VA_ARGS__                                                                   \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* Parameters of the parametrised activations; each activation reads only its own fields. */
typedef struct {
    double slope;     /* leaky_relu: slope for z < 0 */
    double alpha;     /* elu: alpha (e^z - 1) for z <= 0 */
    double beta;      /* softplus: log(1 + e^(beta z)) / beta ... */
    double threshold; /* softplus: ... and z itself where beta z > threshold */
} fb_activation_params;

/* Data-parallel training (fastbp.distributed): this process, one rank of several, holds some
 * rows of each global batch. The sums over ranks are the caller's (MPI, through Python). */
typedef struct {
    void (*sum)(void *context, double *data, ptrdiff_t n); /* data[0:n] = its sum over ranks */
    void (*grads_ready)(void *context, ptrdiff_t offset);  /* backward: grads[offset:] final */
    void *context;
    ptrdiff_t global_rows;     /* rows of the global batch, over every rank */
    const int64_t *positions;  /* the position of each of this rank's rows in the global batch */
} fb_ranks;

/* 1 when the derivative of `act` cannot be written through its output, so backward needs the
 * pre-activation z: GELU is not monotonic, and softplus's output does not tell on which side of
 * its threshold z was (below the threshold it exceeds z). */
static inline int fb_activation_needs_input(fb_activation act)
{
    return act == FB_SOFTPLUS || act == FB_GELU || act == FB_GELU_TANH;
}

/* RESULT = sum over I in [0, N) of what the body adds to ACC (a double), computed in
 * FB_REDUCE_CHUNKS fixed chunks combined in order: the same bits whatever the thread count.
 * WORK is the element count that decides whether the chunks run in parallel. */
#define FB_CHUNKED_SUM(RESULT, N, WORK, I, ACC, ...)                                          \
    do {                                                                                      \
        double fb_partial_[FB_REDUCE_CHUNKS];                                                 \
        const ptrdiff_t fb_n_ = (N);                                                          \
        FB_FOR((WORK) >= FB_PARALLEL_MIN, fb_c_, FB_REDUCE_CHUNKS,                            \
            double ACC = 0.0;                                                                 \
            const ptrdiff_t fb_hi_ = fb_n_ * (fb_c_ + 1) / FB_REDUCE_CHUNKS;                  \
            for (ptrdiff_t I = fb_n_ * fb_c_ / FB_REDUCE_CHUNKS; I < fb_hi_; ++I) {           \
                __VA_ARGS__                                                                   \
            }                                                                                 \
            fb_partial_[fb_c_] = ACC;                                                         \
        );                                                                                    \
        double fb_total_ = 0.0;                                                               \
        for (int fb_c_ = 0; fb_c_ < FB_REDUCE_CHUNKS; ++fb_c_)                                \
            fb_total_ += fb_partial_[fb_c_];                                                  \
        (RESULT) = fb_total_;                                                                 \
    } while (0)

/* Sets the count; returns 0, or -1 (the count stays 1) in a child forked after threads ran. */
int fb_set_num_threads(int n);
void fb_install_fork_handler(void);
void fb_set_parallel_min(ptrdiff_t elements);
int fb_get_num_threads(void);
int fb_default_num_threads(void); /* OpenMP's own: OMP_NUM_THREADS, else every CPU */
int fb_have_openmp(void);

#endif
