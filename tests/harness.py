"""Run an adversarial case in a child process and classify what happened.

A case is a snippet of Python; the child runs it under a time limit and an address-space limit
and reports the exception it raised, if any. `run_case` returns an `Outcome` whose `kind` is one
of:

- ``clean``: the expected exception (type and message), or no exception when none is expected;
- ``wrong-exception``: another exception, or the right type with an unhelpful message;
- ``silent``: no exception where one was expected (a wrong result passed for a right one);
- ``crash``: the child died (a signal, an abort, a non-zero exit without a report);
- ``hang``: the time limit passed;
- ``leak``: with ``repeat=n``, the child's peak memory kept growing over the repetitions.

Later issues add cases (a line each), not harness code:

    outcome = run_case("pynn.set_num_threads(2**70)", expect="ValueError|RuntimeWarning")
    assert outcome.kind == "clean", outcome
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass

_CHILD = r'''
import json, resource, sys, traceback
def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
report = {"raised": None, "peaks": []}
try:
    import __main__
    import numpy as np
    import pynn
    scope = __main__.__dict__  # functions the case defines pickle by reference (fork pools)
    scope.update(np=np, pynn=pynn)
    for _ in range(REPEAT):
        exec(compile(CASE, "<case>", "exec"), scope)
        report["peaks"].append(_peak_mb())
except BaseException as exc:
    report["raised"] = type(exc).__name__
    report["mro"] = [c.__name__ for c in type(exc).__mro__]
    report["message"] = str(exc)[:2000]
    report["traceback"] = traceback.format_exc()[-4000:]
sys.stdout.flush()
print("\n@@REPORT@@" + json.dumps(report), flush=True)
'''


@dataclass
class Outcome:
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _limit_memory(megabytes: int):
    def apply() -> None:
        import resource

        limit = megabytes * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # AddressSanitizer (the CI sanitizer stage) reserves terabytes of address space for its
    # shadow memory: an address-space limit would stop every child before it starts
    return None if os.environ.get("PYNN_SANITIZED") else apply


def run_case(case: str, *, expect: str | None = None, match: str | None = None,
             timeout: float = 60, memory_mb: int = 4096, repeat: int = 1,
             leak_mb: float = 64, env: dict | None = None, cwd: str | None = None) -> Outcome:
    """Run `case` (names `np` and `pynn` are imported) in a child process and classify it.

    expect: exception class names separated by "|" (any class in the raised one's MRO counts);
    None means the case must finish without one. match: a regex the message must contain.
    """
    code = (_CHILD.replace("REPEAT", str(int(repeat)))
            .replace("CASE", repr(textwrap.dedent(case))))
    child_env = dict(os.environ)
    child_env.setdefault("PYTHONSAFEPATH", "1")
    child_env.update(env or {})
    try:
        proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                              text=True,
                              timeout=timeout, env=child_env, cwd=cwd,
                              preexec_fn=_limit_memory(memory_mb))
    except subprocess.TimeoutExpired:
        return Outcome("hang", f"no answer within {timeout} s")
    report_text = proc.stdout.rpartition("@@REPORT@@")[2] if "@@REPORT@@" in proc.stdout \
        else None
    if proc.returncode != 0 or report_text is None:
        return Outcome("crash", f"exit status {proc.returncode}; stderr: {proc.stderr[-1500:]}")
    report = json.loads(report_text)
    raised = report["raised"]
    if expect is None:
        if raised is not None:
            return Outcome("wrong-exception", f"{raised}: {report['message']}\n"
                                              f"{report['traceback']}")
        peaks = report["peaks"]
        if repeat > 1 and len(peaks) == repeat and peaks[-1] - peaks[0] > leak_mb:
            return Outcome("leak", f"peak memory {peaks[0]:.0f} -> {peaks[-1]:.0f} MB over "
                                   f"{repeat} runs")
        return Outcome("clean")
    if raised is None:
        return Outcome("silent", f"no exception; expected {expect}")
    wanted = set(expect.split("|"))
    if not wanted & set(report["mro"]):
        return Outcome("wrong-exception", f"{raised}: {report['message']}\n"
                                          f"{report['traceback']}")
    if match is not None and not re.search(match, report["message"]):
        return Outcome("wrong-exception", f"{raised} with message {report['message']!r}, "
                                          f"which does not match {match!r}")
    return Outcome("clean", f"{raised}: {report['message']}")
