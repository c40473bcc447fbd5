"""Helpers every test folder uses, as fixtures (the test folders are not packages)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def refused_with(error_type, call, *parts: str) -> str:
    """Run ``call``: it must raise a one-line ``error_type`` whose message holds each of ``parts``."""
    with pytest.raises(error_type) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message
    return message


def run_python_code(code: str, timeout: float = 300, **env_changes) -> str:
    """Run ``code`` in a fresh interpreter, the environment changed by ``env_changes`` (``None``
    removes a variable); return its stdout, failing the test if it exits with an error."""
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def one_line_error():
    """:func:`refused_with`: ``one_line_error(ErrorType, call, *parts)``."""
    return refused_with


@pytest.fixture
def run_python():
    """:func:`run_python_code`."""
    return run_python_code
