"""Helpers that run real ansible-playbook against localhost."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The collection as Ansible imports it (hack/bootstrap.sh links it under .cache/collections).
sys.path.insert(0, str(ROOT / ".cache" / "collections"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


class PlaybookRun:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.stats = {}
        if proc.stdout.strip().startswith("{"):
            self.stats = json.loads(proc.stdout)["stats"].get("localhost", {})

    @property
    def changed(self) -> int:
        return self.stats.get("changed", 0)


@pytest.fixture
def run_playbook(tmp_path):
    """Write a playbook into tmp_path and run it on localhost with a JSON callback."""

    def run(body: str, *args: str, verbose: bool = False) -> PlaybookRun:
        play = tmp_path / "play.yml"
        play.write_text(textwrap.dedent(body))
        env = dict(os.environ)
        env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".cache" / "collections"))
        env["ANSIBLE_LOCALHOST_WARNING"] = "false"
        env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"
        if not verbose:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
        cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(play), *args]
        # The controller's own interpreter: it has the libraries the modules need.
        cmd += ["-e", "ansible_python_interpreter=" + sys.executable]
        if verbose:
            cmd.append("-vvv")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        return PlaybookRun(proc)

    return run


TEMPORAL = pathlib.Path(sys.executable).parent / "temporal"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    """A real Temporal server with the namespace `airflow`, state in a temporary file."""
    data = tmp_path_factory.mktemp("temporal")
    port = free_port()
    proc = subprocess.Popen(
        [str(TEMPORAL), "server", "start-dev", "--headless", "--db-filename", str(data / "t.db"), "--ip", "127.0.0.1",
         "--port", str(port), "--http-port", str(free_port()), "--metrics-port", str(free_port()),
         "--namespace", "airflow", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = "127.0.0.1:%d" % port
    deadline = time.monotonic() + 30
    while "SERVING" not in subprocess.run([str(TEMPORAL), "operator", "cluster", "health", "--address", address],
                                          capture_output=True, text=True, check=False).stdout:
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the Temporal server did not start")
        time.sleep(0.5)
    yield address
    proc.terminate()
    proc.wait(30)
