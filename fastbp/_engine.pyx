# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled training step: a plan of stages (Dense + activation, BatchNorm, activation,
Dropout) run by one C call.

A `TrainingPlan` holds C descriptors that point into a network's flat parameter and gradient
buffers and into workspaces it owns (grown to the largest batch seen, never allocated per step).
`train_step` checks its arrays (dtype, layout, shape, finite values, label range), then runs
forward, loss, backward, clipping and the optimizer update with the GIL released.
"""
import numpy as np
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport NAN
from libc.string cimport memset
from libc.stdint cimport int64_t, uint64_t
from scipy.linalg.cython_blas cimport dgemm, sgemm

from fastbp._kernels cimport (
    fb_activation, fb_activation_needs_input, fb_activation_params, fb_dgemm_fn,
    fb_get_threads_fn, fb_parallel_min, fb_set_blas, fb_set_blas_threading,
    fb_set_parallel_min, fb_set_threads_fn, fb_sgemm_fn, gather_labels_i64, gather_rows_f32,
    gather_rows_f64,
)

cnp.import_array()
fb_set_blas(<fb_sgemm_fn>sgemm, <fb_dgemm_fn>dgemm)


def set_blas_threading(size_t get_threads, size_t set_threads):
    """As fastbp._kernels.set_blas_threading, for this module's copy of the C core."""
    fb_set_blas_threading(<fb_get_threads_fn>get_threads, <fb_set_threads_fn>set_threads)


def set_parallel_min(Py_ssize_t elements):
    """As fastbp._kernels.set_parallel_min, for this module's copy of the C core."""
    old = fb_parallel_min
    fb_set_parallel_min(max(1, elements))
    return old


cdef extern from "fb_plan.h" nogil:
    ctypedef enum fb_loss_kind:
        FB_LOSS_CROSS_ENTROPY
        FB_LOSS_CROSS_ENTROPY_PROBS
        FB_LOSS_MSE
        FB_LOSS_MSE_HALF
        FB_LOSS_BCE_WITH_LOGITS
    ctypedef enum fb_update_kind:
        FB_UPDATE_NONE
        FB_UPDATE_SGD
        FB_UPDATE_ADAM
        FB_UPDATE_RMSPROP
    ctypedef enum fb_stage_kind:
        FB_STAGE_DENSE
        FB_STAGE_BATCHNORM
        FB_STAGE_ACTIVATION
        FB_STAGE_DROPOUT
        FB_STAGE_RESIDUAL
    ctypedef struct fb_stage:
        fb_stage_kind kind
        int in_features, out_features
        void *weight
        void *bias
        void *weight_grad
        void *bias_grad
        void *running_mean
        void *running_var
        void *stats
        void *work
        double momentum, eps, p
        uint64_t seed, draw
        void *output
        void *preact
        fb_activation activation
        fb_activation_params params
        int skip_from
        void *skip_grad
        int next_residual
        int first_residual
        int segment_end
    ctypedef struct fb_update:
        fb_update_kind kind
        long step
        double lr, beta1, beta2, eps, weight_decay, momentum, alpha
        int decoupled, nesterov, centered
        void *state1
        void *state2
        void *state3
    ctypedef struct fb_plan:
        int n_stages
        fb_stage *stages
        Py_ssize_t max_rows
        void *delta[2]
        void *params
        void *grads
        void *backup
        Py_ssize_t n_params
        void *buffers
        void *buffers_backup
        Py_ssize_t n_buffers
        int recompute
        fb_loss_kind loss
        double clip_value
        double clip_norm

    int plan_train_step_f32(const fb_plan *plan, const float *X, const void *target,
                            Py_ssize_t rows, const fb_update *update, double *loss,
                            Py_ssize_t *hits)
    int plan_train_step_f64(const fb_plan *plan, const double *X, const void *target,
                            Py_ssize_t rows, const fb_update *update, double *loss,
                            Py_ssize_t *hits)
    int all_finite_f32(const float *x, Py_ssize_t n)
    int all_finite_f64(const double *x, Py_ssize_t n)
    int all_in_range_f32(const float *x, Py_ssize_t n, float lo, float hi)
    int all_in_range_f64(const double *x, Py_ssize_t n, double lo, double hi)


