"""sega against PyTorch on identical weights, over random architectures (PyTorch is the oracle).

Each case is a random model (every layer type in every position, the output layer included;
every activation; every loss and target form; L2; Dropout at inference), drawn from a seed by
``_torch_oracle.make_case``. Its torch twin is built from sega's ``get_weights()`` and computes
what sega documents. Compared, on every CPU backend, in float64 (tight) and float32 (loose):

- forward outputs: ``predict_proba`` (classifiers), ``predict`` (labels and values);
- the reported loss and scores: ``evaluate(X, y)`` (also with ``sample_weight``);
- parameter gradients (eval mode, L2 included);
- training: ``history["loss"]``, the metric, ``history["lr"]``, ``history["val_loss"]`` and the
  parameters after a few epochs of mini-batch steps with every optimizer and scheduler, with
  validation data, early stopping, sample and class weights, and over two ``train`` calls.

Hand-written cases (``_torch_oracle.named_cases``) add what the random draw rarely reaches: the
output head on every layer type, batches big enough for the numba backend to split them across
threads, inference in several chunks.

A failure message holds the Python that builds the failing sega model.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sega_core  # noqa: E402


def _load_oracle():
    name = "sega_oracle_torch"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_torch_oracle.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


O = _load_oracle()

BACKENDS = ["numpy", "numba"]
DTYPES = ["float64", "float32"]
N_STATIC = 66  # cases for forward / loss / gradients (tasks and output layer kinds cycle: 11 x 3)
N_TRAIN = 36  # training cases

RANDOM_STATIC = [O.make_case(i) for i in range(N_STATIC)]
RANDOM_TRAIN = [O.make_case(i, training=True) for i in range(N_TRAIN)]
NAMED_STATIC, NAMED_TRAIN = O.named_cases()
STATIC_CASES = RANDOM_STATIC + NAMED_STATIC
TRAIN_CASES = RANDOM_TRAIN + NAMED_TRAIN


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    sega_core.get_backend(name)  # installed but unusable is a failure, not a skip
    return name


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(1)  # small tensors; shared 2-core machines
    yield


def _setup(case, backend, dtype):
    """The sega model (with random biases), its torch twin, and the data in both worlds."""
    model = case.sega_model(backend, dtype)
    model.set_weights(case.new_weights(model.get_weights(trainable_only=True)))
    twin = O.TorchTwin(case, model.get_weights(trainable_only=True))
    twin.set_mode(False)
    X, y = case.data()
    return model, twin, X, y, O.torch_inputs(X, dtype), O.torch_targets(case, y, dtype)


def _ids(cases):
    return [c.name or f"{c.index}-{c.task}-{'-'.join(s['kind'] for s in c.layers)}" for c in cases]


# ---- forward -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", STATIC_CASES, ids=_ids(STATIC_CASES))
def test_forward_matches_torch(case, backend, dtype):
    model, twin, X, y, Xt, yt = _setup(case, backend, dtype)
    with torch.no_grad():
        out, logits = twin.forward(Xt)
        if case.regressor:
            want = out.numpy()
            got = model.predict(X)
            O.assert_close(got, want[:, 0] if case.n_out == 1 else want, dtype, "predict (values)", case, backend)
            return
        proba = twin.probabilities(Xt).numpy()
    O.assert_close(model.predict_proba(X), proba, dtype, "predict_proba", case, backend)

    # Labels (documented shapes; values compared where the decision is not a near tie).
    labels = model.predict(X)
    want_labels, clear = _torch_labels(case, proba, dtype)
    assert labels.shape == want_labels.shape, f"predict shape {labels.shape}, expected {want_labels.shape}\n{case.code(backend, dtype)}"
    np.testing.assert_array_equal(labels[clear], want_labels[clear], err_msg=case.code(backend, dtype))


def _torch_labels(case, proba, dtype):
    """``(labels, clear)``: the labels ``predict`` must give from torch's probabilities, and a
    mask of those that are not near ties (float rounding may decide those either way)."""
    margin = 10 * O.RTOL[dtype]
    if O.TASKS[case.task].head == "softmax":
        top2 = np.sort(proba, axis=1)[:, -2:]
        return proba.argmax(1), top2[:, 1] - top2[:, 0] > margin
    p = proba[:, 1] if case.n_out == 1 else proba  # (N,) for one output, (N, K) for K
    return (p >= 0.5).astype(np.int64), np.abs(p - 0.5) > margin


# ---- reported loss -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", STATIC_CASES, ids=_ids(STATIC_CASES))
def test_evaluate_loss_matches_torch(case, backend, dtype):
    model, twin, X, y, Xt, yt = _setup(case, backend, dtype)
    with torch.no_grad():
        want = twin.loss(Xt, yt).item()
        out, _ = twin.forward(Xt)
        proba = None if case.regressor else twin.probabilities(Xt).numpy()
    scores = model.evaluate(X, y)
    O.assert_close(scores["loss"], want, dtype, "evaluate()['loss']", case, backend)
    # Weighted: each sample's loss scaled by its weight, divided by N (Keras's convention).
    w = np.random.default_rng([case.seed, 5]).uniform(0.1, 3.0, len(X))
    with torch.no_grad():
        _, logits = twin.forward(Xt)
        want_w = (O.torch_data_loss(case.task, logits, yt, case.huber_delta, torch.tensor(w))
                  + twin.penalty(case.reg_lambda)).item()
    O.assert_close(model.evaluate(X, y, sample_weight=w)["loss"], want_w, dtype, "evaluate(sample_weight=w)['loss']",
                   case, backend)
    if case.regressor:
        err = out.numpy() - yt.numpy().reshape(out.shape)
        O.assert_close(scores["mse"], (err**2).mean(), dtype, "evaluate()['mse']", case, backend)
        O.assert_close(scores["mae"], np.abs(err).mean(), dtype, "evaluate()['mae']", case, backend)
        return
    labels, clear = _torch_labels(case, proba, dtype)
    if clear.all():  # no near tie: the accuracy is determined
        yn = yt.numpy()
        if O.TASKS[case.task].head == "softmax":
            truth = yn if yn.ndim == 1 else yn.argmax(1)
        else:
            truth = (yn >= 0.5).astype(np.int64).reshape(labels.shape)
        O.assert_close(scores["accuracy"], (labels == truth).mean(), dtype, "evaluate()['accuracy']", case, backend)


# ---- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", STATIC_CASES, ids=_ids(STATIC_CASES))
def test_gradients_match_torch(case, backend, dtype):
    model, twin, X, y, Xt, yt = _setup(case, backend, dtype)
    loss = twin.loss(Xt, yt)
    loss.backward()
    got_loss, got_grads = O.sega_loss_and_grads(model, X, y)
    O.assert_close(got_loss, loss.item(), dtype, "loss of _loss_and_grad", case, backend)
    want = [t.grad.numpy() if t.grad is not None else np.zeros(tuple(t.shape)) for t in twin.parameters()]
    assert len(got_grads) == len(want)
    scale = max([1.0] + [float(np.abs(w).max()) for w in want if w.size])
    for i, (g, w) in enumerate(zip(got_grads, want)):
        # One scale for the whole model: a weight whose gradient is tiny next to the others is
        # compared to the gradient's overall size (float32 cancellation).
        O.assert_close(g / scale, w / scale, dtype, f"gradient of weight array {i}", case, backend)


# ---- training ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRAIN_CASES, ids=_ids(TRAIN_CASES))
def test_training_matches_torch(case, backend, dtype):
    model, twin, X, y, Xt, yt = _setup(case, backend, dtype)
    val = case.validation_data()
    val_t = None if val is None else (O.torch_inputs(val[0], dtype), O.torch_targets(case, val[1], dtype))
    weight_args, w = O.sample_weights(case, y)
    want = O.torch_train(case, twin, Xt, yt, val_t, None if w is None else torch.tensor(w))
    history = model.train(X, y, **O.sega_train_args(case), **weight_args)
    metric = "mae" if case.regressor else "accuracy"
    O.assert_close(history["lr"], want["lr"], dtype, "history['lr'] (the learning rate of each epoch)", case, backend)
    O.assert_close(history["loss"], want["loss"], dtype, "history['loss']", case, backend, factor=3)
    O.assert_close(history[metric], want["metric"], dtype, f"history[{metric!r}]", case, backend, factor=3)
    if val is not None:
        O.assert_close(history["val_loss"], want["val_loss"], dtype, "history['val_loss']", case, backend, factor=3)
    for i, (got, t) in enumerate(zip(model.get_weights(trainable_only=True), twin.parameters())):
        O.assert_close(got, t.detach().numpy(), dtype, f"weight array {i} after training", case, backend, factor=3)


# ---- the generator covers what it claims ---------------------------------------------------


def test_the_cases_cover_every_layer_position_activation_loss_optimizer_and_scheduler():
    seen = O.coverage(STATIC_CASES + TRAIN_CASES)
    can_end = set(O.OUTPUT_LAYERS) | set(O.trailing_kinds())
    for kind, entry in O.LAYERS.items():
        for pos in ("first", "hidden", "output") if kind in can_end else ("first", "hidden"):
            assert (kind, pos) in seen["positions"], f"no case has a {kind} layer in position {pos}"
        for act in entry.activations:
            assert (kind, act) in seen["activations"], f"no case has a {kind} layer with activation {act}"
    for kind in O.OUTPUT_LAYERS:
        heads = {"dense": ("softmax", "sigmoid", "linear", "relu"), "conv2d": ("sigmoid", "linear"),
                 "rnn": ("sigmoid", "tanh", "linear")}[kind]
        for act in heads:
            assert (kind, act) in seen["output_activations"], f"no case ends with a {kind} output layer with {act}"
    assert seen["tasks"] == set(O.TASKS)
    seen_train = O.coverage(RANDOM_TRAIN)
    for name in O.OPTIMIZERS:
        assert (name, False) in seen_train["optimizers"], f"no training case uses a {name} object"
    assert any(by_name for _, by_name in seen_train["optimizers"]), "no training case names its optimizer"
    assert any(c.training["optimizer"]["lr_argument"] for c in RANDOM_TRAIN), "no case gives lr= next to an optimizer"
    assert any(c.training["n_val"] for c in RANDOM_TRAIN) and any(c.training["patience"] for c in RANDOM_TRAIN)
    assert {c.training["weights"] for c in RANDOM_TRAIN} == {"none", "sample", "class_dict", "balanced"}
    assert seen_train["schedulers"] == set(O.SCHEDULERS)
    assert seen["sizes"] and seen["batch_1"] and seen_train["partial_batch"]


# ---- training in several calls -------------------------------------------------------------

def _plain(case):
    """A copy of a training case with an optimizer object and no scheduler, validation or early stopping."""
    import copy

    case = copy.deepcopy(case)
    case.training.update(scheduler={"name": "none"}, patience=None, n_val=0, weights="none")
    case.training["optimizer"]["by_name"] = False
    return case


CONTINUED = [_plain(c) for c in RANDOM_TRAIN[:6]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONTINUED, ids=_ids(CONTINUED))
def test_training_in_two_calls_continues_like_one(case, backend, dtype):
    """``train`` twice with the same optimizer object continues its state, and the history
    accumulates: the same as torch running every epoch in one loop."""
    import copy

    model, twin, X, y, Xt, yt = _setup(case, backend, dtype)
    first = 2
    both = copy.deepcopy(case)
    both.training["epochs"] = first + case.training["epochs"]
    want = O.torch_train(both, twin, Xt, yt)
    args = O.sega_train_args(case)
    model.train(X, y, **{**args, "epochs": first})
    history = model.train(X, y, **args)  # the same optimizer object
    O.assert_close(history["loss"], want["loss"], dtype, "history['loss'] over two train calls", case, backend, factor=3)
    for i, (got, t) in enumerate(zip(model.get_weights(trainable_only=True), twin.parameters())):
        O.assert_close(got, t.detach().numpy(), dtype, f"weight array {i} after two train calls", case, backend, factor=3)
