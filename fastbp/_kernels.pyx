# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Bindings of the fastbp C core: argument checks, dtype dispatch, GIL released.

Arrays must be C-contiguous NumPy arrays of one float dtype (float32 or float64) per call;
outputs must be writeable. The Python front end converts user input before it gets here; this
layer refuses anything that would let C read or write out of bounds.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt
from libc.stdint cimport int64_t, uint8_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

cnp.import_array()
fb_set_blas(<fb_sgemm_fn>sgemm, <fb_dgemm_fn>dgemm)

HAVE_OPENMP = bool(fb_have_openmp())

ACTIVATIONS = {
    "identity": FB_IDENTITY,
    "sigmoid": FB_SIGMOID,
    "tanh": FB_TANH,
    "relu": FB_RELU,
    "leaky_relu": FB_LEAKY_RELU,
    "elu": FB_ELU,
    "softplus": FB_SOFTPLUS,
    "gelu": FB_GELU,
    "gelu_tanh": FB_GELU_TANH,
}

cdef Py_ssize_t INT_MAX = 2147483647


cdef tuple _shape(cnp.ndarray a):
    return (<object>a).shape


cdef cnp.ndarray _checked(object a, str name, int ndim, bint writeable=False):
    """Return `a` if it is a C-contiguous float32/float64 array of `ndim` dimensions."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    cdef cnp.ndarray arr = a
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {_shape(arr)}")
    if arr.dtype != np.float32 and arr.dtype != np.float64:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {arr.dtype}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writeable and not arr.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array")
    return arr


cdef cnp.ndarray _int64(object a, str name):
    """Return `a` if it is a C-contiguous 1-D int64 array."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    cdef cnp.ndarray arr = a
    if arr.ndim != 1 or arr.dtype != np.int64 or not arr.flags.c_contiguous:
        raise TypeError(f"{name}: expected a C-contiguous 1-D int64 array, "
                        f"got {arr.ndim}-D {arr.dtype}")
    return arr


cdef bint _is_f32(cnp.ndarray first, str first_name, list others) except -1:
    """True for float32, False for float64; every other array must share the dtype."""
    for arr, name in others:
        if arr is not None and arr.dtype != first.dtype:
            raise TypeError(f"{name}: expected dtype {first.dtype} like {first_name}, "
                            f"got {arr.dtype}")
    return first.dtype == np.float32


cdef void _same_shape(cnp.ndarray a, str a_name, cnp.ndarray b, str b_name) except *:
    if _shape(a) != _shape(b):
        raise ValueError(f"{b_name}: expected shape {_shape(a)} like {a_name}, got {_shape(b)}")


cdef fb_activation _activation(str name) except *:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")


cdef fb_activation_params _activation_params(fb_activation act, double slope, double alpha,
                                              double beta, double threshold) except *:
    """The parameters of `act`, refusing values for which its formulas do not hold."""
    if act == FB_ELU and not (0 <= alpha < float("inf")):
        raise ValueError(f"alpha: expected a finite number >= 0 for elu, got {alpha}")
    if act == FB_SOFTPLUS and not (0 < beta < float("inf")):
        raise ValueError(f"beta: expected a finite number > 0 for softplus, got {beta}")
    if act == FB_SOFTPLUS and threshold != threshold:
        raise ValueError(f"threshold: expected a number for softplus, got {threshold}")
    cdef fb_activation_params params
    params.slope, params.alpha, params.beta, params.threshold = slope, alpha, beta, threshold
    return params


cdef void _check_indices(const int64_t *idx, Py_ssize_t n, Py_ssize_t bound,
                         str name) except *:
    """Raise unless every idx[i] is in [0, bound)."""
    cdef Py_ssize_t i, bad = -1
    with nogil:
        for i in range(n):
            if idx[i] < 0 or idx[i] >= bound:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"{name}: expected values in [0, {bound}), got {idx[bad]} "
                         f"at position {bad}")


def set_blas_threading(size_t get_threads, size_t set_threads):
    """Give the C core openblas_get_num_threads / openblas_set_num_threads of the BLAS behind
    SciPy's ?gemm (their addresses; 0, 0: unknown), so that small products run on one thread."""
    fb_set_blas_threading(<fb_get_threads_fn>get_threads, <fb_set_threads_fn>set_threads)


def set_parallel_min(Py_ssize_t elements):
    """Run elementwise kernels on several threads from this many elements (returns the old
    value). The default suits the machines fastbp is tuned on; tests lower it to reach the
    parallel branches with small arrays."""
    old = fb_parallel_min
    fb_set_parallel_min(max(1, elements))
    return old


