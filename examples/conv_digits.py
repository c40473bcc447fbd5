"""A small convolutional network on scikit-learn's 8x8 digits, seen as 1x8x8 images (NCHW).

Needs scikit-learn (pip install scikit-learn). Runs in about a second on a laptop CPU.
"""

import tempfile
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sega_core import Conv2D, Dense, Flatten, NeuralNetwork

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train = scaler.transform(X_train).reshape(-1, 1, 8, 8)
X_test = scaler.transform(X_test).reshape(-1, 1, 8, 8)

model = NeuralNetwork(
    [
        Conv2D(16, kernel_size=3, padding=1, activation="relu"),  # 16 x 8 x 8
        Flatten(),
        Dense(10),  # logits; softmax + cross-entropy are applied by the loss
    ],
    seed=0,
)
model.train(X_train, y_train, epochs=15, batch_size=32)
model.summary()
print({name: round(value, 4) for name, value in model.evaluate(X_test, y_test).items()})

# Save and load back (a pickle-free .npz), then check the copy agrees.
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "conv_digits.npz"
    model.save(path)
    again = NeuralNetwork.load(path)
    assert (again.predict(X_test) == model.predict(X_test)).all()
    print(f"saved and reloaded {path.name}: same predictions")
