"""Regression: fit a noisy 1-D curve with a tanh MLP and the mean squared error loss.

    python examples/regression.py
"""
import numpy as np

import pynn
from pynn import datasets

rng = np.random.default_rng(0)
x = rng.uniform(-3, 3, size=(2000, 1))
y = np.sin(2 * x) + 0.3 * x + rng.normal(0, 0.1, size=x.shape)   # noise variance 0.01
(x_train, y_train), (x_test, y_test) = datasets.train_val_split(x, y, 0.25, seed=0,
                                                                 stratify=False)

# Standardise inputs and targets with training statistics only, as for any real data set.
x_train_s, x_test_s, x_scaler = datasets.standardize(x_train, x_test)
y_train_s, _, y_scaler = datasets.standardize(y_train)

# An identity output layer: the model predicts values, not classes.
model = pynn.Sequential([
    pynn.Dense(1, 64, activation="tanh"),
    pynn.Dense(64, 64, activation="tanh"),
    pynn.Dense(64, 1),
], seed=0, dtype="float64")
epochs = 300
model.fit(x_train_s, y_train_s, loss="mse", optimizer=pynn.Adam(lr=pynn.Cosine(1e-2, epochs)),
          epochs=epochs, batch_size=64, seed=0, verbose=0)

prediction = y_scaler.inverse_transform(model.predict(x_test_s).reshape(-1, 1))
mse = float(np.mean((prediction - y_test) ** 2))
# the best a straight line can do, for comparison
A = np.hstack([x_train, np.ones_like(x_train)])
coef = np.linalg.lstsq(A, y_train, rcond=None)[0]
line_mse = float(np.mean((np.hstack([x_test, np.ones_like(x_test)]) @ coef - y_test) ** 2))
print(f"test MSE: MLP {mse:.4f}, straight line {line_mse:.4f}, noise floor 0.0100")
for xi, yi, pi in zip(x_test[:5, 0], y_test[:5, 0], prediction[:5, 0]):
    print(f"x = {xi:+.2f}   y = {yi:+.3f}   predicted {pi:+.3f}")
