"""The ``fastbp`` command line: train, predict, export, gradcheck.

::

    fastbp train                                # the shipped 8x8 digits, saved to digits_model.npz
    fastbp train --data houses.csv --target price --loss mse --layers 64,32 --out price.npz
    fastbp predict price.npz new_houses.csv --out predictions.csv
    fastbp export price.npz price.onnx          # for onnxruntime (pip install "fastbp[onnx]")
    fastbp gradcheck
    mpirun -n 4 fastbp train houses.csv --target price --loss mse   # data-parallel, 4 ranks

Training data is a CSV file with a header row (comma separated, numeric feature columns; the
target column may hold numbers or strings) or an NPZ file holding arrays ``X`` (n, features) and
``y``. Features are standardised with the training split's mean and standard deviation, and
regression targets with their own: the saved model carries both as Standardizers, so that
``fb.load(path).predict(raw_X)`` gives what ``predict`` writes. Its ``metadata`` records the
feature names, the target name and the original class labels (classification).

Errors in the user's input print one line ``fastbp: error: ...`` and exit with status 2.
"""
from __future__ import annotations

import argparse
import csv
import inspect
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

import fastbp as fb
from fastbp.cli.metadata import prediction_meta
from fastbp.cli.tabular import (
    Table,
    Target,
    decode_predictions,
    encode_target,
    read_prediction_features,
    read_training_data,
)
from fastbp.datasets import load_digits, train_test_split
from fastbp.distributed.ranks import launched_rank, launched_ranks, together
from fastbp.nn.activations import ACTIVATIONS
from fastbp.onnx_export import DEFAULT_OPSET, MIN_OPSET, OUTPUTS, import_onnx
from fastbp.plotting import figure_class
from fastbp.registry import OPTIMIZERS

LOSSES = ("cross_entropy", "mse", "bce")  # the registry's names of the losses tabular encodes
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")   # spreadsheet formula prefixes (OWASP)
METADATA_VERSION = 1


def default_lr(optimizer: str) -> float:
    """The default learning rate of the registered optimizer named `optimizer`."""
    return inspect.signature(OPTIMIZERS[optimizer]).parameters["lr"].default


class CLIError(ValueError):
    """A problem with the user's input: reported in one line, exit status 2."""


# ---------------------------------------------------------------------------------- arguments
class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line, ``fastbp: error: ...``, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"fastbp: error: {message} (see '{self.prog} --help')\n")


