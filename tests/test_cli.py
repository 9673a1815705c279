"""The command line: `python -m pynn train | evaluate`, its recipes and its argument errors."""

import re
import subprocess
import sys

import numpy as np
import pytest

from pynn.__main__ import RECIPES, main


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of main(argv); argparse errors exit with code 2."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["train", "--hidden", "abc"], "argument --hidden: expected comma-separated layer widths"),
    (["train", "--hidden", "64,0"], "argument --hidden: layer widths must be >= 1, got 0"),
    (["train", "--lr", "-1"], r"argument --lr: expected a number in \(0, inf\), got -1"),
    (["train", "--lr", "nan"], "argument --lr: expected a number in"),
    (["train", "--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
    (["train", "--momentum", "1"], r"argument --momentum: expected a number in \[0, 1\)"),
    (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    (["train", "--batch-size", "1.5"], "argument --batch-size: expected a positive integer"),
    (["train", "--threads", "-2"], "argument --threads: expected a positive integer"),
    (["train", "--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
    (["train", "--optimizer", "adadelta"], "argument --optimizer: invalid choice: 'adadelta'"),
    (["train", "--activation", "step"], "argument --activation: invalid choice: 'step'"),
    (["train", "--loss", "nll"], "argument --loss: invalid choice: 'nll'"),
    (["train", "--data", "/no/such/dir"], ("argument --data: expected digits, fashion-mnist, "
                                          "mnist, a CSV/.npz/.npy file or a directory")),
    (["train", "--val-split", "1"], r"argument --val-split: expected a number in \[0, 1\)"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["train", "--save", "/no/such/dir/model.npz"], ("--save .*directory /no/such/dir does not "
                                                    "exist")),
    (["evaluate"], "the following arguments are required: --model"),
    (["evaluate", "--model", "/no/such/model.npz"], "--model /no/such/model.npz: no such file"),
    ([], "the following arguments are required: command"),
])
def test_bad_arguments_are_usage_errors(capsys, argv, message):
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2
    assert "usage:" in err
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_directory_without_idx_files_is_a_usage_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path))
    assert code == 2
    assert "lacks train-images-idx3-ubyte[.gz]" in err and "Traceback" not in err


def test_missing_fashion_mnist_is_a_usage_error_with_install_hint(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PYNN_DATA", str(tmp_path / "absent"))
    code, _, err = run_cli(capsys, "train", "--data", "fashion-mnist")
    assert code == 2
    assert "apt-get install dataset-fashion-mnist" in err


def test_help_lists_recipes(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    assert "--data" in out and "fashion-mnist" in out and "epochs=" in out


def test_recipes_cover_every_data_set():
    for name in ("digits", "fashion-mnist", "mnist", "idx"):
        assert set(RECIPES[name]) == {"hidden", "activation", "optimizer", "lr", "init",
                                      "momentum", "weight_decay", "schedule", "epochs",
                                      "batch_size", "dropout", "batchnorm"}


def test_batchnorm_and_dropout_options(capsys):
    code, out, _ = run_cli(capsys, "train", "-q", "--epochs", "3", "--hidden", "64,32",
                           "--batchnorm", "--dropout", "0.2")
    assert code == 0
    assert "64-64-32-10 relu, batchnorm, dropout 0.2, cross_entropy" in out
    assert float(re.search(r"test accuracy (\d\.\d+)", out).group(1)) > 0.8
    code, _, err = run_cli(capsys, "train", "--batchnorm", "--batch-size", "1")
    assert code == 2 and "--batchnorm needs training batches of 2 rows or more" in err
    code, _, err = run_cli(capsys, "train", "--dropout", "1.0")
    assert code == 2 and "--dropout" in err


def test_info_still_works(capsys):
    code, out, _ = run_cli(capsys, "info", "--json")
    assert code == 0 and '"isa_selected"' in out


def test_python_m_pynn_bad_argument_prints_usage_not_traceback():
    result = subprocess.run([sys.executable, "-m", "pynn", "train", "--epochs", "zero"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "argument --epochs: expected a positive integer, got 'zero'" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_few_epochs_save_and_evaluate(capsys, tmp_path):
    path = tmp_path / "digits.npz"
    code, out, _ = run_cli(capsys, "train", "--quiet", "--epochs", "3", "--hidden", "32",
                           "--threads", "1", "--save", str(path))
    assert code == 0
    assert "64-32-10 relu" in out and "3 epochs" in out
    trained = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert trained > 0.8  # three epochs on digits are far above chance (0.1)
    assert path.is_file()
    code, out, _ = run_cli(capsys, "evaluate", "--model", str(path))
    assert code == 0
    assert float(re.search(r"test accuracy (\d\.\d+)", out).group(1)) == trained
    assert "(cross_entropy)" in out


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
def test_train_with_one_hot_losses(capsys, loss):
    code, out, _ = run_cli(capsys, "train", "-q", "--epochs", "5", "--hidden", "32", "--loss",
                           loss, "--optimizer", "adam", "--lr", "0.01", "--schedule", "constant")
    assert code == 0
    assert f"{loss}, float32" in out and "adam lr 0.01" in out
    assert float(re.search(r"test accuracy (\d\.\d+)", out).group(1)) > 0.5


def test_options_override_recipe_and_validation_split(capsys):
    code, out, err = run_cli(capsys, "train", "--epochs", "2", "--hidden", "16,8", "--activation",
                             "tanh", "--batch-size", "64", "--val-split", "0.2", "--dtype",
                             "float64", "--schedule", "step", "--seed", "3")
    assert code == 0
    assert "64-16-8-10 tanh, cross_entropy, float64, seed 3" in out
    assert "step schedule, 2 epochs, batch 64" in out
    assert re.search(r"val loss  \d\.\d+, val accuracy \d\.\d+ \(287 held-out", out)
    assert "val_loss=" in err  # the progress bar shows validation metrics too


def test_same_seed_same_result(capsys):
    runs = [run_cli(capsys, "train", "-q", "--epochs", "2", "--hidden", "32")[1]
            for _ in range(2)]
    last_lines = [r.splitlines()[-2:] for r in runs]
    assert last_lines[0] == last_lines[1]


def test_evaluate_rejects_mismatched_data_and_corrupt_files(capsys, tmp_path, rng):
    path = tmp_path / "m.npz"
    assert run_cli(capsys, "train", "-q", "--epochs", "1", "--hidden", "8", "--save",
                   str(path))[0] == 0
    mnist_like = tmp_path / "idx"
    mnist_like.mkdir()
    for split, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (mnist_like / f"{split}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
            + images.tobytes())
        (mnist_like / f"{split}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.tobytes())
    code, _, err = run_cli(capsys, "evaluate", "--model", str(path), "--data", str(mnist_like))
    assert code == 2
    assert "maps 64 features to 10 outputs" in err and "has 784 features" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    code, _, err = run_cli(capsys, "evaluate", "--model", str(bad))
    assert code == 2 and "not a valid pynn model file" in err and "Traceback" not in err


def test_plot_writes_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    code, out, _ = run_cli(capsys, "train", "-q", "--epochs", "2", "--hidden", "8", "--plot",
                           str(path))
    assert code == 0 and f"plotted   {path}" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
