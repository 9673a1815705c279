"""The README's two commands are the ones .ci/run runs, verbatim, in that order."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def _ci_block(name):
    text = (ROOT / ".ci" / "run").read_text()
    match = re.search(rf"# --- begin README {name} command ---\n(.*?)# --- end README {name} "
                      rf"command ---", text, re.S)
    assert match, f".ci/run has no 'README {name} command' block"
    return match.group(1).strip(), match.start()


def test_readme_has_the_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "pip install ." in commands[0] and "python -m pynn train" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_commands_verbatim_train_first():
    train, test = _readme_commands()
    ci_train, train_at = _ci_block("train")
    ci_test, test_at = _ci_block("test")
    assert ci_train == train
    assert ci_test == test
    assert train_at < test_at, "the first command must run before the test command"


def test_import_and_cli_work_from_the_repository_root():
    """`python -m pynn` from the clone's root: the source folder must not shadow the install."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    for args in (["-c", "import pynn, pynn.sklearn; print(pynn.Sequential.__name__)"],
                 ["-m", "pynn", "--help"]):
        result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
