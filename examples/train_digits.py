"""Train a small MLP on the handwritten digits bundled with pynn (a few seconds on a laptop).

    python examples/train_digits.py
"""
import numpy as np

import pynn
from pynn import datasets

# 1797 real 8x8 digit images ship inside the package: nothing to download.
(X_train, y_train), (X_test, y_test) = datasets.load_digits()
print(f"{len(X_train)} training and {len(X_test)} test images of {X_train.shape[1]} pixels")

# 64 inputs -> two ReLU hidden layers -> 10 class scores (softmax is fused into the loss).
model = pynn.Sequential([
    pynn.Dense(64, 128, activation="relu"),
    pynn.Dense(128, 64, activation="relu"),
    pynn.Dense(64, 10),
], seed=0)
print(model)

# Mini-batch SGD with momentum; the learning rate follows a cosine curve down to 0.
epochs = 40
history = model.fit(X_train, y_train, loss="cross_entropy",
                    optimizer=pynn.SGD(lr=pynn.optim.Cosine(0.05, epochs), momentum=0.9),
                    epochs=epochs, batch_size=32, validation_data=(X_test, y_test),
                    seed=0, verbose=0)
print(f"training loss: first epoch {history.history['loss'][0]:.3f}, "
      f"last {history.history['loss'][-1]:.3f}")

metrics = model.evaluate(X_test, y_test)
print(f"test loss {metrics['loss']:.4f}, test accuracy {metrics['accuracy']:.4f}")

# Predicted labels and class probabilities for the first five test images.
print("labels     ", y_test[:5])
print("predictions", model.predict(X_test[:5]))
print("confidence ", np.round(model.predict_proba(X_test[:5]).max(axis=1), 3))
