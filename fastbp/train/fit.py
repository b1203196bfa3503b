"""The training loop: seeded mini-batches, fused kernels, history, divergence guard."""
from __future__ import annotations

import time

import numpy as np

from fastbp._validation import boolean, positive_float, positive_int, seed_value
from fastbp.distributed.ranks import as_ranks, together, training
from fastbp.distributed.shard import Shard, check_shard
from fastbp.distributed.step import DataParallelStep
from fastbp.losses import get_loss
from fastbp.nn.layer import Workspace
from fastbp.optim import get_optimizer
from fastbp.train.callbacks import CallbackList
from fastbp.train.diagnostics import make_monitor
from fastbp.train.history import History
from fastbp.train.progress import Progress, check_verbose
from fastbp.train.schedules import Scheduler
from fastbp.train.step import make_step


def _targets(loss, net, y, n: int, name: str = "y") -> np.ndarray:
    """Targets of `loss` for n samples of `net`, validated (errors name `name`)."""
    try:
        return loss.prepare_targets(y, n, net.out_features, net.dtype)
    except (ValueError, TypeError) as exc:
        if name == "y":
            raise
        raise type(exc)(str(exc).replace("y:", f"{name}:", 1)) from None


def _diverged(what: str, history: History) -> FloatingPointError:
    """The error that stops a diverging fit (its `.history` holds the completed epochs)."""
    error = FloatingPointError(f"fit: {what}; training stopped and the parameters of the last "
                               f"finite step were kept (try a lower lr, clip_norm or "
                               f"clip_value)")
    error.history = history
    return error


def evaluate(net, X, y, loss=None, batch_size: int = 4096) -> dict:
    """Mean loss over (X, y) (and accuracy for classification losses) in evaluation mode."""
    if loss is None:
        loss = net.loss
        if loss is None:
            raise ValueError("loss: expected a loss name or object (the network has not been "
                             "fitted, so there is no default), got None")
    loss = get_loss(loss)
    X = net.check_input(X)
    target = _targets(loss, net, y, X.shape[0])
    batch_size = positive_int(batch_size, "batch_size")
    return _evaluate_checked(net, X, target, loss, batch_size)


def _evaluate_checked(net, X: np.ndarray, target: np.ndarray, loss, batch_size: int) -> dict:
    """`evaluate` over an input already through net.check_input and prepared targets."""
    total, correct = 0.0, 0.0
    dout = Workspace()
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        out = net.run_forward(X[start:stop], False)
        grad = dout.get(stop - start, out.shape[1], out.dtype)
        total += loss.compute(out, target[start:stop], grad) * (stop - start)
        acc = loss.accuracy(out, target[start:stop])
        if acc is not None:
            correct += acc * (stop - start)
    result = {"loss": total / X.shape[0]}
    if loss.classification:
        result["accuracy"] = correct / X.shape[0]
    return result


