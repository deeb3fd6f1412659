"""Helpers: real processes holding locks, the abslock command, unique names."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def name():
    """A lock name no other test uses."""
    return f"pytest/{os.getpid()}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def abslock_bin():
    """The abslock command: $ABSLOCK_BIN, else the workspace's debug build."""
    path = os.environ.get("ABSLOCK_BIN") or str(REPO / "target" / "debug" / "abslock")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no abslock binary at {path}: run `cargo build -p abslock-cli` or set ABSLOCK_BIN")
    return path


HOLD = """
import abslock, os, sys
kwargs = eval(sys.argv[2]) if len(sys.argv) > 2 else {}
guard = abslock.Lock(sys.argv[1], **kwargs).try_acquire()
print("ready", os.getpid(), flush=True)
sys.stdin.read()
"""


class Proc:
    """A child process that prints `ready PID` once it holds what it holds."""

    def __init__(self, argv, **kwargs):
        self.p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kwargs
        )

    def expect(self, word, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError(f"child exited before printing {word!r}: {self.p.wait()}")
            if line.startswith(word + " ") or line.strip() == word:
                return line[len(word):].strip()
        raise AssertionError(f"no {word!r} within {timeout}s")

    @property
    def pid(self):
        return self.p.pid

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.p.pid, sig)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


@pytest.fixture
def spawn():
    """spawn(argv, ...) -> Proc; every child is killed at the end."""
    procs = []

    def start(argv, **kwargs):
        proc = Proc(argv, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.close()


@pytest.fixture
def holder(spawn):
    """holder(name, **lock_kwargs) -> Proc: a Python process holding the lock."""

    def start(lock_name, user=None, **kwargs):
        argv = [sys.executable, "-c", HOLD, lock_name, repr(kwargs)]
        extra = {}
        if user is not None:
            extra = {"user": user, "group": user, "extra_groups": [], "env": _env_for_other_user()}
        proc = spawn(argv, **extra)
        proc.expect("ready")
        return proc

    return start


def _env_for_other_user():
    env = dict(os.environ)
    env.pop("XDG_RUNTIME_DIR", None)
    env["HOME"] = "/"
    return env


def is_root():
    return os.geteuid() == 0


def readable_by_nobody():
    """Whether uid 65534 can import abslock from this interpreter."""
    probe = subprocess.run(
        [sys.executable, "-c", "import abslock"],
        user=65534, group=65534, extra_groups=[], env=_env_for_other_user(),
        capture_output=True,
    )
    return probe.returncode == 0


__all__ = ["REPO", "Proc", "is_root", "readable_by_nobody", "shutil"]
