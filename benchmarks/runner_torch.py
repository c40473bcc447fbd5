"""Times PyTorch eager (CPU, or CUDA in GPU mode) on the same workloads.

The loop is the one people write without a DataLoader: a fresh index permutation per epoch,
batches gathered with ``X[idx]``, ``zero_grad(set_to_none=True)`` / forward / cross-entropy /
backward / ``Adam.step()``, and the loss summed on the device and read once per epoch (as sega's
training loop does). The architecture is identical to sega's (``nn.Linear``, ``nn.Conv2d``,
``nn.MaxPool2d``, ``nn.RNN(nonlinearity="tanh", batch_first=True)``, ``nn.LSTM``, ``nn.GRU``,
``nn.Flatten``); the initialisation is PyTorch's own. Adam uses its defaults (lr 1e-3; on the CPU that is the for-loop implementation).
GPU mode turns TF32 off and synchronises before every clock read.

``compiled=True`` runs the forward pass and the loss through
``torch.compile(mode="reduce-overhead")``: Inductor's fused kernels for forward and backward,
replayed as CUDA graphs (the optimizer step stays eager, as in most compiled training loops).
On the CPU, where CUDA graphs do not exist, the dry run compiles with ``backend="eager"``: it
rehearses the same code path (Dynamo's tracing) without the minutes of CPU code generation.
"""

from __future__ import annotations

import time

import numpy as np

from .workloads import Dataset, get_workload


def build_model(name: str):
    """The PyTorch module of workload ``name``, identical in shape to sega's."""
    import torch
    from torch import nn

    if name == "mlp-small":
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    if name == "mlp-large":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 28 * 28, 10),
        )
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 10),
        )
    recurrent = {
        "rnn": lambda: nn.RNN(28, 128, nonlinearity="tanh", batch_first=True),
        "lstm": lambda: nn.LSTM(28, 128, batch_first=True),
        "gru": lambda: nn.GRU(28, 128, batch_first=True),  # reset-after form, as sega's GRU default
    }
    if name in recurrent:

        class LastState(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = recurrent[name]()
                self.head = nn.Linear(128, 10)

            def forward(self, x):
                out, _ = self.rnn(x)
                return self.head(out[:, -1])

        return LastState()
    raise ValueError(f"unknown workload {name!r}")


class TorchRunner:
    """Train the PyTorch model of workload ``workload``, one epoch per :meth:`epoch` call."""

    framework = "torch"

    def __init__(self, workload: str, data: Dataset, threads: int, gpu: bool = False, seed: int = 0,
                 track_metrics: bool = False, compiled: bool = False):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.torch = torch
        self.gpu = gpu
        self.device = torch.device("cuda" if gpu else "cpu")
        if gpu:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")  # Inductor's GEMMs too
        self.workload = get_workload(workload)
        self.data = data
        self.track_metrics = track_metrics
        self.X = torch.from_numpy(data.X_train).to(self.device)
        self.y = torch.from_numpy(data.y_train).to(self.device)
        self.model = build_model(workload).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed + 1)
        self.compiled = compiled
        self.forward_loss = self._forward_loss
        if compiled:
            options = dict(mode="reduce-overhead") if gpu else dict(backend="eager")
            self.forward_loss = torch.compile(self._forward_loss, dynamic=False, **options)

    def _forward_loss(self, xb, yb):
        out = self.model(xb)
        return out, self.loss_fn(out, yb)

    def _sync(self):
        if self.gpu:
            self.torch.cuda.synchronize()

    def epoch(self) -> dict:
        """Train one epoch; return its ``seconds``."""
        torch, model, opt, forward_loss = self.torch, self.model, self.opt, self.forward_loss
        X, y, bs = self.X, self.y, self.workload.batch_size
        n = len(X)
        model.train()
        self._sync()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=self.device, generator=self.gen)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        hits = torch.zeros((), dtype=torch.int64, device=self.device)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            xb, yb = X[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            if self.compiled:  # a new step: the graphs' previous outputs may be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            out, loss = forward_loss(xb, yb)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
            if self.track_metrics:
                hits += (out.detach().argmax(1) == yb).sum()
        mean_loss = float(total) / n
        self._sync()
        t1 = time.perf_counter()
        return {"seconds": t1 - t0, "inner_seconds": None, "loss": mean_loss}

    def accuracy(self) -> float:
        """Accuracy on the held-out test split (eval mode, no autograd)."""
        torch = self.torch
        self.model.eval()
        X = torch.from_numpy(self.data.X_test).to(self.device)
        with torch.no_grad():
            pred = torch.cat([self.model(X[i : i + 4096]).argmax(1) for i in range(0, len(X), 4096)])
        return float(np.mean(pred.cpu().numpy() == self.data.y_test))

    def device_memory(self) -> dict:
        """Peak bytes allocated by PyTorch on the GPU (GPU mode), else nothing."""
        if not self.gpu:
            return {}
        return {"gpu_peak_bytes": int(self.torch.cuda.max_memory_allocated())}