def set_num_threads(int n):
    """Set the number of OpenMP threads of the C core (n >= 1)."""
    if n < 1:
        raise ValueError(f"n: expected a positive thread count, got {n}")
    fb_set_num_threads(n)


def get_num_threads():
    """Number of OpenMP threads the C core uses (1 without OpenMP)."""
    return fb_get_num_threads()


def gemm(A, B, C, bint trans_a=False, bint trans_b=False, double alpha=1.0, double beta=0.0):
    """C = alpha * op(A) @ op(B) + beta * C, in place (row-major; beta=0 never reads C)."""
    cdef cnp.ndarray a = _checked(A, "A", 2), b = _checked(B, "B", 2)
    cdef cnp.ndarray c = _checked(C, "C", 2, writeable=True)
    cdef bint f32 = _is_f32(a, "A", [(b, "B"), (c, "C")])
    cdef Py_ssize_t m = a.shape[1] if trans_a else a.shape[0]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t kb = b.shape[1] if trans_b else b.shape[0]
    cdef Py_ssize_t n = b.shape[0] if trans_b else b.shape[1]
    if kb != k:
        raise ValueError(f"B: expected op(B) with {k} rows to match op(A) {m}x{k}, "
                         f"got op(B) {kb}x{n}")
    if c.shape[0] != m or c.shape[1] != n:
        raise ValueError(f"C: expected shape ({m}, {n}), got {_shape(c)}")
    for dim in (a.shape[0], a.shape[1], b.shape[0], b.shape[1]):
        if dim > INT_MAX:
            raise ValueError("gemm: dimensions above 2**31 - 1 are not supported by BLAS")
    cdef int lda = max(1, a.shape[1]), ldb = max(1, b.shape[1]), ldc = max(1, c.shape[1])
    if f32:
        with nogil:
            gemm_rowmajor_f32(trans_a, trans_b, m, n, k, <float>alpha,
                              <float *>cnp.PyArray_DATA(a), lda, <float *>cnp.PyArray_DATA(b),
                              ldb, <float>beta, <float *>cnp.PyArray_DATA(c), ldc)
    else:
        with nogil:
            gemm_rowmajor_f64(trans_a, trans_b, m, n, k, alpha,
                              <double *>cnp.PyArray_DATA(a), lda,
                              <double *>cnp.PyArray_DATA(b), ldb, beta,
                              <double *>cnp.PyArray_DATA(c), ldc)


def needs_preactivation(str activation):
    """True when the backward of `activation` reads its input z rather than its output f(z)."""
    return bool(fb_activation_needs_input(_activation(activation)))


def bias_activation_forward(Z, bias, str activation, double slope=0.01, *, A=None,
                            double alpha=1.0, double beta=1.0, double threshold=20.0):
    """A = f(Z + bias); bias is 1-D of Z.shape[1], or None.

    Without A (or with A the same array as Z) Z is overwritten by f(Z + bias). With a separate A
    of Z's shape, Z keeps Z + bias: the pre-activation that `activation_backward` needs when
    `needs_preactivation(activation)`. slope: leaky_relu; alpha: elu; beta, threshold: softplus.
    """
    cdef cnp.ndarray z = _checked(Z, "Z", 2, writeable=True)
    cdef cnp.ndarray b = None if bias is None else _checked(bias, "bias", 1)
    cdef cnp.ndarray a = z if A is None else _checked(A, "A", 2, writeable=True)
    cdef fb_activation act = _activation(activation)
    cdef fb_activation_params params = _activation_params(act, slope, alpha, beta, threshold)
    cdef bint f32 = _is_f32(z, "Z", [(b, "bias"), (a, "A")])
    if b is not None and b.shape[0] != z.shape[1]:
        raise ValueError(f"bias: expected shape ({z.shape[1]},), got {_shape(b)}")
    _same_shape(z, "Z", a, "A")
    cdef void *zp = cnp.PyArray_DATA(z)
    cdef void *ap = cnp.PyArray_DATA(a)
    if ap != zp and np.may_share_memory(a, z):
        raise ValueError("A: expected an array that does not overlap Z (or Z itself, or None "
                         "for in place)")
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1]
    cdef void *bp = NULL if b is None else cnp.PyArray_DATA(b)
    if f32:
        with nogil:
            bias_activation_forward_f32(<float *>zp, <float *>bp, <float *>ap, rows, cols, act,
                                        params)
    else:
        with nogil:
            bias_activation_forward_f64(<double *>zp, <double *>bp, <double *>ap, rows, cols,
                                        act, params)