LOSS_KINDS = {"cross_entropy": FB_LOSS_CROSS_ENTROPY,
              "cross_entropy_probs": FB_LOSS_CROSS_ENTROPY_PROBS,
              "mse": FB_LOSS_MSE, "mse_half": FB_LOSS_MSE_HALF,
              "bce_with_logits": FB_LOSS_BCE_WITH_LOGITS}
UPDATE_KINDS = {"sgd": FB_UPDATE_SGD, "adam": FB_UPDATE_ADAM, "rmsprop": FB_UPDATE_RMSPROP}


cdef inline bint _plain(object a, int typenum, int ndim):
    """True when `a` is a C-contiguous ndarray of `typenum` with `ndim` dimensions."""
    return (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and cnp.PyArray_NDIM(<cnp.ndarray>a) == ndim
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a))


cdef Py_ssize_t _first_bad_label(const int64_t *labels, Py_ssize_t n, int64_t k) nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if labels[i] < 0 or labels[i] >= k:
            return i
    return -1


STAGE_KINDS = {"dense": FB_STAGE_DENSE, "batchnorm": FB_STAGE_BATCHNORM,
               "activation": FB_STAGE_ACTIVATION, "dropout": FB_STAGE_DROPOUT,
               "residual": FB_STAGE_RESIDUAL}


