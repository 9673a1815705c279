"""The command line: `python -m pynn train | evaluate`, its recipes and its argument errors."""

import re
import subprocess
import sys

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
    (["train", "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    (["train", "--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["train", "--activation", "step"], "argument --activation: invalid choice: 'step'"),
    (["train", "--loss", "nll"], "argument --loss: invalid choice: 'nll'"),
    (["train", "--data", "/no/such/dir"], ("argument --data: expected digits, fashion-mnist, "
                                          "mnist or a directory")),
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
        assert set(RECIPES[name]) == {"hidden", "activation", "loss", "optimizer", "lr",
                                      "momentum", "weight_decay", "schedule", "epochs",
                                      "batch_size"}


def test_info_still_works(capsys):
    code, out, _ = run_cli(capsys, "info", "--json")
    assert code == 0 and '"isa_selected"' in out


def test_python_m_pynn_bad_argument_prints_usage_not_traceback():
    result = subprocess.run([sys.executable, "-m", "pynn", "train", "--epochs", "zero"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "argument --epochs: expected a positive integer, got 'zero'" in result.stderr
    assert "Traceback" not in result.stderr
