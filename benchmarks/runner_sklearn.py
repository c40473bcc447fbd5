"""Times scikit-learn's MLPClassifier on the MLP workloads (W1, W2).

One ``partial_fit`` call is one epoch (shuffled mini-batches, Adam). To do the same work as the
other frameworks, ``alpha=0`` (no L2 term) and the data stay float32 (MLPClassifier keeps
float32 input in float32).
"""

from __future__ import annotations

import time

import numpy as np

from .workloads import N_CLASSES, Dataset, get_workload, mlp_hidden


class SklearnRunner:
    """Train an MLPClassifier for workload ``workload``, one epoch per :meth:`epoch` call."""

    framework = "sklearn"

    def __init__(self, workload: str, data: Dataset, seed: int = 0, **_):
        from sklearn.neural_network import MLPClassifier

        self.workload = get_workload(workload)
        if not self.workload.sklearn:
            raise ValueError(f"scikit-learn has no model for workload {workload!r}")
        self.data = data
        self.model = MLPClassifier(
            hidden_layer_sizes=mlp_hidden(workload),
            activation="relu",
            solver="adam",
            alpha=0.0,
            batch_size=self.workload.batch_size,
            learning_rate_init=1e-3,
            shuffle=True,
            random_state=seed,
        )
        self._classes = np.arange(N_CLASSES)

    def epoch(self) -> dict:
        """One ``partial_fit`` pass over the training set; return its ``seconds``."""
        t0 = time.perf_counter()
        self.model.partial_fit(self.data.X_train, self.data.y_train, classes=self._classes)
        t1 = time.perf_counter()
        return {"seconds": t1 - t0, "inner_seconds": None, "loss": float(self.model.loss_)}

    def accuracy(self) -> float:
        """Accuracy on the held-out test split."""
        return float(np.mean(self.model.predict(self.data.X_test) == self.data.y_test))

    def device_memory(self) -> dict:
        """scikit-learn runs on the host only."""
        return {}
