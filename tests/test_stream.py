"""fit on an iterable of batches (Keras' generators and steps_per_epoch)."""
import numpy as np
import pytest

import pynn


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, (X[:, 0] > 0).astype(int)


def _model():
    return pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dense(8, 2)], seed=0)


def test_batches_from_a_list_train_like_the_arrays():
    X, y = _data()
    batches = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 96, 16)]
    a, b = _model(), _model()
    ha = a.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9), epochs=3,
               batch_size=16, shuffle=False, validation_data=(X[:32], y[:32]))
    hb = b.fit(batches, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9),
               epochs=3, validation_data=batches[:2])
    assert a.params.tobytes() == b.params.tobytes()
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(hb.history["val_loss"], ha.history["val_loss"], rtol=1e-6)


def test_a_generator_with_steps_per_epoch_and_an_unbuilt_model():
    X, y = _data()

    def forever():
        while True:
            for i in range(0, 96, 32):
                yield X[i:i + 32], y[i:i + 32], np.ones(min(32, 96 - i))

    model = pynn.Sequential([pynn.Dense(8, activation="relu"), pynn.Dense(2)], seed=0)
    h = model.fit(forever(), loss="cross_entropy", epochs=4, steps_per_epoch=3,
                  metrics=["f1"])
    assert model.built and len(h.history["loss"]) == 4 and "f1" in h.history
    with pytest.raises(ValueError, match="one-pass iterator"):
        model.fit(iter([(X, y)]), epochs=2)
    with pytest.raises(ValueError, match="ran out after 1 batches"):
        model.fit(iter([(X, y)]), epochs=1, steps_per_epoch=2)


def test_a_bad_batch_mid_epoch_names_it_and_keeps_the_last_step():
    X, y = _data()
    seen = []

    def batches():
        yield X[:32], y[:32]
        seen.append(model.params.copy())
        yield X[32:64, :4], y[32:64]   # wrong width

    model = _model()
    with pytest.raises(ValueError, match="X of batch 1 of epoch 1"):
        model.fit(batches(), loss="cross_entropy", epochs=1)
    np.testing.assert_array_equal(model.params, seen[0])
    with pytest.raises(TypeError, match="batch 0 of epoch 1: expected a tuple"):
        model.fit([X], loss="cross_entropy")
    with pytest.raises(TypeError, match="needs y"):
        model.fit(X, loss="cross_entropy")
