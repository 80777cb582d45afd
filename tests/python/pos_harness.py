"""Shared harness for the Python checks in tests/python.

The scripts here (check_reflection_health.py, readme_examples.py) each start a
fresh `pos up` on a free loopback port, run their checks against it and print
one `<prefix>: PASS|FAIL <name>[: detail]` line per check, then a summary line
`<prefix>: N passed, M failed` that xtask and CI read. This module holds the
parts they share:

* `Checks`: counts and prints the check lines and the summary line;
* `start_pos`: starts `<pos-bin> up [ARGS] --listen 127.0.0.1:0 --data-dir DIR`,
  echoes its stdout (`  [pos] ...`) from a thread, and returns (proc, host, port)
  once it prints `listening on HOST:PORT`;
* `stop_pos`: SIGTERM, up to 10 s to exit, then SIGKILL; returns the exit code;
* `run_with_pos`: all of the above around a temp data dir, with cleanup, for a
  script's `main`.

The scripts are run as `python tests/python/<script>.py ...` and import this
file as a sibling module.
"""

import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

LISTENING = re.compile(r"listening on (\S+):(\d+)")
STOP_TIMEOUT = 10


class Checks:
    """PASS/FAIL lines and counts, every line starting with `<prefix>:`."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        suffix = f": {detail}" if detail else ""
        print(f"{self.prefix}: {'PASS' if ok else 'FAIL'} {name}{suffix}", flush=True)

    def summary(self):
        """Prints `<prefix>: N passed, M failed` (the line xtask and CI read)."""
        print(f"{self.prefix}: {self.passed} passed, {self.failed} failed", flush=True)


class PosStartError(RuntimeError):
    """`pos up` exited, or printed no `listening on` line in time."""


def _pump_stdout(proc, lines):
    """Echoes the server's stdout and hands each line to the main thread."""
    for line in proc.stdout:
        print(f"  [pos] {line.rstrip()}", flush=True)
        lines.put(line)
    lines.put(None)  # EOF


def _wait_for_port(proc, lines, timeout):
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PosStartError(f"no 'listening on' line within {timeout} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            code = proc.wait()
            raise PosStartError(f"pos exited (code {code}) before printing 'listening on'")
        match = LISTENING.search(line)
        if match:
            return match.group(1), int(match.group(2))


def start_pos(pos_bin, up_args, data_dir, prefix, startup_timeout=60.0):
    """Starts `<pos_bin> up UP_ARGS --listen 127.0.0.1:0 --data-dir DATA_DIR`.

    Returns (proc, host, port) once pos prints `listening on HOST:PORT`; its
    stdout keeps being echoed by a daemon thread. Raises PosStartError (having
    killed pos) if it exits first or says nothing for `startup_timeout` s.
    """
    command = [pos_bin, "up", *up_args, "--listen", "127.0.0.1:0", "--data-dir", data_dir]
    print(f"{prefix}: starting {' '.join(command)}", flush=True)
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    lines = queue.Queue()
    threading.Thread(target=_pump_stdout, args=(proc, lines), daemon=True).start()
    try:
        host, port = _wait_for_port(proc, lines, startup_timeout)
    except BaseException:
        _kill(proc)
        raise
    return proc, host, port


def stop_pos(proc, timeout=STOP_TIMEOUT):
    """Sends SIGTERM and waits up to `timeout` s for pos to exit.

    Returns its exit code, or None if it did not exit in time and was killed
    with SIGKILL. (Check `proc.poll()` first to tell whether it had already
    exited before the SIGTERM.)
    """
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None


def _kill(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def run_with_pos(checks, pos_bin, up_args, body, startup_timeout=60.0):
    """Runs `body(proc, host, port, data_dir)` against a fresh `pos up UP_ARGS`.

    The data dir is a new temp dir (`pos-<prefix>-*`), removed afterwards. A
    failed start is the failed check "pos starts and prints 'listening on'"
    (and `body` is not run); any exception from `body` is the failed check
    "unexpected error". `body` should stop pos itself (`stop_pos`) if it wants
    to check or report that; a pos still running afterwards is killed.
    """
    data_dir = tempfile.mkdtemp(prefix=f"pos-{checks.prefix}-")
    proc = None
    try:
        try:
            proc, host, port = start_pos(pos_bin, up_args, data_dir, checks.prefix, startup_timeout)
        except PosStartError as err:
            checks.check("pos starts and prints 'listening on'", False, str(err))
        else:
            body(proc, host, port, data_dir)
    except Exception as err:  # noqa: BLE001 - report anything unexpected as a failure
        checks.check("unexpected error", False, f"{type(err).__name__}: {err}")
    finally:
        if proc is not None:
            _kill(proc)
        shutil.rmtree(data_dir, ignore_errors=True)
