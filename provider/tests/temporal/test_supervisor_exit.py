"""The task runner's fix of a race in Airflow's task supervisor, against the real supervisor class: once
the task process has closed its sockets, the supervisor notices its exit when it happens, instead of
sleeping out the heartbeat interval first (which held a worker slot about 5 s after a quarter of the
attempts of `make bench-temporal`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, socket, subprocess, sys, time, uuid
    import psutil, structlog
    from airflow.sdk.execution_time.supervisor import PsutilTracker, WatchedSubprocess
    from qubinode_airflow.temporal import run_workload

    patched = run_workload.notice_exit_promptly() if %(patch)r else False
    # A task process whose sockets are all closed (none is registered) and that exits after %(lives)s s.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(%(lives)s)"])
    mine, unused = socket.socketpair()
    watched = WatchedSubprocess(id=uuid.uuid4(), pid=child.pid, stdin=mine,
                                process=PsutilTracker(psutil.Process(child.pid)), process_log=structlog.get_logger())
    began = time.monotonic()
    code = watched._service_subprocess(max_wait_time=%(wait)s)
    print(json.dumps({"patched": patched, "code": code, "took": time.monotonic() - began}))
    child.kill()
""")


def service(patch: bool, lives: float, wait: float) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT % {"patch": patch, "lives": lives, "wait": wait}],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_unpatched_the_supervisor_sleeps_out_its_wait_after_the_exit():
    """The race exists in this Airflow: if this fails, Airflow fixed it and the patch can go."""
    got = service(patch=False, lives=0.3, wait=3)
    assert got["code"] == 0 and got["took"] >= 2.9, got


def test_patched_the_supervisor_sees_the_exit_when_it_happens():
    got = service(patch=True, lives=0.3, wait=30)
    assert got["patched"] and got["code"] == 0 and got["took"] < 10, got


def test_patched_a_process_still_running_keeps_the_heartbeat_interval():
    """The wait is bounded as before: the supervisor's loop comes back to heartbeat."""
    got = service(patch=True, lives=20, wait=0.5)
    assert got["patched"] and got["code"] is None and 0.4 <= got["took"] < 5, got


def test_patching_twice_wraps_once():
    from airflow.sdk.execution_time import supervisor

    from qubinode_airflow.temporal import run_workload

    before = supervisor.WatchedSubprocess._service_subprocess
    try:
        assert run_workload.notice_exit_promptly()
        once = supervisor.WatchedSubprocess._service_subprocess
        assert run_workload.notice_exit_promptly()
        assert supervisor.WatchedSubprocess._service_subprocess is once
        assert once.__wrapped__ is before
    finally:
        supervisor.WatchedSubprocess._service_subprocess = before
