"""Tuning a sega network with scikit-learn: a ``Pipeline`` (scaling, then a ``SegaClassifier``)
searched by ``GridSearchCV`` with 3-fold cross-validation on scikit-learn's wine data (178 wines,
13 chemical measurements, 3 cultivars), then scored on a held-out quarter.

The estimators follow scikit-learn's contract (they pass ``check_estimator``), so they clone,
take ``set_params``, pickle, and work with every model-selection tool.

Needs ``pip install "sega-core[numpy,sklearn]"``.
"""

from sklearn.datasets import load_wine
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sega_core.estimators import SegaClassifier

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

pipe = make_pipeline(StandardScaler(), SegaClassifier(epochs=60, batch_size=16, random_state=0))
grid = {
    "segaclassifier__hidden_layer_sizes": [(8,), (32,)],
    "segaclassifier__lr": [1e-3, 1e-2],
    "segaclassifier__reg_lambda": [0.0, 0.01],
}
search = GridSearchCV(pipe, grid, cv=3)  # n_jobs=-1 runs the 24 fits in parallel processes
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated accuracy {search.best_score_:.3f}")
for params, mean in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"  {mean:.3f}  {params}")
test_accuracy = search.score(X_test, y_test)  # the best pipeline, refitted on all the training data
print(f"test accuracy {test_accuracy:.3f}")
assert test_accuracy >= 0.93, test_accuracy