def activation_backward(dA, A, dZ, str activation, double slope=0.01, *, Z=None,
                        double alpha=1.0, double beta=1.0, double threshold=20.0):
    """dZ = dA * f'(z); dZ may be dA.

    f' is written through the forward output A = f(z), or, where
    `needs_preactivation(activation)`, computed from the pre-activation Z that forward kept
    (then A may be None). Parameters as in `bias_activation_forward`.
    """
    cdef fb_activation act = _activation(activation)
    cdef fb_activation_params params = _activation_params(act, slope, alpha, beta, threshold)
    cdef bint from_input = fb_activation_needs_input(act)
    cdef str source_name = "Z" if from_input else "A"
    cdef object source = Z if from_input else A
    if source is None:
        what = "pre-activation Z" if from_input else "output A"
        raise ValueError(f"{source_name}: the {activation} backward needs the forward's {what}, "
                         "got None")
    cdef cnp.ndarray da = _checked(dA, "dA", 2), src = _checked(source, source_name, 2)
    cdef cnp.ndarray dz = _checked(dZ, "dZ", 2, writeable=True)
    cdef bint f32 = _is_f32(da, "dA", [(src, source_name), (dz, "dZ")])
    _same_shape(da, "dA", src, source_name)
    _same_shape(da, "dA", dz, "dZ")
    cdef Py_ssize_t n = da.size
    cdef void *sp = cnp.PyArray_DATA(src)
    cdef void *ap = NULL if from_input else sp
    cdef void *zp = sp if from_input else NULL
    if f32:
        with nogil:
            activation_backward_f32(<float *>cnp.PyArray_DATA(da), <float *>ap, <float *>zp,
                                    <float *>cnp.PyArray_DATA(dz), n, act, params)
    else:
        with nogil:
            activation_backward_f64(<double *>cnp.PyArray_DATA(da), <double *>ap,
                                    <double *>zp, <double *>cnp.PyArray_DATA(dz), n, act,
                                    params)


def bias_grad(dZ, db, bint accumulate=False):
    """db = column sums of dZ (db += ... when accumulate); deterministic."""
    cdef cnp.ndarray dz = _checked(dZ, "dZ", 2)
    cdef cnp.ndarray out = _checked(db, "db", 1, writeable=True)
    cdef bint f32 = _is_f32(dz, "dZ", [(out, "db")])
    if out.shape[0] != dz.shape[1]:
        raise ValueError(f"db: expected shape ({dz.shape[1]},), got {_shape(out)}")
    cdef Py_ssize_t rows = dz.shape[0], cols = dz.shape[1]
    if f32:
        with nogil:
            bias_grad_f32(<float *>cnp.PyArray_DATA(dz), rows, cols,
                          <float *>cnp.PyArray_DATA(out), accumulate)
    else:
        with nogil:
            bias_grad_f64(<double *>cnp.PyArray_DATA(dz), rows, cols,
                          <double *>cnp.PyArray_DATA(out), accumulate)


def grad_norm(x):
    """L2 norm of a 1-D array, accumulated in double, the same for any thread count."""
    cdef cnp.ndarray arr = _checked(x, "x", 1)
    cdef Py_ssize_t n = arr.shape[0]
    cdef double total
    if arr.dtype == np.float32:
        with nogil:
            total = sum_squares_f32(<float *>cnp.PyArray_DATA(arr), n)
    else:
        with nogil:
            total = sum_squares_f64(<double *>cnp.PyArray_DATA(arr), n)
    return sqrt(total)


def scale(x, double factor):
    """x *= factor, in place (1-D)."""
    cdef cnp.ndarray arr = _checked(x, "x", 1, writeable=True)
    cdef Py_ssize_t n = arr.shape[0]
    if arr.dtype == np.float32:
        with nogil:
            scale_f32(<float *>cnp.PyArray_DATA(arr), n, <float>factor)
    else:
        with nogil:
            scale_f64(<double *>cnp.PyArray_DATA(arr), n, factor)


def clip_grad_norm(grads, double max_norm):
    """Scale grads by max_norm / (norm + 1e-6) when below 1; return the norm before."""
    cdef cnp.ndarray g = _checked(grads, "grads", 1, writeable=True)
    if not max_norm > 0:
        raise ValueError(f"max_norm: expected a positive number, got {max_norm}")
    cdef Py_ssize_t n = g.shape[0]
    cdef double norm
    if g.dtype == np.float32:
        with nogil:
            norm = clip_grad_norm_f32(<float *>cnp.PyArray_DATA(g), n, max_norm)
    else:
        with nogil:
            norm = clip_grad_norm_f64(<double *>cnp.PyArray_DATA(g), n, max_norm)
    return norm


