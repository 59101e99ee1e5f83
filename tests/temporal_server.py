"""A real Temporal server for tests: the temporal CLI's dev server on loopback, the namespace `airflow`,
its state in a directory of the caller's. Shared by the unit tests (tests/unit) and the provider's
tests (provider/tests), each of which wraps it in a `temporal` fixture."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import subprocess
import time

# A loaded machine (the test jobs run side by side) can take long to start the dev server; a server
# that exits (a port another process took between free_port() and its bind) is started again.
START_SECONDS = 120
ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(binary: pathlib.Path, data: pathlib.Path, port: int, log: pathlib.Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(binary), "server", "start-dev", "--headless", "--db-filename", str(data / "t.db"),
             "--ip", "127.0.0.1", "--port", str(port), "--http-port", str(free_port()),
             "--metrics-port", str(free_port()), "--namespace", "airflow", "--log-level", "error"],
            stdout=out, stderr=subprocess.STDOUT)


def _serving(binary: pathlib.Path, address: str) -> bool:
    return "SERVING" in subprocess.run([str(binary), "operator", "cluster", "health", "--address", address],
                                       capture_output=True, text=True, check=False).stdout


def _answers(proc: subprocess.Popen, binary: pathlib.Path, address: str) -> bool:
    """Whether the server answers within START_SECONDS; False as soon as it exits."""
    deadline = time.monotonic() + START_SECONDS
    while proc.poll() is None:
        if _serving(binary, address):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return False


@contextlib.contextmanager
def temporal_server(binary: pathlib.Path, data: pathlib.Path, port: int | None = None):
    """Yields the server's host:port once it answers; stops it afterwards. The same `data` and `port`
    again start the same server with its state, as a restart does."""
    fixed = port is not None
    log = data / "server.log"
    proc = None
    try:
        for unused_try in range(ATTEMPTS):
            port = port if fixed else free_port()
            address = "127.0.0.1:%d" % port
            proc = _start(binary, data, port, log)
            if _answers(proc, binary, address):
                break
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
            proc = None
        if proc is None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError("the Temporal server did not start in %d attempts; its output:\n%s" % (ATTEMPTS, tail))
        yield address
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
