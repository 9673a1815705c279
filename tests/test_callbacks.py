"""Keras' callbacks: ModelCheckpoint, ReduceLROnPlateau, CSVLogger, TerminateOnNaN, and monitors
checked before training."""
import csv

import numpy as np
import pytest

import pynn


def _setup(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = pynn.Sequential([pynn.Dense(5, 8, "relu"), pynn.Dense(8, 2)], seed=0)
    return model, X, y


def test_a_monitor_that_fit_never_logs_fails_before_training():
    for cb in (pynn.EarlyStopping(), pynn.ReduceLROnPlateau(),
               pynn.ModelCheckpoint("m.npz", save_best_only=True)):
        model, X, y = _setup()
        before = model.params.copy()
        with pytest.raises(ValueError, match="val_loss.*validation_data"):
            model.fit(X, y, loss="cross_entropy", epochs=2, callbacks=[cb])
        assert model.epochs_trained == 0 and np.array_equal(model.params, before)
    model, X, y = _setup()
    with pytest.raises(ValueError, match="'accuracy'"):
        model.fit(X, X[:, :2], loss="mse", callbacks=[pynn.EarlyStopping("accuracy")])


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    model, X, y = _setup()
    every = pynn.ModelCheckpoint(tmp_path / "e{epoch:02d}-{loss:.3f}.npz")
    best = pynn.ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    seen = []

    class Record(pynn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], self.model.params.copy()))

    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(0.5), epochs=4,
                  validation_split=0.25, callbacks=[every, best, Record()])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.npz"] + [f"e{e:02d}-{loss:.3f}.npz"
                                     for e, loss in zip(range(1, 5), h.history["loss"])]
    _, best_params = min(seen, key=lambda item: item[0])
    assert pynn.load(tmp_path / "best.npz").params.tobytes() == best_params.tobytes()
    with pytest.raises(ValueError, match="cannot fill in"):
        model.fit(X, y, epochs=1, callbacks=[pynn.ModelCheckpoint(tmp_path / "{nope}.npz")])


def test_reduce_lr_on_plateau_follows_keras():
    model, X, y = _setup()
    logs = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.4, 0.45, 0.46, 0.47])
    opt = pynn.SGD(0.1)

    class FakeValLoss(pynn.Callback):  # runs first: the watched value is scripted
        def on_epoch_end(self, epoch, logs_=None):
            logs_["score"] = next(logs)

    rates = []

    class Rate(pynn.Callback):
        def on_epoch_end(self, epoch, logs_=None):
            rates.append(self.model.optimizer.lr)

    plateau = pynn.ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.02,
                                     min_delta=0.0)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=9,
              callbacks=[FakeValLoss(), plateau, Rate()])
    # epochs 3-4 do not improve on 0.5: halve after epoch 4; 0.4 improves; 0.45, 0.46 do not
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025])
    with pytest.raises(TypeError, match="schedule"):
        model.fit(X, y, optimizer=pynn.SGD(pynn.Cosine(0.1, 3)), epochs=1,
                  callbacks=[pynn.ReduceLROnPlateau("loss")])
    with pytest.raises(ValueError, match="factor"):
        pynn.ReduceLROnPlateau(factor=1.5)


def test_csv_logger_writes_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    model, X, y = _setup()
    h = model.fit(X, y, loss="cross_entropy", epochs=2, callbacks=[pynn.CSVLogger(path)])
    model.fit(X, y, epochs=1, callbacks=[pynn.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "loss", "lr"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert float(rows[1][2]) == pytest.approx(h.history["loss"][0])


def test_terminate_on_nan_stops_cleanly():
    model, X, y = _setup()
    h = model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(1e300), epochs=3,
                  batch_size=8, callbacks=[pynn.TerminateOnNaN()])
    assert h.stopped_early and np.isfinite(model.params).all()
    with pytest.raises(pynn.TrainingDivergedError):
        model.fit(X, y, optimizer=pynn.SGD(1e300), epochs=3, batch_size=8)
