"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

from ..errors import SegaError
from .atomic import atomic_path


def plot_history(history: dict, path) -> None:
    """Plot loss (and the metric, with validation curves) per epoch to ``path`` as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SegaError('plotting needs matplotlib; install it with pip install "sega-core[plot]"') from None
    panels = [k for k in history if not k.startswith("val_") and k != "lr" and history[k]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, key in zip(axes[0], panels):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], label=f"train {key}")
        if history.get("val_" + key):
            ax.plot(range(1, len(history["val_" + key]) + 1), history["val_" + key], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
