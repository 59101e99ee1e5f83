"""A real Temporal server for tests: the temporal CLI's dev server on loopback, the namespace `airflow`,
its state in a directory of the caller's. Shared by the unit tests (tests/unit) and the provider's
tests (provider/tests), each of which wraps it in a `temporal` fixture."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporal_server(binary: pathlib.Path, data: pathlib.Path, port: int | None = None):
    """Yields the server's host:port once it answers; stops it afterwards. The same `data` and `port`
    again start the same server with its state, as a restart does."""
    port = port or free_port()
    proc = subprocess.Popen(
        [str(binary), "server", "start-dev", "--headless", "--db-filename", str(data / "t.db"), "--ip", "127.0.0.1",
         "--port", str(port), "--http-port", str(free_port()), "--metrics-port", str(free_port()),
         "--namespace", "airflow", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = "127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 30
        while "SERVING" not in subprocess.run([str(binary), "operator", "cluster", "health", "--address", address],
                                              capture_output=True, text=True, check=False).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the Temporal server did not start")
            time.sleep(0.5)
        yield address
    finally:
        proc.terminate()
        proc.wait(30)