cdef class TrainingPlan:
    """Compiled forward/loss/backward/update of a network of stages.

    Parameters
    ----------
    params, grads, buffers : the network's flat arrays (1-D, one float dtype).
    stages : list of dicts, each with "kind" (a key of STAGE_KINDS) and "in_features",
        "out_features", and by kind: dense "weight" (out, in), "bias" (or None),
        "weight_grad", "bias_grad" (views into params/grads), "activation" (code) and
        "params" (dict of slope, alpha, beta, threshold); batchnorm "weight", "bias",
        "weight_grad", "bias_grad", "running_mean", "running_var" (views into buffers),
        "momentum", "eps"; activation "activation", "params"; dropout "layer" (the
        fastbp Dropout, whose p, seed and mask counter the plan uses and advances); residual
        "skip_from" (the index of the stage whose output is the block input, -1 for the
        network input: the block's layers are the stages between).
    loss : a key of LOSS_KINDS.
    keep_backup : keep a copy of the parameters from before each update (`backup`).
    clip_norm : clip the global gradient norm to this before each update (None: never).
    clip_value : first clamp every gradient element to [-clip_value, clip_value] (None: never).
    checkpoint_segments : gradient checkpointing: keep the outputs of the last stage of each of
        this many segments of consecutive stages (as equal as possible) and recompute the
        others segment by segment in backward (None: keep every output).
    """

    cdef fb_plan plan
    cdef fb_update update
    cdef int typenum
    cdef readonly object params, grads, backup, dtype
    cdef readonly int in_features, out_features
    cdef readonly bint labels, unit_targets
    cdef readonly double accuracy  # of the last train_gathered, classification losses; else NaN
    cdef bint _busy
    cdef list _views, _outputs, _preacts, _skips, _deltas, _dropouts
    cdef readonly object buffers
    cdef object _buffers_backup
    cdef bint _batchnorm
    cdef object _pool
    cdef object _input, _target
    cdef tuple _states

    def __cinit__(self):
        self.plan.stages = NULL

    def __dealloc__(self):
        PyMem_Free(self.plan.stages)

    def __init__(self, params, grads, buffers, list stages, str loss, bint keep_backup=False,
                 clip_norm=None, clip_value=None, checkpoint_segments=None):
        cdef cnp.ndarray p = params, g = grads, b = buffers
        if p.dtype not in (np.float32, np.float64) or g.dtype != p.dtype or \
                b.dtype != p.dtype or p.ndim != 1 or b.ndim != 1 or \
                g.shape[0] != p.shape[0] or not p.flags.c_contiguous or \
                not g.flags.c_contiguous or not b.flags.c_contiguous:
            raise ValueError("params, grads, buffers: expected C-contiguous 1-D float arrays of "
                             "one dtype, params and grads of one size")
        if not stages:
            raise ValueError("stages: expected at least one stage")
        self.params, self.grads, self.buffers, self.dtype = p, g, b, p.dtype
        self.typenum = cnp.PyArray_TYPE(p)
        self.plan.n_params = p.shape[0]
        self.plan.params = cnp.PyArray_DATA(p)
        self.plan.grads = cnp.PyArray_DATA(g)
        self.plan.loss = LOSS_KINDS[loss]
        self.labels = loss == "cross_entropy"
        self.unit_targets = loss == "bce_with_logits"
        self.plan.clip_norm = 0.0 if clip_norm is None else float(clip_norm)
        self.plan.clip_value = 0.0 if clip_value is None else float(clip_value)
        self.backup = np.empty_like(p) if keep_backup else None
        self.plan.backup = cnp.PyArray_DATA(self.backup) if keep_backup else NULL
        self.plan.stages = <fb_stage *>PyMem_Malloc(len(stages) * sizeof(fb_stage))
        if self.plan.stages == NULL:
            raise MemoryError()
        self.plan.n_stages = len(stages)
        self._views, self._dropouts, self._batchnorm = [], [], False
        cdef int s
        for s, stage in enumerate(stages):
            self._describe(s, stage)
            if s > 0 and self.plan.stages[s].in_features != self.plan.stages[s - 1].out_features:
                raise ValueError(f"stages[{s}]: expected input width "
                                 f"{self.plan.stages[s - 1].out_features}, got "
                                 f"{self.plan.stages[s].in_features}")
        self._link_residuals()
        self.plan.buffers = self.plan.buffers_backup = NULL
        self.plan.n_buffers = 0
        if self._batchnorm:
            self._buffers_backup = np.empty_like(b)
            self.plan.buffers = cnp.PyArray_DATA(b)
            self.plan.buffers_backup = cnp.PyArray_DATA(<cnp.ndarray>self._buffers_backup)
            self.plan.n_buffers = b.shape[0]
        self._set_segments(checkpoint_segments)
        self.in_features = self.plan.stages[0].in_features
        self.out_features = self.plan.stages[self.plan.n_stages - 1].out_features
        self.plan.max_rows = 0
        self.update.kind = FB_UPDATE_NONE
        self.reserve(1)

    cdef _describe(self, int s, dict stage):
        """Fill the C descriptor of stage s from its dict (see the class docstring)."""
        cdef fb_stage *st = &self.plan.stages[s]
        cdef cnp.ndarray view
        memset(st, 0, sizeof(fb_stage))
        st.kind = STAGE_KINDS[stage["kind"]]
        st.in_features, st.out_features = stage["in_features"], stage["out_features"]
        n_in, n_out = stage["in_features"], stage["out_features"]   # Python ints, for shapes
        dense = st.kind == FB_STAGE_DENSE
        if n_in < 1 or n_out < 1 or (not dense and n_in != n_out):
            raise ValueError(f"stages[{s}]: expected positive widths, equal unless Dense, got "
                             f"{n_in} -> {n_out}")
        shapes = {"weight": (n_out, n_in) if dense else (n_out,), "bias": (n_out,),
                  "running_mean": (n_out,), "running_var": (n_out,)}
        shapes["weight_grad"], shapes["bias_grad"] = shapes["weight"], shapes["bias"]
        for name, shape in shapes.items():
            view = stage.get(name)
            if view is None:
                continue
            if (<object>view).shape != shape:
                raise ValueError(f"stages[{s}]: expected {name} of shape {shape}, got "
                                 f"{(<object>view).shape}")
            self._check_view(view)
            self._views.append(view)
        needed = {FB_STAGE_DENSE: ("weight", "weight_grad"),
                  FB_STAGE_BATCHNORM: ("weight", "bias", "weight_grad", "bias_grad",
                                       "running_mean", "running_var")}.get(st.kind, ())
        for name in needed:
            if stage.get(name) is None:
                raise ValueError(f"stages[{s}]: expected {name!r} for a {stage['kind']} stage")
        if dense and (stage.get("bias") is None) != (stage.get("bias_grad") is None):
            raise ValueError(f"stages[{s}]: expected bias and bias_grad together")
        st.weight = self._data(stage, "weight")
        st.bias = self._data(stage, "bias")
        st.weight_grad = self._data(stage, "weight_grad")
        st.bias_grad = self._data(stage, "bias_grad")
        st.running_mean = self._data(stage, "running_mean")
        st.running_var = self._data(stage, "running_var")
        if st.kind == FB_STAGE_DENSE or st.kind == FB_STAGE_ACTIVATION:
            params = stage["params"]
            st.activation = stage["activation"]
            st.params.slope = params.get("slope", 0.0)
            st.params.alpha = params.get("alpha", 1.0)
            st.params.beta = params.get("beta", 1.0)
            st.params.threshold = params.get("threshold", 20.0)
        elif st.kind == FB_STAGE_BATCHNORM:
            st.momentum, st.eps = stage["momentum"], stage["eps"]
            stats = np.empty((2, st.out_features), dtype=self.dtype)   # mean, invstd
            work = np.empty((2, st.out_features), dtype=self.dtype)    # backward scratch
            st.stats = cnp.PyArray_DATA(<cnp.ndarray>stats)
            st.work = cnp.PyArray_DATA(<cnp.ndarray>work)
            self._views += [stats, work]
            self._batchnorm = True
        elif st.kind == FB_STAGE_DROPOUT:
            layer = stage["layer"]
            st.p, st.seed = layer.p, layer.seed
            self._dropouts.append((s, layer))
        else:
            st.skip_from = stage["skip_from"]
            width = (self.plan.stages[0].in_features if st.skip_from == -1 else
                     self.plan.stages[st.skip_from].out_features)
            if not -1 <= st.skip_from < s - 1 or width != n_out:
                raise ValueError(f"stages[{s}]: expected a residual block over earlier stages "
                                 f"that keeps the width {n_out}, got skip_from "
                                 f"{st.skip_from}")

    cdef _link_residuals(self):
        """Chain, for each stage, the residual blocks that start at it, innermost first."""
        cdef int s, r, n = self.plan.n_stages
        cdef fb_stage *stages = self.plan.stages
        for s in range(n):
            stages[s].first_residual = stages[s].next_residual = -1
        for s in range(n):
            if stages[s].kind != FB_STAGE_RESIDUAL:
                continue
            r = stages[s].skip_from + 1           # the block's first stage
            if stages[r].first_residual < 0:
                stages[r].first_residual = s
                continue
            r = stages[r].first_residual
            while stages[r].next_residual >= 0:
                r = stages[r].next_residual
            stages[r].next_residual = s

    cdef void *_data(self, dict stage, str name):
        view = stage.get(name)
        return NULL if view is None else cnp.PyArray_DATA(<cnp.ndarray>view)

    cdef _set_segments(self, checkpoint_segments):
        """Mark each segment's last stage (every stage without checkpointing)."""
        cdef int n = self.plan.n_stages, k = 1, s
        if checkpoint_segments is not None:
            k = checkpoint_segments
            if not 1 <= k <= n:
                raise ValueError(f"checkpoint_segments: expected 1 to {n} (the number of "
                                 f"stages of this network), got {k}")
        self.plan.recompute = k > 1
        for s in range(n):
            self.plan.stages[s].segment_end = 1
        if k > 1:
            for s in range(n):  # segment j holds the stages [j n / k, (j + 1) n / k)
                self.plan.stages[s].segment_end = (s + 1) * k // n != s * k // n or s == n - 1

    cdef _check_view(self, cnp.ndarray arr):
        """Every descriptor must point inside params, grads or buffers."""
        cdef char *lo
        cdef char *start = <char *>cnp.PyArray_DATA(arr)
        cdef Py_ssize_t size = arr.nbytes, buf_size
        if arr.dtype != self.dtype or not arr.flags.c_contiguous:
            raise ValueError("stages: expected C-contiguous views of params/grads/buffers")
        for buf in (self.params, self.grads, self.buffers):
            lo = <char *>cnp.PyArray_DATA(<cnp.ndarray>buf)
            buf_size = (<cnp.ndarray>buf).nbytes
            if lo <= start and start + size <= lo + buf_size:
                return
        raise ValueError("stages: expected views into params, grads or buffers")

    cdef _claim(self):
        """Mark the plan in use by a step; a second thread must not reuse or regrow its
        buffers meanwhile (they are read and written without the GIL)."""
        if self._busy:
            raise RuntimeError("train_step: this network is already running a training step in "
                               "another thread; train one network from one thread at a time")
        self._busy = True

    def reserve(self, Py_ssize_t rows):
        """Grow the workspaces to hold batches of `rows` samples.

        Every stage has its own output buffer (and pre-activation buffer, where its activation
        needs one), except with checkpointing: then only a segment's last stage keeps its
        output, and the other buffers of every segment share one pool, refilled by the
        recomputation in backward.
        """
        if self._busy:
            raise RuntimeError("reserve: the plan is running a training step in another thread")
        self._reserve(rows)

    cdef _reserve(self, Py_ssize_t rows):
        if rows <= self.plan.max_rows:
            return
        cdef int s, widest = 0  # dX is never formed for the input, so its width does not count
        cdef Py_ssize_t offset = 0, pool_width = 0
        cdef fb_stage *st
        sources = {self.plan.stages[s].skip_from for s in range(self.plan.n_stages)
                   if self.plan.stages[s].kind == FB_STAGE_RESIDUAL}
        layout = []  # per stage: (own output?, output offset in the pool, preact offset or -1)
        for s in range(self.plan.n_stages):
            st = &self.plan.stages[s]
            # a block input is read again at the block's end: it keeps its own buffer
            shared = self.plan.recompute and not st.segment_end and s not in sources
            out_at = offset if shared else -1
            offset += st.out_features if shared else 0
            preact_at = -1
            if self._needs_preact(st):
                preact_at = offset if self.plan.recompute else -1
                offset += st.out_features if self.plan.recompute else 0
            layout.append((out_at, preact_at))
            pool_width = max(pool_width, offset)
            if st.segment_end:
                offset = 0
            widest = max(widest, st.out_features)
        self._pool = np.empty(rows * pool_width, dtype=self.dtype)
        self._outputs, self._preacts = [], []
        for s, (out_at, preact_at) in enumerate(layout):
            st = &self.plan.stages[s]
            shape = (rows, st.out_features)
            out = (np.empty(shape, dtype=self.dtype) if out_at < 0 else
                   self._pool[out_at * rows:(out_at + st.out_features) * rows].reshape(shape))
            st.output = cnp.PyArray_DATA(out)
            self._outputs.append(out)
            st.preact = NULL
            if self._needs_preact(st):
                preact = (np.empty(shape, dtype=self.dtype) if preact_at < 0 else
                          self._pool[preact_at * rows:
                                     (preact_at + st.out_features) * rows].reshape(shape))
                st.preact = cnp.PyArray_DATA(preact)
                self._preacts.append(preact)

        self._allocate_skips(rows)
        self._deltas = [np.empty(rows * widest, dtype=self.dtype) for _ in range(2)]
        self.plan.delta[0] = cnp.PyArray_DATA(self._deltas[0])
        self.plan.delta[1] = cnp.PyArray_DATA(self._deltas[1])
        self._input = np.empty((rows, self.in_features), dtype=self.dtype)
        self._target = (np.empty(rows, dtype=np.int64) if self.labels
                        else np.empty((rows, self.out_features), dtype=self.dtype))
        self.plan.max_rows = rows

    cdef bint _needs_preact(self, fb_stage *st):
        """A Dense stage keeps input W^T + b where its activation's backward reads it."""
        return st.kind == FB_STAGE_DENSE and fb_activation_needs_input(st.activation)

    cdef _allocate_skips(self, Py_ssize_t rows):
        """Skip-gradient buffers of the residual stages. A skip gradient lives from its block's
        end to its block's start in backward, so blocks at the same nesting depth share one
        buffer (of the widest such block); nested blocks each have their own."""
        cdef fb_stage *stages = self.plan.stages
        cdef int r, q, n = self.plan.n_stages
        depths, sizes = {}, {}
        for r in range(n):
            if stages[r].kind != FB_STAGE_RESIDUAL:
                continue
            depths[r] = sum(1 for q in range(r + 1, n) if stages[q].kind == FB_STAGE_RESIDUAL
                            and stages[q].skip_from <= stages[r].skip_from)  # blocks around r
            sizes[depths[r]] = max(sizes.get(depths[r], 0), rows * stages[r].out_features)
        self._skips = [np.empty(sizes[d], dtype=self.dtype) for d in sorted(sizes)]
        for r, depth in depths.items():
            stages[r].skip_grad = cnp.PyArray_DATA(<cnp.ndarray>self._skips[depth])

    @property
    def activation_nbytes(self):
        """Bytes of the buffers that keep activations for backward (outputs, pre-activations
        and the checkpointing pool); the gradient and batch workspaces are not counted."""
        own = [a for a in self._outputs + self._preacts if a.base is None]
        return sum(a.nbytes for a in own) + self._pool.nbytes

    def outputs(self, Py_ssize_t rows):
        """Every stage's output of the last step's first `rows` samples (views)."""
        if self.plan.recompute:
            raise RuntimeError("the outputs of every stage are not kept with gradient "
                               "checkpointing (checkpoint_segments)")
        return [out[:rows] for out in self._outputs]

    cdef int _set_update(self, object optimizer) except -1:
        """Describe the next update of `optimizer` (a fastbp Optimizer) to C."""
        cdef fb_update *u = &self.update
        kind = optimizer.fused_update if optimizer is not None else None
        if kind is None:
            u.kind = FB_UPDATE_NONE
            return 0
        u.kind = UPDATE_KINDS[kind]
        u.lr = optimizer.lr
        u.weight_decay = optimizer.weight_decay
        if u.kind == FB_UPDATE_ADAM:
            u.step = optimizer.step_count + 1
            u.beta1, u.beta2 = optimizer.betas
            u.eps = optimizer.eps
            u.decoupled = optimizer.decoupled
            self._states = (optimizer.m, optimizer.v, None)
        elif u.kind == FB_UPDATE_SGD:
            u.momentum = optimizer.momentum
            u.nesterov = optimizer.nesterov
            self._states = (optimizer.momentum_buffer, None, None)
        else:
            u.alpha = optimizer.alpha
            u.eps = optimizer.eps
            u.momentum = optimizer.momentum
            u.centered = optimizer.centered
            self._states = (optimizer.square_avg, optimizer.grad_avg, optimizer.momentum_buffer)
        for state in self._states:
            if state is not None and not (_plain(state, self.typenum, 1) and
                                          (<cnp.ndarray>state).shape[0] == self.plan.n_params):
                raise ValueError("optimizer: expected its state arrays to match the network's "
                                 "parameters (dtype and size)")
        u.state1 = self._state_data(0)
        u.state2 = self._state_data(1)
        u.state3 = self._state_data(2)
        return 0

    cdef void *_state_data(self, int i):
        state = self._states[i]
        return NULL if state is None else cnp.PyArray_DATA(<cnp.ndarray>state)

    cdef double _run(self, const void *X, const void *target, Py_ssize_t rows,
                     object optimizer, bint count_hits=False) except? -1.0:
        cdef double loss = 0.0
        cdef int status
        cdef Py_ssize_t hits = 0
        cdef Py_ssize_t *hits_out = &hits if count_hits and self.plan.loss not in (
            FB_LOSS_MSE, FB_LOSS_MSE_HALF) else NULL
        if self._batchnorm and rows < 2:
            raise ValueError(f"BatchNorm: expected at least 2 samples per batch in training (the "
                             f"batch variance of one sample is undefined), got {rows}; in fit, "
                             f"choose a batch_size that does not leave a last batch of one sample")
        self._set_update(optimizer)
        self._draw_masks()
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                status = plan_train_step_f32(&self.plan, <const float *>X, target, rows,
                                             &self.update, &loss, hits_out)
            else:
                status = plan_train_step_f64(&self.plan, <const double *>X, target, rows,
                                             &self.update, &loss, hits_out)
        self.accuracy = NAN
        if hits_out != NULL:
            self.accuracy = hits / <double>(rows * (self.out_features if self.unit_targets
                                                    else 1))
        if status != 0:
            error = FloatingPointError(f"train_step: the loss is {loss}; no update was made")
            error.loss = loss
            raise error
        if self.update.kind != FB_UPDATE_NONE:
            optimizer.step_count += 1
        return loss

    cdef _draw_masks(self):
        """Each Dropout stage takes its layer's next mask (its latest one when frozen), as the
        layer's own forward would (p = 0 keeps every element with any mask)."""
        for s, layer in self._dropouts:
            if layer.p == 0:      # the identity, as the layer's forward: no mask drawn
                continue
            if not (layer.mask_frozen and layer._draw is not None):
                layer._draw = layer._draws
                layer._draws += 1
            layer._identity = False
            self.plan.stages[s].draw = layer._draw

    def train_step(self, X, y, optimizer):
        """One step on a batch: returns the mean loss, or None when X or y must first be
        converted (other dtype, layout or shape: the caller converts and validates them).

        X (rows, in_features) and y (int64 labels (rows,) for cross-entropy, else an array of
        the output's shape) of the plan's dtype; non-finite values and out-of-range labels
        raise ValueError. `optimizer` is a fastbp Optimizer, or None for gradients only.
        """
        self._claim()
        try:
            return self._train_step(X, y, optimizer)
        finally:
            self._busy = False

    cdef object _train_step(self, X, y, optimizer):
        if not _plain(X, self.typenum, 2):
            return None
        cdef cnp.ndarray x = X, t
        cdef Py_ssize_t rows = x.shape[0], bad
        if x.shape[1] != self.in_features or rows == 0:
            return None
        if self.labels:
            if not _plain(y, cnp.NPY_INT64, 1) or (<cnp.ndarray>y).shape[0] != rows:
                return None
            t = y
            bad = _first_bad_label(<int64_t *>cnp.PyArray_DATA(t), rows, self.out_features)
            if bad >= 0:
                raise ValueError(f"y: expected class labels in [0, {self.out_features}), got "
                                 f"{t[bad]} at position {bad}")
        else:
            if not _plain(y, self.typenum, 2) or (<cnp.ndarray>y).shape[0] != rows or \
                    (<cnp.ndarray>y).shape[1] != self.out_features:
                return None
            t = y
            if self.unit_targets and not self._in_range(t, 0.0, 1.0):
                raise ValueError("y: expected targets in [0, 1] for binary cross-entropy")
            if not self._finite(t):
                raise ValueError("y: expected finite values, got NaN or Inf")
        if not self._finite(x):
            raise ValueError("X: expected finite values, got NaN or Inf")
        self._reserve(rows)
        return self._run(cnp.PyArray_DATA(x), cnp.PyArray_DATA(t), rows, optimizer)

    cdef bint _finite(self, cnp.ndarray a):
        cdef bint ok
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                ok = all_finite_f32(<float *>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a))
            else:
                ok = all_finite_f64(<double *>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a))
        return ok

    cdef bint _in_range(self, cnp.ndarray a, double lo, double hi):
        cdef bint ok
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                ok = all_in_range_f32(<float *>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a), lo, hi)
            else:
                ok = all_in_range_f64(<double *>cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a), lo,
                                      hi)
        return ok

    def train_gathered(self, X, y, order, Py_ssize_t start, Py_ssize_t stop, optimizer):
        """One step on the rows order[start:stop] of the whole, already validated data (X, y):
        they are gathered in C into the plan's own buffers. Returns the mean loss; `accuracy`
        then holds the batch's accuracy for a classification loss."""
        self._claim()
        try:
            return self._train_gathered(X, y, order, start, stop, optimizer)
        finally:
            self._busy = False

    cdef object _train_gathered(self, X, y, order, Py_ssize_t start, Py_ssize_t stop,
                                optimizer):
        cdef cnp.ndarray x = X, t = y, idx = order
        if not (_plain(X, self.typenum, 2) and x.shape[1] == self.in_features and
                _plain(order, cnp.NPY_INT64, 1) and 0 <= start < stop <= idx.shape[0]):
            raise ValueError("train_gathered: expected validated data and a batch of order")
        if self.labels:
            if not (_plain(y, cnp.NPY_INT64, 1) and t.shape[0] == x.shape[0]):
                raise ValueError("y: expected int64 labels, one per row of X")
        elif not (_plain(y, self.typenum, 2) and t.shape[0] == x.shape[0] and
                  t.shape[1] == self.out_features):
            raise ValueError("y: expected targets of the output's shape, one row per row of X")
        cdef Py_ssize_t rows = stop - start, n = x.shape[0], i
        cdef const int64_t *rows_idx = <const int64_t *>cnp.PyArray_DATA(idx) + start
        for i in range(rows):
            if rows_idx[i] < 0 or rows_idx[i] >= n:
                raise ValueError(f"order: expected row indices in [0, {n}), got "
                                 f"{rows_idx[i]}")
        self._reserve(rows)
        cdef cnp.ndarray xb = self._input, tb = self._target
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                gather_rows_f32(<float *>cnp.PyArray_DATA(x), self.in_features, rows_idx, rows,
                                <float *>cnp.PyArray_DATA(xb))
            else:
                gather_rows_f64(<double *>cnp.PyArray_DATA(x), self.in_features, rows_idx,
                                rows, <double *>cnp.PyArray_DATA(xb))
            if self.labels:
                gather_labels_i64(<int64_t *>cnp.PyArray_DATA(t), rows_idx, rows,
                                  <int64_t *>cnp.PyArray_DATA(tb))
            elif self.typenum == cnp.NPY_FLOAT:
                gather_rows_f32(<float *>cnp.PyArray_DATA(t), self.out_features, rows_idx,
                                rows, <float *>cnp.PyArray_DATA(tb))
            else:
                gather_rows_f64(<double *>cnp.PyArray_DATA(t), self.out_features, rows_idx,
                                rows, <double *>cnp.PyArray_DATA(tb))
        return self._run(cnp.PyArray_DATA(xb), cnp.PyArray_DATA(tb), rows, optimizer, True)
