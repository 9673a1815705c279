"""Learning-rate schedules per step, with linear warm-up (against PyTorch's LambdaLR)."""
import math

import numpy as np
import pytest

import pynn

Cosine, StepDecay, Warmup = pynn.optim.Cosine, pynn.optim.StepDecay, pynn.optim.Warmup



def test_warmup_values():
    w = Warmup(0.1, steps=4)
    assert [w(t) for t in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    w = Warmup(Cosine(0.1, epochs=10, per="step"), steps=2, start=0.5)
    assert w(0) == pytest.approx(0.1 * 0.75)
    assert w(5) == pytest.approx(0.05 * (1 + math.cos(math.pi * 5 / 10)))
    with pytest.raises(ValueError, match="per='step'"):
        Warmup(Cosine(0.1, epochs=3), steps=2)
    with pytest.raises(ValueError, match="per"):
        StepDecay(0.1, 2, per="batch")


@pytest.mark.parametrize("schedule", [lambda: Warmup(0.2, steps=5),
                                      lambda: StepDecay(0.2, step_size=3, gamma=0.5,
                                                        per="step"),
                                      lambda: Warmup(Cosine(0.2, 20, per="step"), steps=4)])
def test_per_step_schedules_drive_every_update_like_torch(schedule):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    model = pynn.Sequential([pynn.Dense(5, 3)], seed=0, dtype="float64")
    sched = schedule()
    model.fit(X, y, loss="cross_entropy", optimizer=pynn.SGD(sched), epochs=3, batch_size=8,
              shuffle=False)
    W0 = pynn.Sequential([pynn.Dense(5, 3)], seed=0, dtype="float64").get_weights()
    layer = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W0[0].T))
        layer.bias.copy_(torch.from_numpy(W0[1]))
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    lr_of = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: sched(step))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(3):
        for start in range(0, 40, 8):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(layer(Xt[start:start + 8]),
                                              yt[start:start + 8]).backward()
            opt.step()
            lr_of.step()
    np.testing.assert_allclose(model.layers[0].W, layer.weight.detach().numpy().T, rtol=1e-12)


def test_per_step_schedules_save_and_load(tmp_path):
    model = pynn.Sequential([pynn.Dense(3, 2)], seed=0)
    model.compile(loss="cross_entropy",
                  optimizer=pynn.SGD(Warmup(Cosine(0.1, 100, per="step"), steps=10)))
    pynn.save(model, tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    assert loaded.optimizer.lr == model.optimizer.lr
    assert loaded.optimizer.per_step
