"""The command line on the user's own files: CSV / .npz / .npy in, classification and regression,
predict and evaluate with the saved preprocessing, and every bad file or option value as exit
status 2 with one line (no traceback)."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pynn.cli.main import main
from pynn.cli.tabular import read_table, split

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sklearn_csv(path, loader, *, names=True, delimiter=","):
    data = loader()
    y = np.array(data.target_names)[data.target] if names else data.target
    header = [f.replace(" ", "_") for f in data.feature_names] + ["target"]
    rows = [[repr(float(v)) for v in x] + [t] for x, t in zip(data.data, y)]
    return write_csv(path, header, rows, delimiter)


def scores(out):
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("test", "training") and parts[1] != "samples":
            try:
                found[parts[1]] = float(parts[2])
            except ValueError:
                pass
    return found


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---- the target data sets: accuracy of scikit-learn's estimator on the same split ---------------

def reference_score(path, seed=0, regression=False):
    """pynn.sklearn's MLP on the CLI's split (stratified, 20% test) and scaling."""
    from pynn.sklearn import MLPClassifier, MLPRegressor

    table = read_table(str(path))
    kept, held = split(len(table.y) if regression else table.y, 0.2, seed, not regression)
    mean, std = table.X[kept].mean(0), table.X[kept].std(0)
    X_train, X_test = (table.X[kept] - mean) / std, (table.X[held] - mean) / std
    if regression:
        y_mean, y_std = table.y[kept].mean(), table.y[kept].std()
        est = MLPRegressor(random_state=seed, max_iter=500)
        est.fit(X_train, (table.y[kept] - y_mean) / y_std)
        return est.score(X_test, (table.y[held] - y_mean) / y_std)
    return MLPClassifier(random_state=seed).fit(X_train, table.y[kept]).score(X_test,
                                                                             table.y[held])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("loader, delimiter", [("load_wine", ","),
                                               ("load_breast_cancer", ";")])
def test_csv_with_class_names_reaches_the_estimators_accuracy(capsys, tmp_path, loader,
                                                              delimiter):
    path = sklearn_csv(tmp_path / "data.csv", getattr(sklearn_datasets, loader),
                       delimiter=delimiter)
    code, out, err = run_cli(capsys, "train", "--data", path, "-q", "--save",
                             tmp_path / "m.npz")
    assert code == 0, err
    accuracy = scores(out)["accuracy"]
    assert accuracy >= reference_score(path) - 0.06
    assert accuracy >= 0.9

    # predict writes the original class names; --proba one column per class, named by label
    code, out, err = run_cli(capsys, "predict", "--model", tmp_path / "m.npz", "--data", path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction"
    data = getattr(sklearn_datasets, loader)()
    truth = np.array(data.target_names)[data.target]
    predicted = np.array(lines[1:])
    assert set(predicted) <= set(data.target_names)
    assert np.mean(predicted == truth) > 0.9
    out_path = tmp_path / "proba.csv"
    code, _, err = run_cli(capsys, "predict", "--model", tmp_path / "m.npz", "--data", path,
                           "--proba", "--out", out_path)
    assert code == 0, err
    with open(out_path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == [str(c) for c in sorted(data.target_names)]
    proba = np.array(rows[1:], dtype=float)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    classes = np.array(rows[0])
    assert (classes[proba.argmax(axis=1)] == predicted).all()

    # evaluate on the file scores with the saved scaling
    code, out, err = run_cli(capsys, "evaluate", "--model", tmp_path / "m.npz", "--data", path)
    assert code == 0, err
    assert "accuracy" in out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_regression_csv_reports_r2_and_rmse_in_target_units(capsys, tmp_path):
    path = sklearn_csv(tmp_path / "diabetes.csv", sklearn_datasets.load_diabetes, names=False)
    code, out, err = run_cli(capsys, "train", "--data", path, "-q", "--save", tmp_path / "r.npz")
    assert code == 0, err
    assert "regression" in out
    found = scores(out)
    assert found["R2"] >= max(0.35, reference_score(path, regression=True) - 0.1)
    # RMSE in the target's units (diabetes progression has a spread of about 77)
    assert 35 < found["RMSE"] < 77
    code, out, err = run_cli(capsys, "predict", "--model", tmp_path / "r.npz", "--data", path)
    assert code == 0, err
    predictions = np.array(out.splitlines()[1:], dtype=float)
    target = sklearn_datasets.load_diabetes().target
    assert predictions.shape == target.shape
    assert abs(predictions.mean() - target.mean()) < 20  # in the original units, not scaled


def test_regression_losses_and_poisson_counts(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    counts = rng.poisson(np.exp(0.8 * X[:, 0] + 1.0))
    path = tmp_path / "counts.csv"
    with open(path, "w") as f:
        f.write("a,b,c,count\n")
        for row, c in zip(X, counts):
            f.write(",".join(f"{v:.5f}" for v in row) + f",{c:.1f}\n")
    for loss in ("mae", "huber", "poisson"):
        code, out, err = run_cli(capsys, "train", "--data", path, "-q", "--loss", loss,
                                 "--save", tmp_path / f"{loss}.npz")
        assert code == 0, err
        assert f", {loss}, float32" in out
        assert scores(out)["R2"] > 0.5, (loss, out)
    # poisson keeps the counts in their own units and predicts rates >= 0
    code, out, err = run_cli(capsys, "predict", "--model", tmp_path / "poisson.npz", "--data",
                             path)
    assert code == 0, err
    rates = np.array(out.splitlines()[1:], dtype=float)
    assert (rates > 0).all() and abs(rates.mean() - counts.mean()) < 0.5
    negative = tmp_path / "negative.csv"
    negative.write_text("a,y\n1,2.5\n2,-1.5\n3,0.5\n4,1.5\n5,2.0\n")
    code, _, err = run_cli(capsys, "train", "--data", negative, "--loss", "poisson")
    assert code == 2 and "--loss poisson needs counts or rates >= 0" in err
    code, _, err = run_cli(capsys, "train", "--data", path, "--loss", "hinge")
    assert code == 2 and "is a regression target; use one of mse, mae, huber, poisson" in err


def test_task_override_and_integer_targets_are_classes(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(int) + 5  # integer labels 5 and 6 -> classification
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"],
                     [[*map(str, x), int(t)] for x, t in zip(X, y)])
    code, out, err = run_cli(capsys, "train", "--data", path, "-q", "--epochs", "30",
                             "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "2 classes" in out
    code, out, err = run_cli(capsys, "predict", "--model", tmp_path / "m.npz", "--data", path)
    assert set(out.splitlines()[1:]) <= {"5", "6"}
    code, out, err = run_cli(capsys, "train", "--data", path, "-q", "--epochs", "3",
                             "--task", "regression")
    assert code == 0, err
    assert "regression" in out


def test_target_by_name_npz_and_npy_pairs(capsys, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    y = np.where(X[:, 1] > 0, "yes", "no")
    path = write_csv(tmp_path / "d.csv", ["answer", "a", "b", "c", "d"],
                     [[t, *map(str, x)] for x, t in zip(X, y)])
    code, out, err = run_cli(capsys, "train", "--data", path, "--target", "answer", "-q",
                             "--epochs", "5")
    assert code == 0, err
    assert "4 features, 2 classes" in out

    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 1] > 0).astype(np.int64))
    code, out, err = run_cli(capsys, "train", "--data", tmp_path / "d.npz", "-q", "--epochs",
                             "5", "--save", tmp_path / "m.npz")
    assert code == 0, err
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", X[:, 0] * 3.0)
    code, out, err = run_cli(capsys, "train", "--data", tmp_path / "X.npy", "--target-file",
                             tmp_path / "y.npy", "-q", "--epochs", "5")
    assert code == 0, err
    assert "regression" in out
    code, out, err = run_cli(capsys, "predict", "--model", tmp_path / "m.npz", "--data",
                             tmp_path / "X.npy")
    assert code == 0, err
    assert len(out.splitlines()) == 81


def test_predict_reads_columns_by_name_without_the_target(capsys, tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 2] > 0, "up", "down")
    train = write_csv(tmp_path / "train.csv", ["a", "b", "c", "dir"],
                      [[*map(str, x), t] for x, t in zip(X, y)])
    code, _, err = run_cli(capsys, "train", "--data", train, "-q", "--epochs", "40",
                           "--save", tmp_path / "m.npz")
    assert code == 0, err
    # the columns in another order, no target column
    new = write_csv(tmp_path / "new.csv", ["c", "a", "b"],
                    [[str(x[2]), str(x[0]), str(x[1])] for x in X])
    code, out, err = run_cli(capsys, "predict", "--model", tmp_path / "m.npz", "--data", new)
    assert code == 0, err
    assert np.mean(np.array(out.splitlines()[1:]) == y) > 0.9


# ---- bad files: exit status 2, one line naming the file and where -----------------------------

BAD_FILES = {
    "missing value": (["a", "b", "y"], [["1", "2", "x"], ["3", "", "y"], ["4", "5", "x"]],
                      ["row 3", "'b'", "missing"]),
    "non-numeric feature": (["a", "b", "y"], [["1", "2", "x"], ["3", "red", "y"]],
                            ["row 3", "'b'", "not a number"]),
    "ragged": (["a", "b", "y"], [["1", "2", "x"], ["3", "y"]], ["row 3", "2 fields"]),
    "header only": (["a", "b", "y"], [], ["no data rows"]),
    "one class": (["a", "y"], [["1", "x"], ["2", "x"], ["3", "x"]], ["one class"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_csv_is_one_line_exit_2(capsys, tmp_path, case):
    header, rows, fragments = BAD_FILES[case]
    path = write_csv(tmp_path / "bad.csv", header, rows)
    code, _, err = run_cli(capsys, "train", "--data", path, "-q")
    assert_one_line_error(code, err, str(path), *fragments)


def test_empty_file_missing_target_and_binary_file(capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = run_cli(capsys, "train", "--data", empty)
    assert_one_line_error(code, err, "empty")
    path = write_csv(tmp_path / "d.csv", ["a", "b"], [["1", "2"], ["3", "4"]])
    code, _, err = run_cli(capsys, "train", "--data", path, "--target", "nope")
    assert_one_line_error(code, err, "no column 'nope'")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    code, _, err = run_cli(capsys, "train", "--data", binary)
    assert_one_line_error(code, err, str(binary))
    np.save(tmp_path / "X.npy", np.zeros((5, 2)))
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "X.npy")
    assert_one_line_error(code, err, "no targets")


def test_model_and_file_of_different_widths(capsys, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"],
                     [[*map(str, x), int(x[0] > 0)] for x in X])
    code, _, err = run_cli(capsys, "train", "--data", path, "-q", "--epochs", "2", "--save",
                           tmp_path / "m.npz")
    assert code == 0, err
    other = write_csv(tmp_path / "o.csv", ["p", "q", "y"], [["1", "2", "0"], ["2", "3", "1"]])
    for command in ("predict", "evaluate"):
        code, _, err = run_cli(capsys, command, "--model", tmp_path / "m.npz", "--data", other)
        assert_one_line_error(code, err, "3 features", "2 features")


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(np.array(array.shape, dtype=">u4").tobytes())
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("case, fragment", [
    ("no pixels", "no pixels"), ("one class", "one class"),
    ("different sizes", "both splits must have images of one size"),
    ("no images", "no images")])
def test_bad_idx_directories(capsys, tmp_path, case, fragment):
    rng = np.random.default_rng(0)
    shapes = {"no pixels": ((5, 0, 0), (3, 0, 0)), "one class": ((20, 4, 4), (5, 4, 4)),
              "different sizes": ((20, 4, 4), (5, 3, 3)), "no images": ((0, 4, 4), (0, 4, 4))}
    for part, shape in zip(("train", "t10k"), shapes[case]):
        labels = np.zeros(shape[0]) if case == "one class" else np.arange(shape[0]) % 3
        write_idx(tmp_path / f"{part}-images-idx3-ubyte", rng.integers(0, 255, shape))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", labels)
    code, _, err = run_cli(capsys, "train", "--data", tmp_path, "-q")
    assert_one_line_error(code, err, fragment)


@pytest.mark.parametrize("argv, fragment", [
    (["--val-split", "0.999"], "leaves 1 of the 1438"),
    (["--val-split", "0.0001"], "holds out less than one"),
    (["--test-split", "0.2"], "digits comes with its own test split"),
    (["--hidden", "3000000000"], "--hidden 3000000000"),
    (["--save", "/tmp/" + "m" * 300 + ".npz"], "the file name is"),
])
def test_option_values_that_cannot_work(capsys, argv, fragment):
    code, _, err = run_cli(capsys, "train", "-q", *argv)
    assert code == 2
    assert "Traceback" not in err
    assert fragment in err.strip().splitlines()[-1]


def test_seed_version_and_threads(capsys):
    code, _, err = run_cli(capsys, "train", "--seed", "-1")
    assert code == 2 and "--seed" in err and "Traceback" not in err
    code, out, _ = run_cli(capsys, "--version")
    import pynn
    assert code == 0 and out.strip() == f"pynn {pynn.__version__}"
    code, out, _ = run_cli(capsys, "train", "--help")
    text = " ".join(out.split())
    assert "OMP_NUM_THREADS" in text or "number of cores" in text


# ---- what a newcomer met -------------------------------------------------------------------------

def test_divergence_is_one_line_exit_1(capsys):
    code, out, err = run_cli(capsys, "train", "--lr", "1e30", "-q")
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "diverged in epoch 1, batch" in lines[0] and "1e+30" in lines[0]
    assert "smaller --lr" in lines[0]


def test_absurd_final_loss_is_warned(capsys):
    code, out, err = run_cli(capsys, "train", "--lr", "100", "-q", "--epochs", "3")
    if code == 1:  # diverged outright on this machine's rounding: also a clear line
        assert "diverged" in err
        return
    assert code == 0
    assert "warning" in err and "--lr" in err


def test_saved_model_and_predictions_follow_the_umask(capsys, tmp_path):
    old = os.umask(0o022)
    try:
        code, _, err = run_cli(capsys, "train", "-q", "--epochs", "1", "--save",
                               tmp_path / "m.npz")
        assert code == 0, err
        assert (os.stat(tmp_path / "m.npz").st_mode & 0o777) == 0o644
        code, _, err = run_cli(capsys, "predict", "--model", tmp_path / "m.npz", "--data",
                               "digits", "--out", tmp_path / "p.csv")
        assert code == 0, err
        assert (os.stat(tmp_path / "p.csv").st_mode & 0o777) == 0o644
    finally:
        os.umask(old)


def test_plural_and_epoch_count():
    from pynn.cli.commands import plural

    assert plural(1, "thread") == "1 thread" and plural(2, "epoch") == "2 epochs"
    assert plural(0, "epoch") == "0 epochs"


def test_ctrl_c_reports_the_epochs_really_trained(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "pynn", "train", "--epochs", "100000",
                              "--batch-size", "1", "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    line = child.stdout.readline()
    while line and not line.startswith("training"):
        line = child.stdout.readline()
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    trained = [line for line in out.splitlines() if line.startswith("trained")]
    assert trained, out
    epochs = int(trained[0].split()[1])
    assert epochs < 1000 and "interrupted" in trained[0]


def test_long_runs_are_announced_with_an_estimate(capsys, monkeypatch):
    from pynn.cli import commands

    monkeypatch.setattr(commands, "ESTIMATE_AFTER_S", 0.0)
    monkeypatch.setattr(commands, "LONG_RUN_S", 0.0)
    code, out, err = run_cli(capsys, "train", "-q", "--epochs", "2")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("estimate"))
    assert "2 epochs of 1438 samples" in line
    monkeypatch.setattr(commands, "LONG_RUN_S", 1e9)  # short runs: no estimate
    code, out, err = run_cli(capsys, "train", "-q", "--epochs", "2")
    assert "estimate" not in out
