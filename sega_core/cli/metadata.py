"""What ``sega train`` writes into a model file besides the model: how to find its data in files.

The model itself holds everything that turns raw features into predictions (its Normalization
statistics, class labels and target scaling), so a model loaded from Python predicts exactly
as ``sega predict`` does. The command line keeps only what is about files, in
``extra_config["cli"]``: the feature columns' names and order, the target column, the dataset
and split (for ``sega evaluate``), and the imputation values if ``--impute`` was given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError, ModelFileError
from .csvfile import is_number
from .data import Table
from .impute import Imputer, check_complete

#: Version of the ``extra_config["cli"]`` section. Version 1 held the feature scaling and the
#: class names, which models now hold themselves; such files must be retrained.
CLI_META_VERSION = 2


@dataclass
class CliMetadata:
    """The file-related facts ``sega train`` saves with a model (see the module's docstring)."""

    feature_names: list[str]
    target_name: str | None
    dataset: str | None = None
    split: dict = field(default_factory=dict)
    imputation: dict | None = None

    def to_config(self) -> dict:
        """The JSON-able form stored in the model file."""
        return {"version": CLI_META_VERSION, **asdict(self)}

    @classmethod
    def from_model(cls, model, path: str) -> "CliMetadata":
        """The metadata saved by ``sega train``, or an empty one for a model saved from Python."""
        meta = (getattr(model, "extra_config", None) or {}).get("cli")
        if meta is None:
            return cls(feature_names=[], target_name=None)
        version = meta.get("version") if isinstance(meta, dict) else None
        if isinstance(version, int) and version < CLI_META_VERSION:
            raise ModelFileError(
                f"{path!r} was written by an older sega train (command-line metadata version {version}), whose models "
                "only the command line could use; train it again with this version's sega train"
            )
        if version != CLI_META_VERSION:
            raise ModelFileError(
                f"{path!r} holds command-line metadata of version {version!r}; this sega reads version "
                f"{CLI_META_VERSION} (upgrade sega, or train the model again)"
            )
        try:
            return cls(**{k: v for k, v in meta.items() if k != "version"})
        except TypeError as exc:
            raise ModelFileError(f"{path!r} has invalid command-line metadata ({exc}); train the model again") from None

    def imputer(self, path: str) -> Imputer | None:
        """The saved imputation, or None when the model was trained without ``--impute``."""
        return None if self.imputation is None else Imputer.from_config(self.imputation, path)


def model_inputs(model, meta: CliMetadata, table: Table, path: str) -> np.ndarray:
    """``table``'s features as the model takes them: missing values filled as in training (or an
    error naming them), samples shaped as the model's input."""
    imputer = meta.imputer(path)
    if imputer is None:
        check_complete(table, "fill them in (the model was trained without --impute, so it cannot fill them)")
        X = table.X
    else:
        X = imputer.apply(table.X)
    n, want = int(np.prod(X.shape[1:])), int(np.prod(model.input_shape))
    if n != want:
        raise InputError(f"{table.source!r} has {n} features per sample, but the model was trained on {want}")
    # Same values, another layout (a CSV of flat pixels for a model trained on an .npz of images).
    return X.reshape((len(X), *model.input_shape))


def model_targets(model, table: Table) -> np.ndarray:
    """``table``'s target as the model was trained on it: values, or labels of the model's type,
    each checked against the model's classes with the line it is on."""
    y = table.y
    if model.regressor:
        if y.dtype.kind not in "biuf":
            example = next(v for v in y if not is_number(v))
            raise InputError(f"{table.source!r}: the target {table.target_name!r} holds text such as {str(example)!r}; "
                             "this model is a regressor and needs numbers")
        return y.astype(np.float64)
    classes = model.classes_
    if classes is None:
        return y
    if classes.dtype.kind in "OUS":
        # Text classes: compare the cells as written ("1" stays "1", not 1.0).
        labels = table.y_cells if table.y_cells is not None else y.astype(str)
    elif y.dtype.kind in "biuf":
        labels = y
    else:
        labels = np.array([float(v) if is_number(v) else np.nan for v in y])
    known = np.isin(labels, classes)
    if not known.all():
        rows = np.flatnonzero(~known)
        shown = table.y_cells[rows[0]] if table.y_cells is not None else y[rows[0]]
        raise InputError(
            f"{table.source!r}: the target {table.target_name!r} holds the label {str(shown)!r} on {table.where(rows)}, "
            f"which the model never saw in training (its classes: {', '.join(map(str, classes.tolist()))})"
        )
    return labels.astype(classes.dtype) if classes.dtype.kind in "biu" else labels
