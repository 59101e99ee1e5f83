# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""_host.run: the output of a command that says nothing for a while and then prints its answer and
exits is read whole (AnsibleModule.run_command can lose it under load)."""

import selectors
import sys
import time

from ansible_collections.qubinode.airflow.plugins.module_utils import _host


def test_an_answer_printed_after_a_silence_longer_than_a_second_is_read(monkeypatch):
    # The reader is descheduled right after each wait for output that timed out: the moment
    # AnsibleModule.run_command loses the answer in (it returns rc 0 and no output).
    wait = selectors.PollSelector.select

    def descheduled(self, timeout=None):
        ready = wait(self, timeout)
        if not ready:
            time.sleep(0.5)
        return ready

    monkeypatch.setattr(selectors.PollSelector, "select", descheduled)
    script = "import sys, time; time.sleep(1.3); print('{\"ok\": true}'); print('late', file=sys.stderr)"
    rc, out, err = _host.run([sys.executable, "-c", script])
    assert (rc, out, err) == (0, '{"ok": true}\n', "late\n")


def test_environment_working_directory_and_exit_code(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/tmp/x/ansible_modlib.zip:/srv/lib")
    script = "import os, sys; print(os.getcwd(), os.environ['QA_RUN'], os.environ['PYTHONPATH']); sys.exit(3)"
    rc, out, _err = _host.run([sys.executable, "-c", script], cwd=str(tmp_path), environ_update={"QA_RUN": "a b"})
    assert rc == 3 and out.split() == [str(tmp_path), "a", "b", "/srv/lib"]
    monkeypatch.setenv("PYTHONPATH", "/tmp/x/ansible_modlib.zip")
    rc, out, _err = _host.run([sys.executable, "-c", "import os; print('PYTHONPATH' in os.environ)"])
    assert out == "False\n"


def test_a_command_that_cannot_run_is_an_exit_code_with_a_reason(tmp_path):
    rc, out, err = _host.run([str(tmp_path / "missing")])
    assert rc == 127 and out == "" and "cannot run %s" % (tmp_path / "missing") in err


def test_the_command_does_not_read_the_module_input():
    rc, out, _err = _host.run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"])
    assert rc == 0 and out == "''\n"
