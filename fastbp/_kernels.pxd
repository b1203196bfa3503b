# Declarations of the fastbp C core (src_c/fastbp_core.h) for the Cython bindings.
from libc.stdint cimport int64_t, uint8_t

cdef extern from "fastbp_core.h" nogil:
    ctypedef void (*fb_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                                 float *, int *, float *, float *, int *)
    ctypedef void (*fb_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                                 double *, int *, double *, double *, int *)
    ctypedef enum fb_activation:
        FB_IDENTITY
        FB_SIGMOID
        FB_TANH
        FB_RELU
        FB_LEAKY_RELU
        FB_ELU
        FB_SOFTPLUS
        FB_GELU
        FB_GELU_TANH
    ctypedef struct fb_activation_params:
        double slope
        double alpha
        double beta
        double threshold
    int fb_activation_needs_input(fb_activation act)

    ctypedef int (*fb_get_threads_fn)()
    ctypedef void (*fb_set_threads_fn)(int)
    void fb_set_blas(fb_sgemm_fn sgemm, fb_dgemm_fn dgemm)
    void fb_set_blas_threading(fb_get_threads_fn get_threads, fb_set_threads_fn set_threads)
    void fb_set_num_threads(int n)
    void fb_set_parallel_min(Py_ssize_t elements)
    Py_ssize_t fb_parallel_min
    int fb_get_num_threads()
    int fb_have_openmp()

    void gemm_rowmajor_f32(int trans_a, int trans_b, int m, int n, int k, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta,
                           float *C, int ldc)
    void gemm_rowmajor_f64(int trans_a, int trans_b, int m, int n, int k, double alpha,
                           const double *A, int lda, const double *B, int ldb, double beta,
                           double *C, int ldc)

    void bias_activation_forward_f32(float *Z, const float *bias, float *A, Py_ssize_t rows,
                                     Py_ssize_t cols, fb_activation act,
                                     fb_activation_params params)
    void bias_activation_forward_f64(double *Z, const double *bias, double *A, Py_ssize_t rows,
                                     Py_ssize_t cols, fb_activation act,
                                     fb_activation_params params)
    void activation_backward_f32(const float *dA, const float *A, const float *Z, float *dZ,
                                 Py_ssize_t n, fb_activation act, fb_activation_params params)
    void activation_backward_f64(const double *dA, const double *A, const double *Z,
                                 double *dZ, Py_ssize_t n, fb_activation act,
                                 fb_activation_params params)

    void bias_grad_f32(const float *dZ, Py_ssize_t rows, Py_ssize_t cols, float *db,
                       int accumulate)
    void bias_grad_f64(const double *dZ, Py_ssize_t rows, Py_ssize_t cols, double *db,
                       int accumulate)
    double sum_squares_f32(const float *x, Py_ssize_t n)
    double sum_squares_f64(const double *x, Py_ssize_t n)
    void scale_f32(float *x, Py_ssize_t n, float factor)
    void scale_f64(double *x, Py_ssize_t n, double factor)
    double clip_grad_norm_f32(float *g, Py_ssize_t n, double max_norm)
    double clip_grad_norm_f64(double *g, Py_ssize_t n, double max_norm)
    void gather_rows_f32(const float *src, Py_ssize_t cols, const int64_t *indices,
                         Py_ssize_t n, float *out)
    void gather_rows_f64(const double *src, Py_ssize_t cols, const int64_t *indices,
                         Py_ssize_t n, double *out)
    void gather_labels_i64(const int64_t *src, const int64_t *indices, Py_ssize_t n, int64_t *out)
    void clip_grad_value_f32(float *g, Py_ssize_t n, float c)
    void clip_grad_value_f64(double *g, Py_ssize_t n, double c)
    void mark_active_units_f32(const float *A, Py_ssize_t rows, Py_ssize_t cols,
                               uint8_t *active)
    void mark_active_units_f64(const double *A, Py_ssize_t rows, Py_ssize_t cols,
                               uint8_t *active)

    double softmax_cross_entropy_f32(const float *logits, const int64_t *labels,
                                     Py_ssize_t rows, Py_ssize_t cols, float *dlogits)
    double softmax_cross_entropy_f64(const double *logits, const int64_t *labels,
                                     Py_ssize_t rows, Py_ssize_t cols, double *dlogits)
    double softmax_cross_entropy_probs_f32(const float *logits, const float *targets,
                                           Py_ssize_t rows, Py_ssize_t cols, float *dlogits)
    double softmax_cross_entropy_probs_f64(const double *logits, const double *targets,
                                           Py_ssize_t rows, Py_ssize_t cols, double *dlogits)
    double mse_f32(const float *pred, const float *target, Py_ssize_t n, int half, float *grad)
    double mse_f64(const double *pred, const double *target, Py_ssize_t n, int half,
                   double *grad)
    double bce_with_logits_f32(const float *logits, const float *target, Py_ssize_t n,
                               float *grad)
    double bce_with_logits_f64(const double *logits, const double *target, Py_ssize_t n,
                               double *grad)

    void sgd_step_f32(float *p, const float *g, float *buf, Py_ssize_t n, double lr,
                      double momentum, int nesterov, double weight_decay, float *backup)
    void sgd_step_f64(double *p, const double *g, double *buf, Py_ssize_t n, double lr,
                      double momentum, int nesterov, double weight_decay, double *backup)
    void adam_step_f32(float *p, const float *g, float *m, float *v, Py_ssize_t n, long step,
                       double lr, double beta1, double beta2, double eps, double weight_decay,
                       int decoupled, float *backup)
    void adam_step_f64(double *p, const double *g, double *m, double *v, Py_ssize_t n,
                       long step, double lr, double beta1, double beta2, double eps,
                       double weight_decay, int decoupled, double *backup)
    void rmsprop_step_f32(float *p, const float *g, float *square_avg, float *grad_avg,
                          float *buf, Py_ssize_t n, double lr, double alpha, double eps,
                          double momentum, int centered, double weight_decay, float *backup)
    void rmsprop_step_f64(double *p, const double *g, double *square_avg, double *grad_avg,
                          double *buf, Py_ssize_t n, double lr, double alpha, double eps,
                          double momentum, int centered, double weight_decay, double *backup)

