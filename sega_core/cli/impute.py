"""Missing feature values: an error naming the column and lines, or filled in by ``--impute``.

The fill values are fitted on the training part by ``sega train --impute mean|median`` and saved
in the model file's command-line metadata, so ``sega predict`` and ``sega evaluate`` fill the
same cells of new data with the same values.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ModelFileError
from .data import Table

#: ``--impute`` choices.
STRATEGIES = ("mean", "median")


def check_complete(table: Table, hint: str) -> None:
    """Raise naming the first feature column with missing values and their lines; ``hint``
    says what to do about them."""
    missing = np.isnan(table.X).reshape(len(table.X), -1)
    if not missing.any():
        return
    columns = np.flatnonzero(missing.any(axis=0))
    first = int(columns[0])
    others = f" (and {len(columns) - 1} more column{'s' if len(columns) > 2 else ''})" if len(columns) > 1 else ""
    raise InputError(
        f"{table.source!r}: feature column {table.feature_names[first]!r} has no value on "
        f"{table.where(np.flatnonzero(missing[:, first]))}{others}; {hint}"
    )


class Imputer:
    """One fill value per feature: the training part's mean or median of the values present."""

    def __init__(self, strategy: str, values) -> None:
        self.strategy = strategy
        self.values = np.asarray(values, dtype=np.float64)

    @classmethod
    def fit(cls, table: Table, strategy: str) -> "Imputer":
        """Fill values from ``table`` (the training part); a column with no value at all is an error."""
        if strategy not in STRATEGIES:
            raise InputError(f"--impute must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        flat = table.X.reshape(len(table.X), -1)
        empty = np.flatnonzero(np.isnan(flat).all(axis=0))
        if len(empty):
            raise InputError(f"{table.source!r}: feature column {table.feature_names[empty[0]]!r} has no value in the "
                             "training part, so there is nothing to impute it from; drop it or fill it in")
        reduce = np.nanmean if strategy == "mean" else np.nanmedian
        return cls(strategy, reduce(flat, axis=0))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``X`` with every missing (NaN) value replaced by its feature's fill value."""
        flat = X.reshape(len(X), -1)
        if flat.shape[1] != len(self.values):
            raise InputError(f"the data has {flat.shape[1]} features per sample, but the imputation was fitted on {len(self.values)}")
        filled = np.where(np.isnan(flat), self.values, flat)
        return filled.reshape(X.shape)

    def to_config(self) -> dict:
        """The JSON-able form saved in the model file."""
        return {"strategy": self.strategy, "values": self.values.tolist()}

    @classmethod
    def from_config(cls, config, path: str) -> "Imputer":
        """The inverse of :meth:`to_config`; a malformed entry is the file's fault."""
        try:
            imputer = cls(config["strategy"], config["values"])
        except (TypeError, KeyError, ValueError):
            imputer = None
        if imputer is None or imputer.strategy not in STRATEGIES or imputer.values.ndim != 1 \
                or not np.isfinite(imputer.values).all():
            raise ModelFileError(f"{path!r} has an invalid imputation entry in its command-line metadata; retrain the model")
        return imputer