def gather_rows(src, indices, out):
    """out[i, :] = src[indices[i], :]"""
    cdef cnp.ndarray s = _checked(src, "src", 2), o = _checked(out, "out", 2, writeable=True)
    cdef cnp.ndarray idx = _int64(indices, "indices")
    cdef bint f32 = _is_f32(s, "src", [(o, "out")])
    if o.shape[0] != idx.shape[0] or o.shape[1] != s.shape[1]:
        raise ValueError(f"out: expected shape ({idx.shape[0]}, {s.shape[1]}), got {_shape(o)}")
    cdef Py_ssize_t n = idx.shape[0], cols = s.shape[1]
    cdef const int64_t *ip = <int64_t *>cnp.PyArray_DATA(idx)
    _check_indices(ip, n, s.shape[0], "indices")
    if f32:
        with nogil:
            gather_rows_f32(<float *>cnp.PyArray_DATA(s), cols, ip, n,
                            <float *>cnp.PyArray_DATA(o))
    else:
        with nogil:
            gather_rows_f64(<double *>cnp.PyArray_DATA(s), cols, ip, n,
                            <double *>cnp.PyArray_DATA(o))


def gather_labels(src, indices, out):
    """out[i] = src[indices[i]] for int64 labels."""
    cdef cnp.ndarray s = _int64(src, "src"), idx = _int64(indices, "indices")
    cdef cnp.ndarray o = _int64(out, "out")
    if not o.flags.writeable or o.shape[0] != idx.shape[0]:
        raise ValueError(f"out: expected a writeable array of shape ({idx.shape[0]},), "
                         f"got {_shape(o)}")
    cdef Py_ssize_t n = idx.shape[0]
    cdef const int64_t *ip = <int64_t *>cnp.PyArray_DATA(idx)
    _check_indices(ip, n, s.shape[0], "indices")
    with nogil:
        gather_labels_i64(<int64_t *>cnp.PyArray_DATA(s), ip, n, <int64_t *>cnp.PyArray_DATA(o))


cdef tuple _loss_arrays(object pred, str pred_name, object target, object grad):
    """Check a (prediction, same-shaped target, same-shaped gradient) triple."""
    cdef cnp.ndarray p = _checked(pred, pred_name, np.ndim(pred))
    cdef cnp.ndarray t = _checked(target, "target", p.ndim)
    cdef cnp.ndarray g = _checked(grad, "grad", p.ndim, writeable=True)
    _is_f32(p, pred_name, [(t, "target"), (g, "grad")])
    _same_shape(p, pred_name, t, "target")
    _same_shape(p, pred_name, g, "grad")
    if p.size == 0:
        raise ValueError(f"{pred_name}: expected at least one element, got shape {_shape(p)}")
    return p, t, g


def softmax_cross_entropy(logits, labels, dlogits):
    """Mean softmax cross-entropy of int64 labels; dlogits = (softmax - onehot) / n."""
    cdef cnp.ndarray z = _checked(logits, "logits", 2)
    cdef cnp.ndarray y = _int64(labels, "labels")
    cdef cnp.ndarray d = _checked(dlogits, "dlogits", 2, writeable=True)
    cdef bint f32 = _is_f32(z, "logits", [(d, "dlogits")])
    _same_shape(z, "logits", d, "dlogits")
    if y.shape[0] != z.shape[0] or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"labels: expected {z.shape[0]} labels for logits of shape "
                         f"{_shape(z)} (non-empty), got {y.shape[0]}")
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1]
    cdef const int64_t *yp = <int64_t *>cnp.PyArray_DATA(y)
    _check_indices(yp, rows, cols, "labels")
    cdef double loss
    if f32:
        with nogil:
            loss = softmax_cross_entropy_f32(<float *>cnp.PyArray_DATA(z), yp, rows, cols,
                                             <float *>cnp.PyArray_DATA(d))
    else:
        with nogil:
            loss = softmax_cross_entropy_f64(<double *>cnp.PyArray_DATA(z), yp, rows, cols,
                                             <double *>cnp.PyArray_DATA(d))
    return loss


