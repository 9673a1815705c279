"""Train a small MLP on the handwritten digits bundled with pynn (a few seconds on a laptop).

    python examples/train_digits.py
"""
import numpy as np

import pynn
from pynn import datasets

# 1797 real 8x8 digit images ship inside the package: nothing to download.
(X_train, y_train), (X_test, y_test) = datasets.load_digits()
print(f"{len(X_train)} training and {len(X_test)} test images of {X_train.shape[1]} pixels")

# 64 inputs -> 512 ReLU units -> 10 class scores (softmax is fused into the loss).
model = pynn.Sequential([
    pynn.Dense(64, 512, activation="relu"),
    pynn.Dense(512, 10),
], seed=0)
print(model)

# Mini-batch SGD with momentum and a little weight decay; the learning rate follows a cosine
# curve down to 0 (this is `python -m pynn train`'s default recipe).
epochs = 40
optimizer = pynn.SGD(lr=pynn.Cosine(0.1, epochs), momentum=0.9, weight_decay=5e-4)
history = model.fit(X_train, y_train, loss="cross_entropy", optimizer=optimizer,
                    epochs=epochs, batch_size=32, seed=0, verbose=0)
print(f"training loss: first epoch {history.history['loss'][0]:.3f}, "
      f"last {history.history['loss'][-1]:.3f}")

metrics = model.evaluate(X_test, y_test)
print(f"test loss {metrics['loss']:.4f}, test accuracy {metrics['accuracy']:.4f}")

# Predicted labels and class probabilities for the first five test images.
print("labels     ", y_test[:5])
print("predictions", model.predict(X_test[:5]))
print("confidence ", np.round(model.predict_proba(X_test[:5]).max(axis=1), 3))
