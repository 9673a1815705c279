"""Fashion-MNIST with the command line's recipe (about 0.90 test accuracy in under a minute).

Needs the data set: `apt-get install dataset-fashion-mnist` (or set PYNN_DATA to a directory
holding the four IDX files). Optional: `pip install matplotlib` to draw the learning curves.

    python examples/fashion_mnist.py [--plot curves.png]
"""
import sys
import time

import pynn
from pynn import datasets

(X_train, y_train), (X_test, y_test) = datasets.load_fashion_mnist()
# Hold out 10% of the training images to watch for overfitting; the test set stays untouched.
(X_fit, y_fit), (X_val, y_val) = datasets.train_val_split(X_train, y_train, 0.1, seed=0)

model = pynn.Sequential([
    pynn.Dense(784, 256, activation="relu"),
    pynn.Dense(256, 128, activation="relu"),
    pynn.Dense(128, 10),
], seed=0, dtype="float32")
model.summary()

# Adam with a cosine learning-rate schedule: `python -m pynn train --data fashion-mnist`'s recipe.
epochs = 20
optimizer = pynn.Adam(lr=pynn.Cosine(1e-3, epochs))
start = time.perf_counter()
history = model.fit(X_fit, y_fit, loss="cross_entropy", optimizer=optimizer, epochs=epochs,
                    batch_size=128, validation_data=(X_val, y_val), seed=0, verbose=1)
print(f"trained in {time.perf_counter() - start:.1f} s")
for epoch, (loss, acc) in enumerate(zip(history.history["val_loss"],
                                        history.history["val_accuracy"]), start=1):
    print(f"epoch {epoch:2d}  validation loss {loss:.4f}  accuracy {acc:.4f}")

print(f"test accuracy {model.evaluate(X_test, y_test)['accuracy']:.4f}")
for index in range(3):
    guess = datasets.FASHION_MNIST_CLASSES[model.predict(X_test[index:index + 1])[0]]
    truth = datasets.FASHION_MNIST_CLASSES[y_test[index]]
    print(f"test image {index}: predicted {guess!r}, true {truth!r}")

pynn.save(model, "fashion_mnist_model.npz")
print("saved fashion_mnist_model.npz; evaluate it again with:\n"
      "  python -m pynn evaluate --model fashion_mnist_model.npz --data fashion-mnist")
if "--plot" in sys.argv:
    path = sys.argv[sys.argv.index("--plot") + 1]
    history.plot(path)
    print(f"learning curves in {path}")