def softmax_cross_entropy_probs(logits, targets, dlogits):
    """Mean softmax cross-entropy of target probabilities (n, k)."""
    cdef cnp.ndarray z, t, d
    z, t, d = _loss_arrays(logits, "logits", targets, dlogits)
    if z.ndim != 2:
        raise ValueError(f"logits: expected a 2-D array, got shape {_shape(z)}")
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1]
    cdef double loss
    if z.dtype == np.float32:
        with nogil:
            loss = softmax_cross_entropy_probs_f32(
                <float *>cnp.PyArray_DATA(z), <float *>cnp.PyArray_DATA(t), rows, cols,
                <float *>cnp.PyArray_DATA(d))
    else:
        with nogil:
            loss = softmax_cross_entropy_probs_f64(
                <double *>cnp.PyArray_DATA(z), <double *>cnp.PyArray_DATA(t), rows, cols,
                <double *>cnp.PyArray_DATA(d))
    return loss


def mse(pred, target, grad, bint half=False):
    """Mean squared error over all elements (x 1/2 when half); grad = d(loss)/d(pred)."""
    cdef cnp.ndarray p, t, g
    p, t, g = _loss_arrays(pred, "pred", target, grad)
    cdef Py_ssize_t n = p.size
    cdef double loss
    if p.dtype == np.float32:
        with nogil:
            loss = mse_f32(<float *>cnp.PyArray_DATA(p), <float *>cnp.PyArray_DATA(t), n, half,
                           <float *>cnp.PyArray_DATA(g))
    else:
        with nogil:
            loss = mse_f64(<double *>cnp.PyArray_DATA(p), <double *>cnp.PyArray_DATA(t), n,
                           half, <double *>cnp.PyArray_DATA(g))
    return loss


def bce_with_logits(logits, target, grad):
    """Mean binary cross-entropy on logits; grad = (sigmoid(logits) - target) / n."""
    cdef cnp.ndarray z, t, g
    z, t, g = _loss_arrays(logits, "logits", target, grad)
    cdef Py_ssize_t n = z.size
    cdef double loss
    if z.dtype == np.float32:
        with nogil:
            loss = bce_with_logits_f32(<float *>cnp.PyArray_DATA(z),
                                       <float *>cnp.PyArray_DATA(t), n,
                                       <float *>cnp.PyArray_DATA(g))
    else:
        with nogil:
            loss = bce_with_logits_f64(<double *>cnp.PyArray_DATA(z),
                                       <double *>cnp.PyArray_DATA(t), n,
                                       <double *>cnp.PyArray_DATA(g))
    return loss


cdef void _check_update(cnp.ndarray p, list state) except *:
    """Every optimizer buffer must match the parameters' shape and dtype."""
    _is_f32(p, "params", state)
    for arr, name in state:
        if arr is not None:
            _same_shape(p, "params", arr, name)
            if not arr.flags.writeable and name != "grads":
                raise ValueError(f"{name}: expected a writeable array")


def sgd_step(params, grads, momentum_buf, double lr, double momentum=0.0, bint nesterov=False,
             double weight_decay=0.0):
    """One torch.optim.SGD step (dampening 0) over flat buffers, in place."""
    cdef cnp.ndarray p = _checked(params, "params", 1, writeable=True)
    cdef cnp.ndarray g = _checked(grads, "grads", 1)
    cdef cnp.ndarray buf = None
    if momentum != 0.0:
        buf = _checked(momentum_buf, "momentum_buf", 1, writeable=True)
    _check_update(p, [(g, "grads"), (buf, "momentum_buf")])
    cdef Py_ssize_t n = p.shape[0]
    cdef void *bp = NULL if buf is None else cnp.PyArray_DATA(buf)
    if p.dtype == np.float32:
        with nogil:
            sgd_step_f32(<float *>cnp.PyArray_DATA(p), <float *>cnp.PyArray_DATA(g),
                         <float *>bp, n, lr, momentum, nesterov, weight_decay, NULL)
    else:
        with nogil:
            sgd_step_f64(<double *>cnp.PyArray_DATA(p), <double *>cnp.PyArray_DATA(g),
                         <double *>bp, n, lr, momentum, nesterov, weight_decay, NULL)


