"""The contract between sega's core and its compute backends.

This module *is* the plugin author's reference (``docs/plugins.md`` is generated from the same
text and a test keeps the two in step). A backend is a Python module (or any object) carrying
functions decorated with :data:`hookimpl` whose names match the specifications below. It is found
through the ``sega.backends`` entry-point group::

    [project.entry-points."sega.backends"]
    mybackend = "my_package.plugin"

The entry point must name a *light* module: listing backends imports it, so it must not import a
heavy array library at module level. Kernels that need one can be declared with
:func:`sega_core.lazy_kernel`, which defers the import until the backend is first used.

How kernels are used
--------------------
The core never calls kernel hooks through pluggy on the training path. When a backend is first
used it resolves every kernel hook into a plain dispatch table (:class:`sega_core.KernelTable`):
for each specification below, the backend's own implementation if it has one, otherwise -- for a
CPU backend only -- the NumPy reference implementation. A backend whose arrays live elsewhere
(``device != "cpu"``) must implement every kernel it is asked for; it is refused with a message
naming the missing kernels otherwise.

Kernel families (forward and backward of one layer) must be implemented together, because a
forward kernel may hand its backward partner an opaque ``ctx`` value.

Arrays and dtypes
-----------------
* Every array argument is an array of the backend's array module (``sega_array_module``), C
  contiguous unless stated otherwise, of dtype float32 or float64. All float arrays passed to one
  call share one dtype; results must have that same dtype (no silent promotion).
* Integer class labels are ``int64`` (or ``int32``) arrays of the backend's array module.
* Scalars (learning rates, ``alpha``, ``stride``...) are plain Python ``int``/``float``/``bool``.
* Output buffers named ``dw``, ``db``, ``dwx``, ``dwh`` are views into the model's flat gradient
  buffer: a backward kernel **overwrites** them in place (never accumulates) and must not keep a
  reference to them. Optimizer hooks update ``param`` and their state arrays **in place**. No
  other argument may be modified, except that a backward kernel may overwrite its ``dy``
  argument (the core never reads it again). ``sega_rnn_backward``'s ``dhs`` is not such a ``dy``:
  the recurrent layer keeps it from batch to batch (zero but for the last step when it returns
  its last state only), so it must be left as it is (since hook API 1.1).
* Losses return ``(loss, grad)``: ``loss`` is a 0-d array of the backend's array module holding
  the *mean* loss over the batch (the core turns it into a Python float once per epoch, so a GPU
  backend never synchronises per batch) and ``grad`` is d(mean loss)/d(input).

Versions
--------
:data:`HOOK_API_VERSION` is ``"MAJOR.MINOR"``. A backend states the version it was written for
in :func:`sega_backend_info`; the core refuses a backend whose major version differs, and accepts
any minor version. Adding a keyword to a hook is a minor change: implementations may accept
*fewer* arguments than the specification lists (pluggy's rule) and the core passes only those they
name. Renaming or removing an argument is a major change and goes through a deprecation period
first (see :data:`DEPRECATED_ARGUMENTS`).

History: 1.1 (sega-core 0.1.0): ``sega_rnn_backward`` must leave ``dhs`` as it is (1.0 let it be
overwritten; none of the bundled backends ever did, and the conformance suite now checks it).
1.2: the optional ``sega_compute_context`` hook; the losses' optional ``weight`` argument; pooling,
batch-normalization, LSTM and GRU kernels (``ADDED_HOOKS``); rectangular convolution kernels with
per-axis strides and per-side padding.
1.3: the optional ``sega_stream_to_device`` hook, which lets a backend overlap the copy of the next
chunk of data with the compute on the current one.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "sega"

#: The version of this hook API. Backends declare the version they were written for.
HOOK_API_VERSION = "1.3"

#: Mark a function as the specification of a hook (used by this module only).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Mark a function in a backend as the implementation of a hook of the same name.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: Arguments on their way out, per hook: ``{hook: {old_name: new_name}}`` for a rename,
#: ``{hook: {name: None}}`` for an argument that will be removed. An implementation that still
#: uses an old name keeps working until the next major hook API (the registry translates it to the
#: new name before pluggy validates it) and its backend gets a ``DeprecationWarning`` naming the
#: hook and both names when it is resolved; a removed argument stays in the specification, and is
#: still passed, for that long. Empty in hook API 1.0: nothing has been renamed yet. Example of an
#: entry, had ``sega_huber``'s ``delta`` once been called ``threshold``:
#: ``{"sega_huber": {"threshold": "delta"}}``.
DEPRECATED_ARGUMENTS: dict[str, dict[str, str | None]] = {}

#: Kernel hooks added after hook API 1.0, with the version that added them. A backend written
#: for an earlier version need not implement them: a CPU backend falls back to the NumPy
#: reference, any other backend can run every model that does not use them (one that does is
#: refused with an error naming the hook).
ADDED_HOOKS: dict[str, str] = {
    hook: "1.2"
    for hook in (
        "sega_maxpool2d_forward", "sega_maxpool2d_backward", "sega_avgpool2d_forward", "sega_avgpool2d_backward",
        "sega_batchnorm_forward", "sega_batchnorm_backward", "sega_lstm_forward", "sega_lstm_backward",
        "sega_gru_forward", "sega_gru_backward",
    )
}

#: Arguments added to a hook after its first version, per hook, with the version that added
#: them. An implementation written before may leave such an argument out; the core then calls it
#: only while the argument is ``None``. When a model needs the argument (training with sample or
#: class weights), a CPU backend falls back to the NumPy reference for those calls and any other
#: backend is refused with an error naming the hook and the argument.
OPTIONAL_ARGUMENTS: dict[str, dict[str, str]] = {
    hook: {"weight": "1.2"}
    for hook in ("sega_softmax_cross_entropy", "sega_bce_with_logits", "sega_mse", "sega_mae", "sega_huber")
}


# --------------------------------------------------------------------------------------------
# Identity and availability (called through pluggy, once, when backends are listed or resolved)
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sega_backend_info():
    """Describe this backend. Required; called when backends are listed (must stay cheap).

    Return a mapping with these keys:

    ``name`` (str)
        The backend's name, the one users pass to ``backend=``; must equal the entry-point name.
    ``version`` (str)
        The backend's own version.
    ``hook_api`` (str)
        The :data:`HOOK_API_VERSION` this backend was written for, e.g. ``"1.0"``.
    ``device`` (str)
        ``"cpu"`` if the backend's arrays are NumPy arrays in host memory (it may then implement
        only some kernels, the rest falling back to the NumPy reference), anything else (e.g.
        ``"gpu"``) if they live elsewhere (it must then implement every kernel).
    ``description`` (str, optional)
        One line shown in ``sega backends``.
    """


@hookspec(firstresult=True)
def sega_backend_available():
    """Say whether this backend can run here. Required.

    Return ``None`` when it can, else a short human-readable reason, e.g. ``"cupy is not
    installed; install it with pip install cupy-cuda12x"`` or ``"no CUDA device found"``. May
    import the backend's array library; must not raise.
    """


@hookspec(firstresult=True)
def sega_array_module():
    """Return the array module the backend's arrays come from (``numpy``, ``cupy``...).

    The core uses it for array glue that is not a kernel: allocating buffers, reshaping,
    slicing batches, ``argmax``. It must offer the NumPy API for those operations.
    """


@hookspec(firstresult=True)
def sega_to_device(x):
    """Copy the host (NumPy) array ``x`` into the backend's memory and return it.

    ``x`` is C contiguous and already has the dtype wanted; keep it. For a CPU backend this may
    return ``x`` itself.
    """


@hookspec(firstresult=True)
def sega_to_host(x):
    """Return the backend array ``x`` as a NumPy array in host memory (same shape and dtype)."""


@hookspec(firstresult=True)
def sega_make_rng(seed):
    """Return a random generator in the backend's memory, seeded with the int ``seed``.

    The object is passed back unchanged to :func:`sega_dropout_forward`; its type is the
    backend's business (a ``numpy.random.Generator``, a ``cupy.random.Generator``...).
    """


@hookspec(firstresult=True)
def sega_compute_context():
    """Optional (since hook API 1.2): a context manager the core enters around each call of
    ``train``, ``predict``, ``predict_proba`` and ``evaluate`` that runs this backend's kernels.

    Return ``None`` (or leave the hook out) when there is nothing to set up. A backend uses it
    for process state that should hold for a whole training run rather than be set and reset
    around every kernel: e.g. holding its BLAS library to one thread while its kernels share a
    batch out between threads of their own. Calls may nest and may come from several threads at
    once (a ``predict`` in one thread while another trains), so the context must count its
    entries and restore the state only when the last one leaves.
    """


@hookspec(firstresult=True)
def sega_stream_to_device(chunks):
    """Optional (since hook API 1.3): copy a stream of data chunks to the device, in order.

    ``chunks`` is an iterator of tuples (one chunk's ``(X, y, sample_weight)``, say) whose
    entries are C-contiguous host (NumPy) arrays, ``None``, or arrays already on the device.
    Return a generator yielding, for each input tuple in turn, a tuple of the same length: each
    host array as :func:`sega_to_device` would return it, ``None`` and device arrays as they
    are. The core calls it once per epoch of out-of-core or streamed data and slices batches
    out of what it yields.

    A backend whose copies can run beside its compute (a GPU: pinned host buffers and a copy
    stream) uses it to copy the next chunk while the current one is being computed on; it may
    read ``chunks`` at most one tuple ahead of what it has yielded, and what it yields must be
    ready for any kernel the core launches next, without the host waiting for the copy. The
    core may stop before the end (``close()``); what was read ahead must then be let go safely.
    Leave the hook out otherwise: the core then calls ``sega_to_device`` on each entry as the
    tuple is needed, never reading ahead.
    """


# --------------------------------------------------------------------------------------------
# Layer kernels
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sega_dense_forward(x, w, b):
    """Fully connected layer: return ``x @ w + b``.

    ``x`` is (N, IN), ``w`` is (IN, OUT), ``b`` is (OUT,); the result is a new (N, OUT) array.
    """


@hookspec(firstresult=True)
def sega_dense_backward(dy, x, w, dw, db, need_dx):
    """Gradients of the fully connected layer.

    ``dy`` is (N, OUT), the gradient of the loss with respect to the layer's output; ``x`` and
    ``w`` are the forward inputs. Overwrite ``dw`` (IN, OUT) with ``x.T @ dy`` and ``db`` (OUT,)
    with ``dy.sum(0)``. Return ``dy @ w.T`` (N, IN) if ``need_dx`` else ``None``.
    """


@hookspec(firstresult=True)
def sega_conv2d_forward(x, w, b, stride, padding):
    """2-D cross-correlation (what deep-learning libraries call convolution), NCHW.

    ``x`` is (N, C, H, W); ``w`` is (F, C, KH, KW); ``b`` is (F,). ``stride`` and ``padding``
    (zeros) are ints, the same on every axis and side, for a square kernel with square, symmetric
    geometry. Since hook API 1.2 they may also be pairs: ``stride`` ``(SH, SW)`` and ``padding``
    ``((top, bottom), (left, right))``, and the kernel rectangular; the core sends these forms
    only to backends written for 1.2 or later. The output is (N, F, HO, WO) with
    ``HO = (H + top + bottom - KH) // SH + 1`` and likewise ``WO``.

    Return ``(y, ctx)``: ``ctx`` is anything the backend's own :func:`sega_conv2d_backward` wants
    to reuse (an im2col matrix, say) or ``None``. It is passed back untouched.
    """


@hookspec(firstresult=True)
def sega_conv2d_backward(dy, x, w, stride, padding, ctx, dw, db, need_dx):
    """Gradients of :func:`sega_conv2d_forward`.

    ``dy`` is (N, F, HO, WO). Overwrite ``dw`` (F, C, K, K) and ``db`` (F,). Return the gradient
    with respect to ``x``, shape (N, C, H, W), if ``need_dx`` else ``None``.
    """


@hookspec(firstresult=True)
def sega_rnn_forward(x, wx, wh, b, activation):
    """Elman recurrent layer over a whole sequence, initial state zero.

    ``x`` is (N, T, F); ``wx`` is (F, H); ``wh`` is (H, H); ``b`` is (H,); ``activation`` is one
    of ``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"linear"``. For t = 0..T-1::

        h[t] = activation(x[:, t] @ wx + h[t-1] @ wh + b),   h[-1] = 0

    Return ``(hs, ctx)`` where ``hs`` is (N, T, H), every state in order, and ``ctx`` is
    anything the backend's own :func:`sega_rnn_backward` wants (or ``None``).
    """


@hookspec(firstresult=True)
def sega_rnn_backward(dhs, x, wx, wh, hs, activation, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time for :func:`sega_rnn_forward`.

    ``dhs`` is (N, T, H): the gradient of the loss with respect to every returned state (zero
    where a state was not used, e.g. all but the last when the layer returns its last state).
    Read ``dhs`` only: the layer reuses it for the next batch.
    ``hs`` is the forward result. Overwrite ``dwx`` (F, H), ``dwh`` (H, H) and ``db`` (H,). Return
    the gradient with respect to ``x``, (N, T, F), if ``need_dx`` else ``None``.
    """


@hookspec(firstresult=True)
def sega_dropout_forward(x, rate, rng):
    """Inverted dropout for training.

    Zero each element of ``x`` with probability ``rate`` (0 <= rate < 1) and scale the survivors
    by ``1 / (1 - rate)``, drawing from ``rng`` (made by :func:`sega_make_rng`). Return
    ``(y, mask)`` where ``mask`` has ``x``'s shape and dtype and ``y == x * mask``.
    """


@hookspec(firstresult=True)
def sega_dropout_backward(dy, mask):
    """Gradient of :func:`sega_dropout_forward`: return ``dy * mask``."""


# --------------------------------------------------------------------------------------------
# Layer kernels added in hook API 1.2: pooling, batch normalization, LSTM, GRU. A backend written
# for 1.1 need not have them (see ``ADDED_HOOKS``).
#
# Pooling windows are given as pairs: ``pool`` ``(PH, PW)``, ``stride`` ``(SH, SW)``, and
# ``padding`` ``((top, bottom), (left, right))``. The output is (N, C, HO, WO) with
# ``HO = (H + top + bottom - PH) // SH + 1`` and likewise ``WO``. Padding never takes part in a
# window's result: a maximum is over the window's input elements only, an average divides by
# their count (Keras's "same" pooling). Every window holds at least one input element.
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sega_maxpool2d_forward(x, pool, stride, padding):
    """Max pooling over (N, C, H, W) ``x``. Return ``(y, ctx)``; ``ctx`` is passed back to the
    backward kernel (e.g. the position of each window's maximum) or is ``None``.

    Where a window holds its maximum more than once, the gradient goes to one of them (the
    first in row-major order, as the reference does).
    """


@hookspec(firstresult=True)
def sega_maxpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Gradient of :func:`sega_maxpool2d_forward`: return the gradient with respect to ``x``
    (N, C, H, W), each window's ``dy`` added to its maximum's position."""


@hookspec(firstresult=True)
def sega_avgpool2d_forward(x, pool, stride, padding):
    """Average pooling over (N, C, H, W) ``x`` (each window's input elements only). Return
    ``(y, ctx)`` as :func:`sega_maxpool2d_forward` does."""


@hookspec(firstresult=True)
def sega_avgpool2d_backward(dy, x, pool, stride, padding, ctx):
    """Gradient of :func:`sega_avgpool2d_forward` with respect to ``x``: each window's ``dy``
    spread evenly over its input elements."""


@hookspec(firstresult=True)
def sega_batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, training):
    """Batch normalization of ``x``, (N, C) or (N, C, H, W), per channel C.

    ``gamma``, ``beta``, ``running_mean`` and ``running_var`` are (C,). In training
    (``training`` True) the statistics are the batch's: ``mean`` and the biased variance
    ``var`` over every axis but C; ``y = gamma * (x - mean) / sqrt(var + eps) + beta``; and the
    running statistics are updated **in place**: ``running = momentum * running + (1 -
    momentum) * batch`` (Keras's convention, momentum near 1). At inference the running
    statistics are used and nothing is modified. Return ``(y, ctx)``; ``ctx`` (training only)
    is what the backward kernel needs, e.g. the normalized input and ``1 / sqrt(var + eps)``.
    """


@hookspec(firstresult=True)
def sega_batchnorm_backward(dy, x, gamma, ctx, dgamma, dbeta, need_dx):
    """Gradients of :func:`sega_batchnorm_forward` in training (batch statistics).

    Overwrite ``dgamma`` and ``dbeta`` (C,). Return the gradient with respect to ``x`` (through
    the batch mean and variance too) if ``need_dx`` else ``None``.
    """


@hookspec(firstresult=True)
def sega_lstm_forward(x, wx, wh, b):
    """Long short-term memory over a whole sequence, initial state and cell zero.

    ``x`` is (N, T, F); ``wx`` is (F, 4H), ``wh`` (H, 4H), ``b`` (4H,), the four gates' columns
    in PyTorch's order: input, forget, cell candidate, output. For t = 0..T-1::

        a = x[:, t] @ wx + h[t-1] @ wh + b;  i, f, g, o = split(a, 4)
        c[t] = sigmoid(f) * c[t-1] + sigmoid(i) * tanh(g)
        h[t] = sigmoid(o) * tanh(c[t])

    Return ``(hs, ctx)``: ``hs`` (N, T, H) every state in order, ``ctx`` what the backward
    kernel needs (gate activations and cells) or ``None``.
    """


@hookspec(firstresult=True)
def sega_lstm_backward(dhs, x, wx, wh, hs, ctx, dwx, dwh, db, need_dx):
    """Backpropagation through time for :func:`sega_lstm_forward`.

    ``dhs`` (N, T, H) is the gradient of every returned state; read it only (the layer reuses
    it). Overwrite ``dwx``, ``dwh``, ``db``; return the gradient with respect to ``x`` if
    ``need_dx`` else ``None``.
    """


@hookspec(firstresult=True)
def sega_gru_forward(x, wx, wh, bx, bh, reset_after):
    """Gated recurrent unit over a whole sequence, initial state zero.

    ``x`` is (N, T, F); ``wx`` (F, 3H), ``wh`` (H, 3H), ``bx`` and ``bh`` (3H,), the gates'
    columns in PyTorch's order: reset, update, new. For t = 0..T-1, with ``ax = x[:, t] @ wx +
    bx`` split into ``ax_r, ax_z, ax_n`` and likewise ``ah = h[t-1] @ wh + bh``::

        r = sigmoid(ax_r + ah_r);  z = sigmoid(ax_z + ah_z)
        n = tanh(ax_n + r * ah_n)                                   # reset_after (PyTorch)
        n = tanh(ax_n + (r * h[t-1]) @ wh[:, 2H:] + bh_n)           # not reset_after (Keras's original)
        h[t] = (1 - z) * n + z * h[t-1]

    Return ``(hs, ctx)`` as :func:`sega_lstm_forward` does.
    """


@hookspec(firstresult=True)
def sega_gru_backward(dhs, x, wx, wh, bx, bh, reset_after, hs, ctx, dwx, dwh, dbx, dbh, need_dx):
    """Backpropagation through time for :func:`sega_gru_forward`; ``dhs`` is read only.

    Overwrite ``dwx``, ``dwh``, ``dbx``, ``dbh``; return the gradient with respect to ``x`` if
    ``need_dx`` else ``None``.
    """


# --------------------------------------------------------------------------------------------
# Activations. Forward takes the pre-activation ``z``; backward takes the upstream gradient
# ``dy`` together with both ``z`` and the forward output ``y`` (use whichever gives the exact
# derivative at the least cost) and returns d(loss)/dz, shaped like ``z``.
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sega_sigmoid_forward(z):
    """Return ``1 / (1 + exp(-z))``, computed without overflow for large ``|z|``."""


@hookspec(firstresult=True)
def sega_sigmoid_backward(dy, z, y):
    """Return ``dy * y * (1 - y)`` where ``y = sigmoid(z)``."""


@hookspec(firstresult=True)
def sega_tanh_forward(z):
    """Return ``tanh(z)``."""


@hookspec(firstresult=True)
def sega_tanh_backward(dy, z, y):
    """Return ``dy * (1 - y**2)`` where ``y = tanh(z)``."""


@hookspec(firstresult=True)
def sega_relu_forward(z):
    """Return ``max(z, 0)``."""


@hookspec(firstresult=True)
def sega_relu_backward(dy, z, y):
    """Return ``dy`` where ``z > 0``, else 0 (the derivative at 0 is taken as 0)."""


@hookspec(firstresult=True)
def sega_leaky_relu_forward(z, alpha):
    """Return ``z`` where ``z > 0``, else ``alpha * z`` (``alpha`` a float, default 0.01)."""


@hookspec(firstresult=True)
def sega_leaky_relu_backward(dy, z, y, alpha):
    """Return ``dy`` where ``z > 0``, else ``alpha * dy``."""


@hookspec(firstresult=True)
def sega_softmax_forward(z):
    """Softmax over the last axis, shifted by the row maximum so it cannot overflow."""


@hookspec(firstresult=True)
def sega_softmax_backward(dy, z, y):
    """Vector-Jacobian product of softmax over the last axis: ``y * (dy - sum(dy * y, -1))``."""


@hookspec(firstresult=True)
def sega_linear_forward(z):
    """The identity activation: return ``z`` (the same array is fine)."""


@hookspec(firstresult=True)
def sega_linear_backward(dy, z, y):
    """The identity's derivative: return ``dy``."""


# --------------------------------------------------------------------------------------------
# Losses: each returns ``(loss, grad)``, ``loss`` a 0-d array holding the batch mean.
# ``weight`` (since hook API 1.2) is ``None`` or an (N,) array of the predictions' dtype: sample
# ``n``'s loss terms and their gradients are multiplied by ``weight[n]``, and the mean is still
# taken over every element (Keras's sum-over-batch-size reduction), so weights of 1 change
# nothing. An implementation written for 1.1 leaves ``weight`` out; see ``OPTIONAL_ARGUMENTS``.
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sega_softmax_cross_entropy(logits, target, weight):
    """Softmax followed by cross-entropy, fused and numerically stable (log-sum-exp).

    ``logits`` is (N, C). ``target`` is either integer class indices (N,) or class
    probabilities / one-hot rows (N, C) of the logits' dtype. The loss is
    ``mean_n(w[n] * -sum_c p[n, c] * log_softmax(logits)[n, c])``; the gradient with respect to
    the logits is ``w[n] * (softmax(logits) - p) / N`` (``w`` all ones when ``weight`` is None).
    """


@hookspec(firstresult=True)
def sega_bce_with_logits(logits, target, weight):
    """Sigmoid followed by binary cross-entropy, fused and numerically stable.

    ``logits`` and ``target`` (0/1 or probabilities) have the same shape (N, K). The loss is the
    mean over all elements of ``w[n] * (max(l, 0) - l * t + log(1 + exp(-|l|)))``; the gradient
    is ``w[n] * (sigmoid(l) - t) / (N * K)``.
    """


@hookspec(firstresult=True)
def sega_mse(pred, target, weight):
    """Mean squared error over all elements, each row scaled by ``weight``; gradient
    ``w[n] * 2 * (pred - target) / pred.size``."""


@hookspec(firstresult=True)
def sega_mae(pred, target, weight):
    """Mean absolute error over all elements, each row scaled by ``weight``; gradient
    ``w[n] * sign(pred - target) / pred.size``."""


@hookspec(firstresult=True)
def sega_huber(pred, target, delta, weight):
    """Huber loss, mean over all elements (PyTorch's ``HuberLoss`` definition), rows scaled by ``weight``.

    With ``r = pred - target``: ``0.5 * r**2`` where ``|r| <= delta``, else
    ``delta * (|r| - 0.5 * delta)``. Gradient: ``w[n] * clip(r, -delta, delta) / pred.size``.
    """


# --------------------------------------------------------------------------------------------
# Optimizer update rules. The core keeps every parameter of a model in one flat buffer, so one
# call updates the whole model: ``param``, ``grad`` and the state arrays are 1-D arrays of equal
# length and dtype. L2 regularisation is already in ``grad``. Update in place; return nothing.
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def sega_sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """Stochastic gradient descent with momentum (PyTorch's formulation).

    ``velocity = momentum * velocity + grad``; then ``param -= lr * (grad + momentum *
    velocity)`` if ``nesterov`` else ``param -= lr * velocity``. With ``momentum == 0`` this is
    plain SGD (``velocity`` may then be left untouched).
    """


@hookspec(firstresult=True)
def sega_adam_update(param, grad, m, v, step, lr, beta1, beta2, eps):
    """Adam (Kingma & Ba), bias-corrected; ``step`` is the 1-based step count (an int).

    ``m = beta1*m + (1-beta1)*grad``; ``v = beta2*v + (1-beta2)*grad**2``;
    ``param -= lr * (m / (1-beta1**step)) / (sqrt(v / (1-beta2**step)) + eps)``.
    """


@hookspec(firstresult=True)
def sega_adadelta_update(param, grad, sq_avg, acc_delta, lr, rho, eps):
    """Adadelta (Zeiler), PyTorch's formulation.

    ``sq_avg = rho*sq_avg + (1-rho)*grad**2``;
    ``delta = sqrt(acc_delta + eps) / sqrt(sq_avg + eps) * grad``;
    ``acc_delta = rho*acc_delta + (1-rho)*delta**2``; ``param -= lr * delta``.
    """
