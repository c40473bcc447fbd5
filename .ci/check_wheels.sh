#!/usr/bin/env bash
# Build all four distributions and prove that the extras resolve to the sibling wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

uv build --all-packages --out-dir "$work/dist" >/dev/null 2>&1 || uv build --all-packages --out-dir "$work/dist"
ls "$work/dist"
for dist in sega_core sega_backend_numpy sega_backend_numba sega_backend_cupy; do
  ls "$work/dist/${dist}"-*.whl >/dev/null
done

# Third-party requirements come from PyPI; our own four only from the freshly built wheels,
# so the extra's "sega-backend-numpy>=0.1,<0.2" must resolve to the sibling wheel.
uv venv --quiet --python python3 "$work/with-numpy"
uv pip install --quiet --python "$work/with-numpy/bin/python" numpy pluggy
uv pip install --python "$work/with-numpy/bin/python" --no-index --find-links "$work/dist" "sega-core[numpy]"
(cd "$work" && "$work/with-numpy/bin/python" - <<'PY'
import numpy as np
from sega_core import NeuralNetwork, list_backends
names = [b["name"] for b in list_backends() if b["status"] == "ok"]
assert names == ["numpy"], names
rng = np.random.default_rng(0)
X = rng.normal(size=(400, 4)).astype("float32")
y = (X[:, 0] + X[:, 1] > 0).astype(int)
model = NeuralNetwork([4, 8, 2], seed=0)
model.train(X, y, epochs=30, batch_size=32, progress=False)
acc = model.evaluate(X, y)["accuracy"]
print(f"trained from the wheels: accuracy {acc:.3f}")
assert acc > 0.9
PY
)
"$work/with-numpy/bin/sega" backends

# sega-core alone: a clear message, not a traceback from deep inside.
uv venv --quiet --python python3 "$work/core-only"
uv pip install --quiet --python "$work/core-only/bin/python" numpy pluggy
uv pip install --quiet --python "$work/core-only/bin/python" --no-index --find-links "$work/dist" sega-core
(cd "$work" && "$work/core-only/bin/python" - <<'PY'
from sega_core import NeuralNetwork, NoBackendInstalledError
try:
    NeuralNetwork([4, 2])
except NoBackendInstalledError as exc:
    message = str(exc)
else:
    raise SystemExit("sega-core alone trained a model without any backend?")
print("sega-core alone says:", message)
assert 'install one with pip install "sega-core[numpy]"' in message
PY
)
set +e
out=$("$work/core-only/bin/sega" train 2>&1); code=$?
set -e
echo "sega train without a backend -> exit $code: $out"
[ "$code" -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && printf '%s' "$out" | grep -q 'no backend installed'
echo "packaging check passed"