def adam_step(params, grads, m, v, long step, double lr, double beta1, double beta2,
              double eps, double weight_decay, bint decoupled):
    """One torch.optim.Adam (or AdamW when decoupled) step at 1-based `step`, in place."""
    cdef cnp.ndarray p = _checked(params, "params", 1, writeable=True)
    cdef cnp.ndarray g = _checked(grads, "grads", 1)
    cdef cnp.ndarray mm = _checked(m, "m", 1, writeable=True)
    cdef cnp.ndarray vv = _checked(v, "v", 1, writeable=True)
    _check_update(p, [(g, "grads"), (mm, "m"), (vv, "v")])
    if step < 1:
        raise ValueError(f"step: expected a step count >= 1, got {step}")
    cdef Py_ssize_t n = p.shape[0]
    if p.dtype == np.float32:
        with nogil:
            adam_step_f32(<float *>cnp.PyArray_DATA(p), <float *>cnp.PyArray_DATA(g),
                          <float *>cnp.PyArray_DATA(mm), <float *>cnp.PyArray_DATA(vv), n, step,
                          lr, beta1, beta2, eps, weight_decay, decoupled, NULL)
    else:
        with nogil:
            adam_step_f64(<double *>cnp.PyArray_DATA(p), <double *>cnp.PyArray_DATA(g),
                          <double *>cnp.PyArray_DATA(mm), <double *>cnp.PyArray_DATA(vv), n,
                          step, lr, beta1, beta2, eps, weight_decay, decoupled, NULL)


def rmsprop_step(params, grads, square_avg, grad_avg, momentum_buf, double lr,
                 double alpha=0.99, double eps=1e-8, double momentum=0.0, bint centered=False,
                 double weight_decay=0.0):
    """One torch.optim.RMSprop step over flat buffers, in place.

    grad_avg is used (and required) only when centered, momentum_buf only when momentum > 0.
    """
    cdef cnp.ndarray p = _checked(params, "params", 1, writeable=True)
    cdef cnp.ndarray g = _checked(grads, "grads", 1)
    cdef cnp.ndarray sq = _checked(square_avg, "square_avg", 1, writeable=True)
    cdef cnp.ndarray gavg = None, buf = None
    if not momentum >= 0:
        raise ValueError(f"momentum: expected a number >= 0, got {momentum}")
    if centered:
        gavg = _checked(grad_avg, "grad_avg", 1, writeable=True)
    if momentum > 0:
        buf = _checked(momentum_buf, "momentum_buf", 1, writeable=True)
    _check_update(p, [(g, "grads"), (sq, "square_avg"), (gavg, "grad_avg"),
                      (buf, "momentum_buf")])
    cdef Py_ssize_t n = p.shape[0]
    cdef void *gp = NULL if gavg is None else cnp.PyArray_DATA(gavg)
    cdef void *bp = NULL if buf is None else cnp.PyArray_DATA(buf)
    if p.dtype == np.float32:
        with nogil:
            rmsprop_step_f32(<float *>cnp.PyArray_DATA(p), <float *>cnp.PyArray_DATA(g),
                             <float *>cnp.PyArray_DATA(sq), <float *>gp, <float *>bp, n, lr,
                             alpha, eps, momentum, centered, weight_decay, NULL)
    else:
        with nogil:
            rmsprop_step_f64(<double *>cnp.PyArray_DATA(p), <double *>cnp.PyArray_DATA(g),
                             <double *>cnp.PyArray_DATA(sq), <double *>gp, <double *>bp, n, lr,
                             alpha, eps, momentum, centered, weight_decay, NULL)


def clip_grad_value(grads, double clip_value):
    """Clamp every element of grads to [-clip_value, clip_value], in place (1-D)."""
    cdef cnp.ndarray g = _checked(grads, "grads", 1, writeable=True)
    if not clip_value > 0:
        raise ValueError(f"clip_value: expected a positive number, got {clip_value}")
    cdef Py_ssize_t n = g.shape[0]
    if g.dtype == np.float32:
        with nogil:
            clip_grad_value_f32(<float *>cnp.PyArray_DATA(g), n, <float>clip_value)
    else:
        with nogil:
            clip_grad_value_f64(<double *>cnp.PyArray_DATA(g), n, clip_value)


def mark_active_units(A, active):
    """active[j] |= any(A[:, j] > 0): which units of an activation output were ever positive."""
    cdef cnp.ndarray a = _checked(A, "A", 2)
    if not isinstance(active, np.ndarray):
        raise TypeError(f"active: expected a numpy.ndarray, got {type(active).__name__}")
    cdef cnp.ndarray flags = active
    if flags.dtype != np.bool_ or flags.ndim != 1 or not flags.flags.c_contiguous \
            or not flags.flags.writeable:
        raise TypeError(f"active: expected a writeable C-contiguous 1-D bool array, "
                        f"got {flags.ndim}-D {flags.dtype}")
    if flags.shape[0] != a.shape[1]:
        raise ValueError(f"active: expected shape ({a.shape[1]},) like A's columns, "
                         f"got {_shape(flags)}")
    cdef Py_ssize_t rows = a.shape[0], cols = a.shape[1]
    cdef uint8_t *fp = <uint8_t *>cnp.PyArray_DATA(flags)
    if a.dtype == np.float32:
        with nogil:
            mark_active_units_f32(<float *>cnp.PyArray_DATA(a), rows, cols, fp)
    else:
        with nogil:
            mark_active_units_f64(<double *>cnp.PyArray_DATA(a), rows, cols, fp)


