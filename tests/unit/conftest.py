"""Helpers that run real ansible-playbook against localhost."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The collection as Ansible imports it (hack/bootstrap.sh links it under .cache/collections).
sys.path.insert(0, str(ROOT / ".cache" / "collections"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
# Helpers shared with the provider's tests.
sys.path.insert(0, str(ROOT / "tests"))

from temporal_server import temporal_server  # noqa: E402


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


def playbook_runner(directory: pathlib.Path):
    """A function that writes a playbook into directory and runs it on localhost with a JSON callback."""

    def run(body: str, *args: str, verbose: bool = False) -> PlaybookRun:
        play = directory / "play.yml"
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


@pytest.fixture
def run_playbook(tmp_path):
    """Write a playbook into tmp_path and run it on localhost with a JSON callback."""
    return playbook_runner(tmp_path)


@pytest.fixture(scope="module")
def run_playbook_once(tmp_path_factory):
    """run_playbook for module-scoped fixtures: state several tests start from, made once."""
    return playbook_runner(tmp_path_factory.mktemp("plays"))


TEMPORAL = pathlib.Path(sys.executable).parent / "temporal"


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    """A real Temporal server with the namespace `airflow`, state in a temporary file."""
    with temporal_server(TEMPORAL, tmp_path_factory.mktemp("temporal")) as address:
        yield address