def _hidden_widths(text: str) -> list[int]:
    """``"128,64"`` -> [128, 64]; ``""`` or ``"none"`` -> [] (no hidden layer)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers like 128,64, got {text!r}")
    return widths


def _names(text: str) -> list[str]:
    """``"id,date"`` -> ["id", "date"]."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def _positive(kind: type):
    """An argparse type: a number of `kind` that must be > 0."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value
    convert.__name__ = f"positive {kind.__name__}"
    return convert


def _fraction(text: str) -> float:
    """An argparse type: a float in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastbp`` command and its subcommands."""
    parser = _Parser(prog="fastbp", description="Train and use neural networks with fastbp.")
    parser.add_argument("--version", action="version", version=f"fastbp {fb.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a network (default: the shipped 8x8 digits)",
        description="Train a network on a CSV/NPZ file, or on the shipped 8x8 handwritten "
                    "digits when no --data is given, and save it.")
    train.add_argument("data_file", nargs="?", metavar="DATA",
                       help="the training data file (the same as --data)")
    train.add_argument("--data", metavar="PATH",
                       help="CSV with a header row, or NPZ with arrays X and y "
                            "(default: the shipped digits)")
    train.add_argument("--target", metavar="COLUMN",
                       help="name of the target column of a CSV (default: the last column)")
    train.add_argument("--drop", type=_names, default=[], metavar="COLUMNS",
                       help="CSV columns to leave out of the features, comma separated")
    train.add_argument("--layers", type=_hidden_widths, default=[128], metavar="WIDTHS",
                       help="hidden layer widths, comma separated (default: 128; '' for none)")
    train.add_argument("--activation", choices=ACTIVATIONS.names(), default="relu",
                       help="hidden activation (default: relu)")
    train.add_argument("--loss", choices=LOSSES, default="cross_entropy",
                       help="cross_entropy (classes), mse (regression), bce (two classes or "
                            "multi-label 0/1 targets) (default: cross_entropy)")
    train.add_argument("--optimizer", choices=OPTIMIZERS.names(), default="adam",
                       help="default: adam")
    train.add_argument("--lr", type=_positive(float), default=None,
                       help="learning rate (default: 0.001 for adam/adamw, 0.01 for sgd/rmsprop)")
    train.add_argument("--clip-norm", type=_positive(float), default=None, metavar="MAX",
                       help="clip the global gradient L2 norm to MAX (default: no clipping)")
    train.add_argument("--epochs", type=_positive(int), default=30, metavar="N",
                       help="passes over the training data (default: 30)")
    train.add_argument("--batch-size", type=_positive(int), default=64, metavar="N",
                       help="samples per training step (default: 64)")
    train.add_argument("--threads", type=_positive(int), default=None, metavar="N",
                       help="threads for the kernels and BLAS (default: all available CPUs, "
                            "or OMP_NUM_THREADS)")
    train.add_argument("--seed", type=int, default=0, metavar="N",
                       help="seed of the split, initialisation and shuffling (default: 0)")
    train.add_argument("--test-fraction", type=_fraction, default=0.2, metavar="F",
                       help="share of the samples held out for testing (default: 0.2; 0: none)")
    train.add_argument("--out", default=None, metavar="PATH",
                       help="where to save the model, replacing a file there (default: "
                            "DATA_model.npz in the current folder, DATA the data file's name "
                            "without its extensions, or digits_model.npz; numbered -2, -3, ... "
                            "rather than replace an earlier model)")
    train.add_argument("--quiet", action="store_true",
                       help="no per-epoch progress lines (the summary is still printed)")
    train.add_argument("--monitor", action="store_true",
                       help="record per-layer gradient norms, weight norms, update ratios and "
                            "dead units, and warn about vanishing/exploding gradients")
    train.add_argument("--plot", metavar="PATH",
                       help="save the training curves (loss, metrics, and gradient norms per "
                            "layer with --monitor) to this image file (needs matplotlib)")
    train.set_defaults(run=run_train)

    predict = commands.add_parser(
        "predict", help="predict with a saved model",
        description="Write the model's predictions for the rows of a CSV/NPZ file as CSV: "
                    "class labels for classifiers, values for regression. A target column "
                    "present in the data is ignored. Text cells starting with = + - @, a tab "
                    "or a carriage return get a leading ' so that spreadsheets show them as "
                    "text, not formulas.")
    predict.add_argument("model", help="model file written by 'fastbp train' or net.save")
    predict.add_argument("data", help="CSV with a header row, or NPZ with an array X")
    predict.add_argument("--out", metavar="PATH", help="output CSV (default: standard output)")
    predict.set_defaults(run=run_predict)

    export = commands.add_parser(
        "export", help="export a saved model to ONNX (for onnxruntime)",
        description="Write a saved model as an ONNX file that onnxruntime and other ONNX "
                    "runtimes run without fastbp: it takes the raw features (the model's "
                    "standardisation is inside) and gives the outputs (regression values in "
                    "the target's units), and for classifiers also 'probabilities' and "
                    "'label' (the original class labels). Needs the onnx package: "
                    'pip install "fastbp[onnx]".')
    export.add_argument("model", help="model file written by 'fastbp train' or net.save")
    export.add_argument("onnx", metavar="ONNX",
                        help="the .onnx file to write (replacing a file there)")
    export.add_argument("--opset", type=int, default=None, metavar="N",
                        help=f"ONNX opset, {MIN_OPSET} or later (default: {DEFAULT_OPSET})")
    export.add_argument("--outputs", choices=OUTPUTS, default="auto",
                        help="auto: probabilities and labels too for classifiers (default); "
                             "raw: the network's outputs only; softmax/sigmoid: probabilities "
                             "and labels by that function")
    export.add_argument("--fold-batchnorm", action="store_true",
                        help="fold each BatchNorm that follows a Dense layer into its Gemm")
    export.set_defaults(run=run_export)

    check = commands.add_parser(
        "gradcheck", help="check backpropagation against finite differences",
        description="Build a small random float64 network holding every layer type "
                    "(Dense, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, GELU, Identity) "
                    "and compare its analytic gradients with central finite differences for "
                    "every loss.")
    check.add_argument("--seed", type=int, default=0, help="seed of weights and data")
    check.set_defaults(run=run_gradcheck)
    return parser


# ------------------------------------------------------------------------------------- train
def _digits_table() -> Table:
    X, y = load_digits()
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return Table(X, y, names, "digit", "digits (shipped 8x8 handwritten digits)")


def _split(table: Table, target: Target, fraction: float, seed: int):
    """(X_train, y_train, X_test, y_test); the test part is None when fraction is 0."""
    if fraction == 0:
        return table.X, target.y, None, None
    if table.X.shape[0] < 2:
        raise CLIError(f"{table.source}: {table.X.shape[0]} sample cannot be split; "
                       "use --test-fraction 0")
    X_train, X_test, y_train, y_test = train_test_split(table.X, target.y, fraction, seed)
    return X_train, y_train, X_test, y_test


def _describe_run(table: Table, target: Target, sizes: list[int], args, ranks) -> str:
    task = target.meta["task"]
    if "classes" in target.meta:
        task += f", {len(target.meta['classes'])} classes"
    threads = (f"threads {fb.get_num_threads()}" if ranks is None else
               f"{ranks.size} ranks x {ranks.threads} threads")
    return (f"data: {table.source}: {table.X.shape[0]} samples, {table.X.shape[1]} features, "
            f"target {table.target_name!r} ({task})\n"
            f"network: {'-'.join(map(str, sizes))} {args.activation}; loss {args.loss}, "
            f"{args.optimizer} lr {args.lr:g}, {args.epochs} epochs, batch {args.batch_size}, "
            f"{threads}")


def _report_metrics(net, X, y, target: Target, label: str) -> None:
    """Print the loss (and accuracy, or RMSE in the target's units) of `net` on (X, y)."""
    result = net.evaluate(X, y)
    if "accuracy" in result:
        print(f"{label} accuracy: {result['accuracy']:.4f} ({X.shape[0]} samples)")
    else:
        std = target.scaler.std
        rmse = np.sqrt(np.mean((net.predict(X) - y) ** 2 * std ** 2, axis=0))
        values = ", ".join(f"{v:.6g}" for v in rmse)
        print(f"{label} rmse: {values} ({X.shape[0]} samples)")
    print(f"{label} loss: {result['loss']:.6f}")


def _check_output_path(path: str, option: str) -> None:
    """Fail early, before any work, when `path` cannot be written (no such directory)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{option}: cannot write {path!r}: no such directory {directory!r}")
    if os.path.isdir(path):
        raise CLIError(f"{option}: cannot write {path!r}: it is a directory")


def default_model_path(data: str | None) -> str:
    """Where ``train`` saves without --out: DATA_model.npz in the current folder, DATA the name
    of the data file `data` without its extensions (None: the shipped digits), numbered
    (DATA_model-2.npz, -3, ...) rather than replace an earlier file."""
    stem = "digits" if data is None else os.path.basename(data).split(".")[0] or "fastbp"
    path, number = f"{stem}_model.npz", 2
    while os.path.lexists(path):
        path, number = f"{stem}_model-{number}.npz", number + 1
    return path


def _read_table(args) -> Table:
    """The training data of `args` (the shipped digits without --data)."""
    if args.data is None:
        if args.target is not None or args.drop:
            option = "--target" if args.target is not None else "--drop"
            raise CLIError(f"{option}: only with --data (the shipped digits are fixed)")
        return _digits_table()
    return read_training_data(args.data, args.target, args.drop)


def _check_outputs(args) -> None:
    """Fail early, before any work, when --out or --plot cannot be written."""
    if args.out is None:
        args.out = default_model_path(args.data if args.data is not None else args.data_file)
    _check_output_path(args.out, "--out")
    if args.plot is not None:
        _check_output_path(args.plot, "--plot")
        try:
            figure_class()
        except ImportError as exc:
            raise CLIError(f"--plot: {exc}") from None


class _Prepared:
    """The data of a training run, read, encoded, split and standardised."""

    def __init__(self, args) -> None:
        self.table = _read_table(args)
        self.target = encode_target(self.table.y, args.loss, self.table.target_name,
                                    self.table.lines)
        if self.target.warning is not None:
            print(f"fastbp: warning: {self.target.warning}", file=sys.stderr, flush=True)
        X_train, self.y_train, X_test, y_test = _split(self.table, self.target,
                                                       args.test_fraction, args.seed)
        self.scaler = fb.Standardizer().fit(X_train)
        self.X_train = self.scaler.transform(X_train)
        self.validation = None if X_test is None else (self.scaler.transform(X_test), y_test)
        self.sizes = [self.table.X.shape[1], *args.layers, self.target.width]

    def parts(self, ranks: int) -> list[tuple]:
        """For each of `ranks` ranks: (sizes, its training rows, its test rows or None), the
        rows split into contiguous parts in rank order."""
        def split(X, y, what):
            if X.shape[0] < ranks:
                raise CLIError(f"{self.table.source}: {X.shape[0]} {what} samples cannot be "
                               f"shared by {ranks} ranks")
            bounds = [X.shape[0] * r // ranks for r in range(ranks + 1)]
            return [(X[a:b], y[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        train = split(self.X_train, self.y_train, "training")
        test = ([None] * ranks if self.validation is None else
                split(*self.validation, "test"))
        return [(self.sizes, t, v) for t, v in zip(train, test, strict=True)]


def run_train(args) -> int:
    """``fastbp train``: read, encode, standardise, fit, report, save.

    Under an MPI launcher (``mpirun -n N fastbp train ...``) the ranks train data-parallel:
    rank 0 checks the outputs, reads and prepares the data and sends each rank its part of the
    training and test rows (``shard=None``); rank 0 alone prints and saves.
    """
    started = time.perf_counter()
    ranks = launched_ranks(args.threads)
    writer = ranks is None or ranks.root
    prepared = parts = None
    with together(ranks):
        if args.data_file is not None:
            if args.data is not None:
                raise CLIError("--data: give the data file once, as DATA or as --data, not "
                               "both")
            args.data = args.data_file
        if args.lr is None:
            args.lr = default_lr(args.optimizer)
        if args.threads is not None and ranks is None:
            fb.set_num_threads(args.threads)
        if writer:
            _check_outputs(args)
            prepared = _Prepared(args)
            if ranks is not None:
                parts = prepared.parts(ranks.size)
    if ranks is None:
        sizes, (X, y), validation = prepared.sizes, (prepared.X_train, prepared.y_train), \
            prepared.validation
    else:
        sizes, (X, y), validation = ranks.scatter(parts)
    net = fb.mlp(sizes, activation=args.activation, seed=args.seed)
    if writer:
        print(_describe_run(prepared.table, prepared.target, sizes, args, ranks), flush=True)
    fit_started = time.perf_counter()
    history = net.fit(X, y, loss=args.loss, optimizer=args.optimizer, lr=args.lr,
                      epochs=args.epochs, batch_size=args.batch_size, validation_data=validation,
                      clip_norm=args.clip_norm, seed=args.seed, verbose=0 if args.quiet else 1,
                      monitor=args.monitor, comm=ranks)
    fit_seconds = time.perf_counter() - fit_started
    if not writer:
        return 0

    target, table = prepared.target, prepared.table
    if prepared.validation is not None:
        _report_metrics(net, *prepared.validation, target, "test")
    else:
        _report_metrics(net, prepared.X_train, prepared.y_train, target, "train")
    net.metadata = {"fastbp_cli": METADATA_VERSION, "loss": args.loss,
                    "feature_names": table.feature_names, "target_name": table.target_name,
                    **target.meta}
    net.standardizer, net.target_standardizer = prepared.scaler, target.scaler
    net.save(args.out)
    print(f"wall time: {time.perf_counter() - started:.2f} s (training {fit_seconds:.2f} s)")
    print(f"saved model to {os.path.abspath(args.out)}")
    if args.plot is not None:
        history.plot(args.plot)
        print(f"saved training curves to {args.plot}")
    return 0


# ----------------------------------------------------------------------------------- predict
def _scaled_features(net, X: np.ndarray, meta: dict, path: str) -> np.ndarray:
    """X checked against the model's input width; standardised here for models saved by
    0.1.0, which kept the statistics in the metadata (later models standardise X in
    `predict`)."""
    if X.shape[1] != net.in_features:
        raise CLIError(f"{path}: the model expects {net.in_features} features, the data has "
                       f"{X.shape[1]}")
    if "feature_mean" in meta and net.standardizer is None:
        X = fb.Standardizer.from_arrays(meta["feature_mean"], meta["feature_std"]).transform(X)
    return X


def _cell(value, digits: int):
    """A CSV cell: floats to `digits` significant digits; text that a spreadsheet would run
    as a formula (starting with = + - @, tab or carriage return) prefixed with ``'``."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _write_csv(handle, names: list[str], rows: list[list], digits: int) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([_cell(name, digits) for name in names])
    for row in rows:
        writer.writerow([_cell(v, digits) for v in row])


def run_predict(args) -> int:
    """``fastbp predict MODEL DATA``: predictions as CSV (to --out or standard output)."""
    if not os.path.exists(args.model):
        raise CLIError(f"{args.model}: no such model file")
    if args.out is not None:
        _check_output_path(args.out, "--out")
    net = fb.load(args.model)
    meta = prediction_meta(net, args.model)
    X = _scaled_features(net, read_prediction_features(args.data, meta), meta, args.data)
    rows = decode_predictions(net.predict(X), meta)
    digits = 9 if net.dtype == np.float32 else 17
    if args.out is None:
        _write_csv(sys.stdout, meta["output_names"], rows, digits)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            _write_csv(f, meta["output_names"], rows, digits)
        print(f"wrote {len(rows)} predictions to {args.out}")
    return 0


# ------------------------------------------------------------------------------------ export
def with_recorded_scalings(net, meta: dict):
    """`net` with the feature and target scalings that models saved by 0.1.0 kept in their
    metadata attached as Standardizers (as `predict` applies them)."""
    if "feature_mean" in meta and net.standardizer is None:
        net.standardizer = fb.Standardizer.from_arrays(meta["feature_mean"], meta["feature_std"])
    if meta["task"] == "regression" and "target_mean" in meta and \
            net.target_standardizer is None:
        net.target_standardizer = fb.Standardizer.from_arrays(meta["target_mean"],
                                                              meta["target_std"])
    return net


def run_export(args) -> int:
    """``fastbp export MODEL ONNX``: the model as an ONNX file computing what ``predict``
    writes (before the labels are decoded to CSV)."""
    if not os.path.exists(args.model):
        raise CLIError(f"{args.model}: no such model file")
    _check_output_path(args.onnx, "ONNX")
    try:
        import_onnx()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    net = fb.load(args.model)
    net = with_recorded_scalings(net, prediction_meta(net, args.model))
    try:
        model = net.to_onnx(args.onnx, opset=args.opset, outputs=args.outputs,
                            fold_batchnorm=args.fold_batchnorm)
    except ValueError as exc:
        if str(exc).startswith("opset: "):
            raise CLIError(f"--{exc}") from None
        raise
    outputs = ", ".join(output.name for output in model.graph.output)
    print(f"exported {args.model} to {os.path.abspath(args.onnx)}: ONNX opset "
          f"{model.opset_import[0].version}, input 'input' ({net.in_features} features, "
          f"{net.dtype.name}), outputs {outputs}")
    return 0


# --------------------------------------------------------------------------------- gradcheck
def gradcheck_network(seed: int = 0) -> fb.Sequential:
    """A small float64 network holding every layer type (Identity runs unfused; Dropout with
    a frozen mask, so that repeated evaluations see the same function)."""
    return fb.Sequential(
        fb.Dense(6, 8), fb.Sigmoid(),
        fb.Dense(8, 8), fb.Tanh(), fb.Identity(),
        fb.Dense(8, 7), fb.ReLU(),
        fb.Dense(7, 6), fb.LeakyReLU(0.1),
        fb.Dense(6, 6), fb.ELU(0.5),
        fb.Dense(6, 6), fb.Softplus(2.0),
        fb.Dense(6, 6), fb.GELU(), fb.GELU(approximate="tanh"),
        fb.BatchNorm(6), fb.Dropout(0.25).freeze_mask(),
        fb.Residual(fb.Dense(6, 6), fb.Tanh(), fb.BatchNorm(6)),
        fb.Dense(6, 3),
        dtype="float64", seed=seed)


def gradcheck_targets(n: int, width: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random target for each loss: class labels, real values, probabilities in (0, 1)."""
    return {"cross_entropy": rng.integers(0, width, size=n),
            "mse": rng.normal(size=(n, width)),
            "bce": rng.uniform(size=(n, width))}


def run_gradcheck(args) -> int:
    """``fastbp gradcheck``: every loss on a network of every layer type; 1 if any fails."""
    rng = np.random.default_rng(args.seed)
    net = gradcheck_network(args.seed)
    X = rng.normal(size=(16, net.in_features))
    print(f"gradcheck of\n{net!r}\non {X.shape[0]} random samples\n")
    failed = []
    for loss, y in gradcheck_targets(X.shape[0], net.out_features, rng).items():
        report = fb.gradcheck(net, loss, X, y, raise_on_failure=False)
        print(f"loss {loss}:\n{report}\n")
        if not report.passed:
            failed.append(loss)
    if failed:
        print(f"gradcheck FAILED for loss(es): {', '.join(failed)}")
        return 1
    print("gradcheck passed for every loss")
    return 0


# -------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastbp`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 failed gradient check or diverged training, 2 bad input.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except BrokenPipeError:  # e.g. `fastbp predict ... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("fastbp: interrupted", file=sys.stderr)
        return 130
    except FloatingPointError as exc:
        return _report(str(exc), 1)
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        return _report(_first_line(exc), 2)
    except MemoryError as exc:
        return _report(f"out of memory: {_first_line(exc)}", 2)
    except Exception as exc:   # a bug of fastbp's: still one line, saying what to report
        return _report(f"internal error ({type(exc).__name__}: {_first_line(exc)}); please "
                       f"report it with the command that caused it", 2)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _report(message: str, status: int) -> int:
    """Print the error (on rank 0 alone under an MPI launcher: every rank has it)."""
    if launched_rank() == 0:
        print(f"fastbp: error: {message}", file=sys.stderr)
    return status