# ------------------------------------------------------------------------------ layer kernels
cdef void _vector(cnp.ndarray v, str name, Py_ssize_t n) except *:
    if v.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {_shape(v)}")


def batchnorm_forward(X, weight, bias, running_mean, running_var, mean, invstd, Y,
                      bint training, double momentum=0.1, double eps=1e-5):
    """Y = weight * (X - mean) * invstd + bias, per column of X (rows, cols).

    training: mean/invstd of the batch (written to `mean`, `invstd`), running statistics
    updated with `momentum` (unbiased variance); otherwise the running statistics are used (and
    written to `mean`, `invstd`). Every vector has shape (cols,).
    """
    cdef cnp.ndarray x = _checked(X, "X", 2), y = _checked(Y, "Y", 2, writeable=True)
    cdef cnp.ndarray g = _checked(weight, "weight", 1), b = _checked(bias, "bias", 1)
    cdef cnp.ndarray rm = _checked(running_mean, "running_mean", 1, writeable=True)
    cdef cnp.ndarray rv = _checked(running_var, "running_var", 1, writeable=True)
    cdef cnp.ndarray mu = _checked(mean, "mean", 1, writeable=True)
    cdef cnp.ndarray istd = _checked(invstd, "invstd", 1, writeable=True)
    cdef bint f32 = _is_f32(x, "X", [(y, "Y"), (g, "weight"), (b, "bias"), (rm, "running_mean"),
                                     (rv, "running_var"), (mu, "mean"), (istd, "invstd")])
    _same_shape(x, "X", y, "Y")
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1]
    for v, name in ((g, "weight"), (b, "bias"), (rm, "running_mean"), (rv, "running_var"),
                    (mu, "mean"), (istd, "invstd")):
        _vector(v, name, cols)
    if training and rows < 2:
        raise ValueError(f"X: expected at least 2 rows in training (the batch variance of one "
                         f"sample is undefined), got shape {_shape(x)}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum: expected a number in [0, 1], got {momentum}")
    if not 0.0 < eps < float("inf"):
        raise ValueError(f"eps: expected a finite number > 0, got {eps}")
    if f32:
        with nogil:
            batchnorm_forward_f32(
                <float *>cnp.PyArray_DATA(x), rows, cols, <float *>cnp.PyArray_DATA(g),
                <float *>cnp.PyArray_DATA(b), <float *>cnp.PyArray_DATA(rm),
                <float *>cnp.PyArray_DATA(rv), training, momentum, eps,
                <float *>cnp.PyArray_DATA(mu), <float *>cnp.PyArray_DATA(istd),
                <float *>cnp.PyArray_DATA(y))
    else:
        with nogil:
            batchnorm_forward_f64(
                <double *>cnp.PyArray_DATA(x), rows, cols, <double *>cnp.PyArray_DATA(g),
                <double *>cnp.PyArray_DATA(b), <double *>cnp.PyArray_DATA(rm),
                <double *>cnp.PyArray_DATA(rv), training, momentum, eps,
                <double *>cnp.PyArray_DATA(mu), <double *>cnp.PyArray_DATA(istd),
                <double *>cnp.PyArray_DATA(y))