def fit(net, X, y, loss="cross_entropy", optimizer="adam", lr: float = 1e-3, epochs: int = 10,
        batch_size: int = 128, validation_data=None, clip_norm: float | None = None,
        shuffle: bool = True, seed: int = 0, verbose: int = 1, callbacks=None,
        lr_schedule=None, clip_value: float | None = None, monitor=False,
        checkpoint_segments: int | None = None, comm=None, shard=None) -> History:
    """Train `net` on (X, y) by mini-batch backpropagation.

    Parameters
    ----------
    X : array (n, in_features); y : targets of the loss (labels (n,) for cross-entropy).
    loss : name ("cross_entropy", "mse", "bce") or Loss object.
    optimizer : name ("adam", "adamw", "sgd", "rmsprop"), built with `lr`, or an Optimizer for
        this net.
    epochs, batch_size : passes over the data and samples per step (last batch may be smaller).
    validation_data : optional (X_val, y_val), evaluated after every epoch.
    clip_norm : clip the global gradient L2 norm to this value before each update.
    shuffle, seed : the batches come from a permutation drawn from `seed` every epoch.
    verbose : 0 silent; 1 a progress bar (with tqdm, on a terminal) and one line per epoch;
        2 the lines alone (see fastbp.progress).
    callbacks : list of fb.Callback (e.g. fb.EarlyStopping); see fastbp.callbacks.
    lr_schedule : an fb.LRSchedule setting the optimizer's lr every epoch (or step); the lr of
        each epoch is recorded in the history as "lr".
    clip_value : clamp every gradient element to [-clip_value, clip_value] before each update
        (before clip_norm when both are given).
    monitor : True or an fb.Monitor: record per-layer diagnostics in the history and warn about
        vanishing/exploding gradients and dead units (see fastbp.diagnostics).
    checkpoint_segments : gradient checkpointing: split the network's stages into this many
        segments, keep only each segment's last output during the forward pass and recompute
        the others segment by segment during backward (same gradients, less memory, one more
        forward pass). Not with `monitor`.
    comm : an MPI communicator (mpi4py, e.g. ``MPI.COMM_WORLD``) or an
        ``fb.distributed.Ranks``: train data-parallel on its ranks, each calling fit with the
        same arguments but its data (see fastbp.distributed); `batch_size` is then the global
        batch, and the result is one process's on the whole data, to rounding.
    shard : with `comm`: None (default) when each rank holds its own rows of the data (the
        whole data is the ranks' rows in rank order, as are validation_data's), "auto" when
        every rank holds the whole data (each takes its part of every batch).
    The reported training loss and accuracy are the means over the epoch's batches, each
    measured before that batch's update.

    Returns a History. Same seed and data give the same result. A non-finite loss stops training
    with FloatingPointError (its `.history` holds the completed epochs) and leaves the parameters
    that gave the last finite loss; so does a last update that leaves non-finite parameters or
    a non-finite loss on its batch.
    """
    ranks = as_ranks(comm)
    with together(ranks):   # an argument refused on one rank is refused on every rank
        loss = get_loss(loss)
        X = net.check_input(X)
        n = X.shape[0]
        target = _targets(loss, net, y, n)
        epochs = positive_int(epochs, "epochs")
        shuffle = boolean(shuffle, "shuffle")
        batch_size = positive_int(batch_size, "batch_size")
        if clip_norm is not None:
            clip_norm = positive_float(clip_norm, "clip_norm")
        if clip_value is not None:
            clip_value = positive_float(clip_value, "clip_value")
        verbose = check_verbose(verbose)
        callbacks = CallbackList(callbacks, writes_files=ranks is None or ranks.root)
        monitor = make_monitor(monitor)
        check_shard(shard)
        if ranks is None and shard is not None:
            raise ValueError(f"shard: expected None without comm (one process holds the whole "
                             f"data), got {shard!r}")
        if ranks is not None and monitor is not None:
            raise ValueError("monitor: per-layer diagnostics read one process's activations; "
                             "not with comm")
        if checkpoint_segments is not None:
            checkpoint_segments = positive_int(checkpoint_segments, "checkpoint_segments")
            if monitor is not None:
                raise ValueError("checkpoint_segments: monitoring reads every layer's "
                                 "activations, which checkpointing does not keep; use one or "
                                 "the other")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data: expected a pair (X_val, y_val), got "
                                 f"{type(validation_data).__name__}")
            X_val = net.check_input(validation_data[0], "validation_data[0]")
            y_val = _targets(loss, net, validation_data[1], X_val.shape[0],
                             "validation_data[1]")
        if optimizer is None or isinstance(optimizer, str):
            positive_float(lr, "lr")
        opt = get_optimizer(optimizer, net, lr)
        scheduler = Scheduler(lr_schedule, opt)
        net.optimizer, net.loss = opt, loss
        rng = np.random.default_rng(seed_value(seed))
        step = make_step(net, loss, opt, labels=target.ndim == 1, keep_backup=True,
                         clip_norm=clip_norm, clip_value=clip_value,
                         checkpoint_segments=checkpoint_segments)
    if ranks is not None:
        data = Shard(ranks, shard, X, target)
        if validation_data is not None:
            val_part = Shard(ranks, shard, X_val, y_val, "validation_data[0]").evaluation_rows()
            X_val, y_val = X_val[val_part], y_val[val_part]
        step = DataParallelStep(step, ranks, data)
        step.start()
        n = data.rows
    history = History()
    with training(ranks, step):
        with together(ranks):
            callbacks.on_train_begin(net)
        if monitor is not None:
            monitor.start(net)
        progress = Progress(verbose if ranks is None or ranks.root else 0, epochs, n)
        for epoch in range(1, epochs + 1):
            start_time = time.perf_counter()
            order = rng.permutation(n) if shuffle else np.arange(n, dtype=np.int64)
            total, correct, seen = 0.0, 0.0, 0
            scheduler.start_epoch(epoch)
            if monitor is not None:
                monitor.start_epoch()
            for batch, start in enumerate(range(0, n, batch_size), 1):
                if scheduler.per_step:
                    scheduler.step()
                stop = min(start + batch_size, n)
                try:
                    value = step.gathered(X, target, order, start, stop)
                except FloatingPointError as exc:
                    progress.close()
                    if batch > 1 or epoch > 1:
                        step.restore()
                    raise _diverged(f"the loss became {exc.loss} at epoch {epoch}, step "
                                    f"{batch}", history) from None
                m = stop - start
                total += value * m
                seen += m
                if loss.classification:
                    correct += step.accuracy() * m
                if monitor is not None:
                    monitor.after_step(epoch, batch)
                progress.batch(m, total / seen)
            logs = {"loss": total / seen}
            if loss.classification:
                logs["accuracy"] = correct / seen
            if validation_data is not None:
                val = _evaluate_part(net, X_val, y_val, loss, ranks)
                logs.update({f"val_{k}": v for k, v in val.items()})
            if lr_schedule is not None:
                logs["lr"] = opt.lr
            logs["time"] = time.perf_counter() - start_time
            history.append(logs)
            if monitor is not None:
                monitor.end_epoch(epoch, history)
            progress.end_epoch(epoch, logs)
            with together(ranks):
                stop_now = callbacks.on_epoch_end(epoch, logs)
            if ranks is not None:
                step.check_identical()
                stop_now = ranks.any(stop_now)
            if stop_now:
                break
        progress.close()
        last = order[start:stop] if ranks is None else step.shard.batch(order, start, stop)[0]
        if not _finite_after_update(net, X[last], target[last], loss, ranks):
            step.restore()
            raise _diverged(f"the last update (epoch {epoch}, step {batch}) made the parameters "
                            f"or the loss non-finite", history)
        with together(ranks):
            callbacks.on_train_end(net)
    return history


def _evaluate_part(net, X: np.ndarray, target: np.ndarray, loss, ranks) -> dict:
    """`_evaluate_checked` over (X, target), or with `ranks` the mean over the ranks of each
    one's part (which may be empty)."""
    if ranks is None:
        return _evaluate_checked(net, X, target, loss, 4096)
    if X.shape[0] == 0:
        local = dict.fromkeys(["loss", "accuracy"] if loss.classification else ["loss"], 0.0)
    else:
        local = _evaluate_checked(net, X, target, loss, 4096)
    return ranks.mean(local, X.shape[0])


def _finite_after_update(net, X: np.ndarray, target: np.ndarray, loss, ranks) -> bool:
    """Whether the parameters, and the evaluation loss on the batch (X, target) of the last
    update (with `ranks`: this rank's part of it), are finite: the next step's loss shows this
    for every other update."""
    return bool(np.isfinite(net.params).all()) and \
        bool(np.isfinite(_evaluate_part(net, X, target, loss, ranks)["loss"]))