# Layers: batch normalization, dropout, the residual sum.
from libc.stdint cimport uint64_t

cdef extern from "fastbp_core.h" nogil:
    void batchnorm_forward_f32(const float *X, Py_ssize_t rows, Py_ssize_t cols,
                               const float *gamma, const float *beta, float *running_mean,
                               float *running_var, int training, double momentum, double eps,
                               float *mean, float *invstd, float *Y)
    void batchnorm_forward_f64(const double *X, Py_ssize_t rows, Py_ssize_t cols,
                               const double *gamma, const double *beta, double *running_mean,
                               double *running_var, int training, double momentum, double eps,
                               double *mean, double *invstd, double *Y)
    void batchnorm_backward_f32(const float *X, const float *dY, Py_ssize_t rows,
                                Py_ssize_t cols, const float *gamma, const float *mean,
                                const float *invstd, float *dgamma, float *dbeta, int accumulate,
                                float *work, float *dX)
    void batchnorm_backward_f64(const double *X, const double *dY, Py_ssize_t rows,
                                Py_ssize_t cols, const double *gamma, const double *mean,
                                const double *invstd, double *dgamma, double *dbeta,
                                int accumulate, double *work, double *dX)

    void dropout_f32(const float *x, float *y, Py_ssize_t n, double p, uint64_t seed,
                     uint64_t draw)
    void dropout_f64(const double *x, double *y, Py_ssize_t n, double p, uint64_t seed,
                     uint64_t draw)

    void residual_add_f32(const float *x, const float *f, float *y, Py_ssize_t n)
    void residual_add_f64(const double *x, const double *f, double *y, Py_ssize_t n)