def batchnorm_backward(X, dY, weight, mean, invstd, dweight, dbias, work, dX,
                       bint accumulate=False):
    """Gradients of the training batchnorm_forward through the batch statistics.

    dweight = colsum(dY * xhat), dbias = colsum(dY) (added to when accumulate); dX (rows,
    cols) = weight * invstd * (dY - dbias / B - xhat * dweight / B), or skipped when None.
    `work` (2, cols) receives this batch's dbias / B and dweight / B.
    """
    cdef cnp.ndarray x = _checked(X, "X", 2), dy = _checked(dY, "dY", 2)
    cdef cnp.ndarray g = _checked(weight, "weight", 1)
    cdef cnp.ndarray mu = _checked(mean, "mean", 1), istd = _checked(invstd, "invstd", 1)
    cdef cnp.ndarray dg = _checked(dweight, "dweight", 1, writeable=True)
    cdef cnp.ndarray db = _checked(dbias, "dbias", 1, writeable=True)
    cdef cnp.ndarray w = _checked(work, "work", 2, writeable=True)
    cdef cnp.ndarray dx = None if dX is None else _checked(dX, "dX", 2, writeable=True)
    cdef bint f32 = _is_f32(x, "X", [(dy, "dY"), (g, "weight"), (mu, "mean"),
                                     (istd, "invstd"), (dg, "dweight"), (db, "dbias"),
                                     (w, "work"), (dx, "dX")])
    _same_shape(x, "X", dy, "dY")
    if dx is not None:
        _same_shape(x, "X", dx, "dX")
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1]
    for v, name in ((g, "weight"), (mu, "mean"), (istd, "invstd"), (dg, "dweight"),
                    (db, "dbias")):
        _vector(v, name, cols)
    if _shape(w) != (2, cols):
        raise ValueError(f"work: expected shape (2, {cols}), got {_shape(w)}")
    if rows < 1:
        raise ValueError(f"X: expected at least one row, got shape {_shape(x)}")
    cdef void *dxp = NULL if dx is None else cnp.PyArray_DATA(dx)
    if f32:
        with nogil:
            batchnorm_backward_f32(
                <float *>cnp.PyArray_DATA(x), <float *>cnp.PyArray_DATA(dy), rows, cols,
                <float *>cnp.PyArray_DATA(g), <float *>cnp.PyArray_DATA(mu),
                <float *>cnp.PyArray_DATA(istd), <float *>cnp.PyArray_DATA(dg),
                <float *>cnp.PyArray_DATA(db), accumulate, <float *>cnp.PyArray_DATA(w),
                <float *>dxp)
    else:
        with nogil:
            batchnorm_backward_f64(
                <double *>cnp.PyArray_DATA(x), <double *>cnp.PyArray_DATA(dy), rows, cols,
                <double *>cnp.PyArray_DATA(g), <double *>cnp.PyArray_DATA(mu),
                <double *>cnp.PyArray_DATA(istd), <double *>cnp.PyArray_DATA(dg),
                <double *>cnp.PyArray_DATA(db), accumulate, <double *>cnp.PyArray_DATA(w),
                <double *>dxp)


cdef uint64_t _uint64(object value, str name) except? 0:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not 0 <= value < 2 ** 64:
        raise ValueError(f"{name}: expected an integer in [0, 2**64), got {value!r}")
    return <uint64_t>int(value)


def dropout(x, y, double p, seed, draw):
    """y = x * keep / (1 - p), keep drawn with probability 1 - p from (seed, draw, index).

    The same (seed, draw) gives the same mask for any thread count, so backward is this call
    on the output gradient. x and y have the same shape; y may be x.
    """
    cdef cnp.ndarray a = _checked(x, "x", np.ndim(x))
    cdef cnp.ndarray out = _checked(y, "y", a.ndim, writeable=True)
    _is_f32(a, "x", [(out, "y")])
    _same_shape(a, "x", out, "y")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p: expected a probability in [0, 1), got {p}")
    cdef uint64_t s = _uint64(seed, "seed"), d = _uint64(draw, "draw")
    cdef Py_ssize_t n = a.size
    if a.dtype == np.float32:
        with nogil:
            dropout_f32(<float *>cnp.PyArray_DATA(a), <float *>cnp.PyArray_DATA(out), n, p, s, d)
    else:
        with nogil:
            dropout_f64(<double *>cnp.PyArray_DATA(a), <double *>cnp.PyArray_DATA(out), n, p, s,
                        d)


def residual_add(x, f, y):
    """y = x + f elementwise (arrays of one shape; y may be x or f)."""
    cdef cnp.ndarray a = _checked(x, "x", np.ndim(x))
    cdef cnp.ndarray b = _checked(f, "f", a.ndim)
    cdef cnp.ndarray out = _checked(y, "y", a.ndim, writeable=True)
    _is_f32(a, "x", [(b, "f"), (out, "y")])
    _same_shape(a, "x", b, "f")
    _same_shape(a, "x", out, "y")
    cdef Py_ssize_t n = a.size
    if a.dtype == np.float32:
        with nogil:
            residual_add_f32(<float *>cnp.PyArray_DATA(a), <float *>cnp.PyArray_DATA(b),
                             <float *>cnp.PyArray_DATA(out), n)
    else:
        with nogil:
            residual_add_f64(<double *>cnp.PyArray_DATA(a), <double *>cnp.PyArray_DATA(b),
                             <double *>cnp.PyArray_DATA(out), n)
