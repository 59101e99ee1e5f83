"""The provider package's worker and workflow against a real Temporal server on loopback.

Airflow's task process is the one thing stood in for (the worker's CHILD command): a small script that
reads the attempt from stdin, as Airflow's run_workload does, and sleeps or exits as told. Everything
else - the workflow, the activity, heartbeats, retries on worker loss, cancellation - is the real code
on a real server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from conftest import ROOT
from qubinode_airflow.temporal.codec import WORKFLOW_NAME, AttemptResult, Settings, TaskAttempt, workflow_id

# The worker and the executor derive their payload key from Airflow's [api_auth] jwt_secret.
SECRET = "test-jwt-secret-0b1c2d"

# The task runner's stand-in: warm() is the import of Airflow (it notes the server's pid once), run() the
# task process of one attempt, in its fork.
STAND_IN = textwrap.dedent("""
    import json, os, sys, time
    WARMED = None

    def warm():
        global WARMED
        WARMED = time.time()
        with open({started!r}, "a") as f:
            f.write("%d %f\\n" % (os.getpid(), WARMED))

    def run(data):
        spec = json.loads(data)
        with open(spec["marker"], "a") as f:
            f.write("%d %f %f %d %d\\n" % (os.getpid(), WARMED, time.time(), os.getppid(), os.getsid(0)))
        if spec.get("grandchild"):
            import subprocess
            # Airflow 3.3's supervisor starts the task process in a process group of its own.
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                     process_group=0 if spec.get("own_group") else None)
            with open(spec["grandchild"], "w") as f:
                f.write("%d" % child.pid)
        time.sleep(spec.get("sleep", 0))
        if spec.get("raise"):
            raise RuntimeError("the task broke")
        return spec.get("exit", 0)
""")

WORKER = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {src!r})
    from qubinode_airflow.temporal import worker
    from qubinode_airflow.temporal.codec import Settings
    from qubinode_airflow.temporal.sealing import data_converter
    worker.RUNNER = "stand_in"
    settings = Settings.from_getter(lambda name, default: {{"address": {address!r}, "task_queue": {queue!r}}}.get(name, default))
    asyncio.run(worker.serve(settings, 2, converter=data_converter({secret!r}, keyring={keyring!r}, strict=True),
                             drain_timeout={drain!r}))
""")


@pytest.fixture
def queue():
    return "test-%s" % uuid.uuid4().hex[:8]


@pytest.fixture
def start_worker(tmp_path, temporal, queue):
    (tmp_path / "stand_in.py").write_text(STAND_IN.format(started=str(tmp_path / "started")))
    procs = []

    def start(keyring=None, drain=5):
        script = WORKER.format(src=str(ROOT / "provider" / "src"), address=temporal, queue=queue, secret=SECRET,
                               keyring=keyring, drain=drain)
        # The task runner is a separate interpreter: it finds the stand-in as it would find Airflow.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
        with open(tmp_path / ("worker%d.log" % len(procs)), "wb") as log:
            proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=log, env=env)
        procs.append(proc)
        assert wait_for(lambda: polling(temporal, queue, proc), 90), "the worker never polled %s" % queue
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(40)


def polling(temporal, queue, proc):
    """Whether the worker process `proc` polls `queue` for activities (Temporal lists it among the pollers)."""
    import asyncio

    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    async def ask():
        client = await Client.connect(temporal, namespace="airflow")
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="airflow", task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
        return any(poller.identity.startswith("%d@" % proc.pid) for poller in answer.pollers)

    return proc.poll() is None and asyncio.run(ask())


def run(temporal, queue, spec, heartbeat=3, max_attempts=3, wait=True, cancel_after=None, wf_id=None, converter=None):
    import asyncio

    from temporalio.client import Client, WorkflowFailureError

    from qubinode_airflow.temporal.sealing import data_converter

    async def go():
        client = await Client.connect(temporal, namespace="airflow", data_converter=converter or data_converter(SECRET))
        attempt = TaskAttempt(workload=json.dumps(spec), summary="test", heartbeat_timeout=heartbeat,
                              task_timeout=120, max_attempts=max_attempts)
        handle = await client.start_workflow(WORKFLOW_NAME, attempt, id=wf_id or workflow_id(str(uuid.uuid4())),
                                             task_queue=queue,
                                             result_type=AttemptResult)
        if cancel_after is not None:
            await asyncio.sleep(cancel_after)
            await handle.cancel()
        try:
            return await asyncio.wait_for(handle.result(), 90)
        except WorkflowFailureError as e:
            return e

    return asyncio.run(go())


def pids(marker):
    return [int(line.split()[0]) for line in marker.read_text().splitlines()] if marker.exists() else []


def lines(marker):
    return [line.split() for line in marker.read_text().splitlines()] if marker.exists() else []


def alive(pid):
    """Running, or stopped: not gone, and not a zombie its new parent has yet to reap."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_an_attempt_runs_once_and_reports_its_exit_code(temporal, queue, start_worker, tmp_path):
    start_worker()
    marker = tmp_path / "ran"
    ok = run(temporal, queue, {"marker": str(marker)})
    assert isinstance(ok, AttemptResult) and ok.exit_code == 0 and ok.attempt == 1
    failed = run(temporal, queue, {"marker": str(marker), "exit": 3})
    # A task that failed is Airflow's business (its retries): Temporal does not run it again.
    assert isinstance(failed, AttemptResult) and failed.exit_code == 3 and failed.attempt == 1
    assert len(pids(marker)) == 2


def test_a_lost_worker_hands_the_attempt_to_another(temporal, queue, start_worker, tmp_path):
    first = start_worker()
    marker = tmp_path / "ran"
    grandchild = tmp_path / "grandchild"
    outcome = in_background(temporal, queue, {"marker": str(marker), "sleep": 6, "grandchild": str(grandchild)})
    assert wait_for(lambda: pids(marker) and grandchild.exists(), 10)
    child, started = pids(marker)[0], int(grandchild.read_text())
    # The worker's main process dies alone: its task runner stops the attempt's session at once (systemd
    # would let it run on for the unit's stop timeout, without a worker heartbeating for it).
    first.send_signal(signal.SIGKILL)
    assert wait_for(lambda: not alive(child) and not alive(started), 10)
    start_worker()
    outcome["thread"].join(120)
    result = outcome["r"]
    assert isinstance(result, AttemptResult) and result.exit_code == 0, result
    assert result.attempt == 2 and len(pids(marker)) == 2


def in_background(temporal, queue, spec):
    """Run an attempt from a thread; the outcome lands in the returned dict under "r"."""
    import threading

    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(r=run(temporal, queue, spec)), daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


def test_a_stopped_worker_lets_its_attempt_end_and_takes_no_new_one(temporal, queue, start_worker, tmp_path):
    first = start_worker(drain=60)
    running, queued = tmp_path / "running", tmp_path / "queued"
    a = in_background(temporal, queue, {"marker": str(running), "sleep": 6})
    assert wait_for(lambda: pids(running), 10)
    stopped = time.monotonic()
    first.send_signal(signal.SIGTERM)
    b = in_background(temporal, queue, {"marker": str(queued)})
    first.wait(40)
    # The worker waited for the attempt it ran and exited then; the attempt queued meanwhile stayed queued.
    assert time.monotonic() - stopped >= 3
    assert not pids(queued) and len(pids(running)) == 1
    start_worker()
    for outcome in (a, b):
        outcome["thread"].join(90)
    assert isinstance(a["r"], AttemptResult) and a["r"].exit_code == 0 and a["r"].attempt == 1, a["r"]
    assert isinstance(b["r"], AttemptResult) and b["r"].exit_code == 0, b["r"]
    assert len(pids(running)) == 1 and len(pids(queued)) == 1


def test_an_attempt_that_outlasts_the_drain_is_stopped_and_named(temporal, queue, start_worker, tmp_path):
    first = start_worker(drain=1)
    marker = tmp_path / "ran"
    in_background(temporal, queue, {"marker": str(marker), "sleep": 120})
    assert wait_for(lambda: pids(marker), 10)
    first.send_signal(signal.SIGTERM)
    first.wait(40)
    assert not alive(pids(marker)[0])
    assert "test: stopped before it ended, the worker's drain timeout is over" in (tmp_path / "worker0.log").read_text()


def test_cancelling_the_workflow_stops_the_task_process(temporal, queue, start_worker, tmp_path):
    start_worker()
    marker = tmp_path / "ran"
    grandchild = tmp_path / "grandchild"
    result = run(temporal, queue, {"marker": str(marker), "sleep": 60, "grandchild": str(grandchild)}, cancel_after=3)
    assert "cancel" in str(result).lower() or "cancel" in str(getattr(result, "cause", "")).lower(), result
    # The attempt's whole session goes: the task process and what it started.
    assert wait_for(lambda: not alive(pids(marker)[0]), 5)
    assert wait_for(lambda: not alive(int(grandchild.read_text())), 5)


def with_runner(tmp_path, monkeypatch, body, slot_attempts=None):
    """Run `body(runners)` (a coroutine function) against a real task runner serving the stand-in."""
    import asyncio

    from qubinode_airflow.temporal.forkserver import ForkServer

    (tmp_path / "stand_in.py").write_text(STAND_IN.format(started=str(tmp_path / "started")))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))

    async def go():
        runners = ForkServer("stand_in") if slot_attempts is None else ForkServer("stand_in", slot_attempts)
        try:
            return await body(runners)
        finally:
            await runners.close()

    return asyncio.run(go())


async def spec_of(**spec):
    return json.dumps(spec).encode()


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
def test_stopping_an_attempt_stops_a_task_process_in_a_process_group_of_its_own(sig, tmp_path, monkeypatch):
    """Airflow 3.3's supervisor puts the task process in a process group of its own: stopping the attempt
    must reach it too (a signal to the attempt's process group alone would leave it running)."""
    import asyncio

    marker, grandchild = tmp_path / "ran", tmp_path / "grandchild"

    async def body(runners):
        attempt = await runners.spawn(await spec_of(marker=str(marker), sleep=60, grandchild=str(grandchild),
                                                    own_group=True))
        for unused in range(100):
            if grandchild.exists() and grandchild.read_text():
                break
            await asyncio.sleep(0.1)
        task = int(grandchild.read_text())
        assert os.getpgid(task) == task != os.getpgid(attempt.pid)
        attempt.signal(getattr(signal, "SIG" + sig))
        code = await asyncio.wait_for(attempt.wait(), 10)
        # The next attempt runs in a process of its own: the stopped one's is not used again.
        after = await runners.spawn(await spec_of(marker=str(marker)))
        assert await asyncio.wait_for(after.wait(), 10) == 0 and after.pid != attempt.pid
        return task, code

    task, code = with_runner(tmp_path, monkeypatch, body)
    assert code == -getattr(signal, "SIG" + sig)
    assert wait_for(lambda: not alive(task), 5), "the task process in its own group survived SIG%s" % sig


def test_a_stop_for_an_attempt_that_ended_never_reaches_the_next_one_in_its_process(tmp_path, monkeypatch):
    import asyncio

    marker = tmp_path / "ran"

    async def body(runners):
        first = await runners.spawn(await spec_of(marker=str(marker)))
        assert await asyncio.wait_for(first.wait(), 10) == 0
        second = await runners.spawn(await spec_of(marker=str(marker), sleep=2, exit=7))
        assert second.pid == first.pid and second.seq == first.seq + 1
        # A stop the worker decided before it read that the first attempt ended (it bypasses the
        # returncode check of Attempt.signal: what reaches the server is what matters).
        assert runners._kill(first.seq, signal.SIGKILL)
        return await asyncio.wait_for(second.wait(), 10)

    assert with_runner(tmp_path, monkeypatch, body) == 7


def test_attempts_at_once_run_in_processes_of_their_own_and_each_is_replaced_after_its_share(tmp_path, monkeypatch):
    import asyncio

    marker = tmp_path / "ran"

    async def body(runners):
        together = [await runners.spawn(await spec_of(marker=str(marker), sleep=1)) for unused in range(2)]
        assert [await asyncio.wait_for(a.wait(), 10) for a in together] == [0, 0]
        assert together[0].pid != together[1].pid
        used = []
        for unused in range(3):
            attempt = await runners.spawn(await spec_of(marker=str(marker)))
            assert await asyncio.wait_for(attempt.wait(), 10) == 0
            used.append(attempt.pid)
        return together, used

    together, used = with_runner(tmp_path, monkeypatch, body, slot_attempts=2)
    # Two attempts per process: each of the two runs one more, then a new process takes over; those that had
    # their share exit (the server holds no socket of theirs open elsewhere, in another fork).
    assert sorted(used[:2]) == sorted(a.pid for a in together) and used[2] not in used[:2]
    assert wait_for(lambda: not any(alive(a.pid) for a in together), 10)


def test_settings_default_to_the_provider_info():
    from qubinode_airflow import get_provider_info

    options = get_provider_info()["config"]["qubinode_temporal"]["options"]
    settings = Settings.from_getter(lambda name, default: options[name]["default"])
    assert settings == Settings.from_getter(lambda name, default: default)


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.2)
    return predicate()


def test_attempts_run_in_forks_of_one_runner_that_imported_once(temporal, queue, start_worker, tmp_path):
    worker = start_worker()
    started = tmp_path / "started"
    assert wait_for(lambda: len(lines(started)) == 1)  # warmed when the worker started, before any attempt
    (server, warmed), = lines(started)
    marker = tmp_path / "ran"
    for n in range(3):
        result = run(temporal, queue, {"marker": str(marker), "exit": n})
        assert isinstance(result, AttemptResult) and result.exit_code == n
    ran = lines(marker)
    assert len(ran) == 3 and len(lines(started)) == 1  # three attempts, one import
    for pid, their_warm, unused, parent, session in ran:
        assert parent == server and their_warm == warmed  # a fork of the warm runner, not a new interpreter
        assert session == pid != server  # in a session of its own
    # One after the other, they ran in the same fork, which waits for the next attempt.
    assert len({line[0] for line in ran}) == 1 and alive(int(ran[0][0]))
    # The worker itself is not their parent: it never forks (its SDK core runs threads).
    assert int(server) != worker.pid


def test_a_task_that_raises_fails_its_attempt_and_the_runner_keeps_serving(temporal, queue, start_worker, tmp_path):
    start_worker()
    marker = tmp_path / "ran"
    broke = run(temporal, queue, {"marker": str(marker), "raise": True})
    assert isinstance(broke, AttemptResult) and broke.exit_code == 1 and broke.attempt == 1
    ok = run(temporal, queue, {"marker": str(marker)})
    assert isinstance(ok, AttemptResult) and ok.exit_code == 0
    assert len(lines(tmp_path / "started")) == 1


def test_a_killed_runner_is_reported_and_started_again(temporal, queue, start_worker, tmp_path):
    import threading

    worker = start_worker()
    started = tmp_path / "started"
    assert wait_for(lambda: len(lines(started)) == 1)
    server = int(lines(started)[0][0])
    marker = tmp_path / "ran"
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(r=run(temporal, queue, {"marker": str(marker), "sleep": 60},
                                                                  max_attempts=1)))
    thread.start()
    assert wait_for(lambda: len(lines(marker)) == 1)
    child = int(lines(marker)[0][0])
    os.kill(server, signal.SIGKILL)
    thread.join(60)
    # Its attempt cannot be followed any more: it is killed and reported so, never left running unseen.
    lost = outcome["r"]
    assert isinstance(lost, AttemptResult) and lost.exit_code == -signal.SIGKILL, lost
    assert wait_for(lambda: not alive(child), 10)
    ok = run(temporal, queue, {"marker": str(marker)})
    assert isinstance(ok, AttemptResult) and ok.exit_code == 0
    assert len(lines(started)) == 2 and int(lines(started)[1][0]) != server
    assert worker.poll() is None


def test_stopping_the_worker_stops_its_runner(temporal, queue, start_worker, tmp_path):
    worker = start_worker()
    started = tmp_path / "started"
    assert wait_for(lambda: len(lines(started)) == 1)
    server = int(lines(started)[0][0])
    assert alive(server)
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    assert wait_for(lambda: not alive(server), 15)


def test_a_runner_whose_worker_was_killed_exits(temporal, queue, start_worker, tmp_path):
    worker = start_worker()
    started = tmp_path / "started"
    assert wait_for(lambda: len(lines(started)) == 1)
    server = int(lines(started)[0][0])
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert wait_for(lambda: not alive(server), 15)


def test_temporal_stores_only_sealed_attempts(temporal, queue, start_worker, tmp_path):
    import asyncio

    from temporalio.client import Client

    from qubinode_airflow.temporal.sealing import ENCODING, data_converter

    start_worker()
    marker = tmp_path / "ran"
    wf_id = workflow_id(str(uuid.uuid4()))
    token = "eyJ-secret-token-%s" % uuid.uuid4().hex
    result = run(temporal, queue, {"marker": str(marker), "token": token}, wf_id=wf_id)
    assert isinstance(result, AttemptResult) and result.exit_code == 0

    async def history(converter):
        client = await Client.connect(temporal, namespace="airflow", **({"data_converter": converter} if converter else {}))
        handle = client.get_workflow_handle(wf_id, result_type=AttemptResult)
        events = [e async for e in handle.fetch_history_events()]
        result = None
        if converter is not None:
            try:
                result = await handle.result()
            except Exception as e:  # noqa: BLE001 - the failure is what is looked at
                result = e
        return events, result

    events, unused = asyncio.run(history(None))
    stored = b"".join(e.SerializeToString() for e in events)
    assert token.encode() not in stored and str(marker).encode() not in stored
    started = next(e for e in events if e.HasField("workflow_execution_started_event_attributes"))
    payload = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert payload.metadata["encoding"] == ENCODING
    # The same history opens with the secret, and not with another one.
    unused, opened = asyncio.run(history(data_converter(SECRET)))
    assert isinstance(opened, AttemptResult) and opened.exit_code == 0
    unused, refused = asyncio.run(history(data_converter("another-secret")))
    assert "jwt_secret" in repr(refused) or "jwt_secret" in repr(getattr(refused, "__cause__", "")), refused


def test_an_empty_secret_is_refused_naming_the_setting():
    from qubinode_airflow.temporal.sealing import SealedPayloads

    with pytest.raises(ValueError, match=r"\[api_auth\] jwt_secret"):
        SealedPayloads("")


def write_keyring(path, *secrets):
    """The keyring as the roles write it: a JSON Web Key Set of oct keys, the sealing key first."""
    import base64

    keys = [{"kty": "oct", "alg": "HS512", "kid": "k%d" % n,
             "k": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")} for n, secret in enumerate(secrets)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": keys}))
    os.replace(tmp, path)  # as Ansible's copy does: the worker never reads half a file
    return path


def seal(codec, data=b"attempt"):
    import asyncio

    from temporalio.api.common.v1 import Payload

    return asyncio.run(codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=data)]))[0]


def unseal(codec, payload):
    import asyncio

    return asyncio.run(codec.decode([payload]))[0].data


def test_a_keyring_seals_with_its_first_key_and_opens_with_every_key(tmp_path):
    from qubinode_airflow.temporal.sealing import KEY_ID, KeyringPayloads, SealedPayloads

    old = seal(SealedPayloads("old-secret"), b"sealed before the rotation")
    keyring = KeyringPayloads(str(write_keyring(tmp_path / "keys.json", "new-secret", "old-secret")))
    new = seal(keyring, b"sealed during the window")
    assert unseal(keyring, old) == b"sealed before the rotation"
    assert unseal(SealedPayloads("new-secret"), new) == b"sealed during the window"
    assert new.metadata[KEY_ID] != old.metadata[KEY_ID]
    with pytest.raises(ValueError, match="does not open"):
        unseal(SealedPayloads("old-secret"), new)
    # The window closed: the old key is gone and what it sealed no longer opens, with a message that says why.
    write_keyring(tmp_path / "keys.json", "new-secret")
    with pytest.raises(ValueError, match=r"keyring .*keys\.json .*previous one"):
        unseal(keyring, old)


def test_a_rewritten_keyring_is_read_again_without_a_restart(tmp_path):
    from qubinode_airflow.temporal.sealing import KeyringPayloads, SealedPayloads

    path = write_keyring(tmp_path / "keys.json", "old-secret")
    worker = KeyringPayloads(str(path))
    assert unseal(worker, seal(SealedPayloads("old-secret"), b"a")) == b"a"
    write_keyring(path, "new-secret", "old-secret")
    # The scheduler restarted with the new secret first; this worker did not restart.
    assert unseal(worker, seal(SealedPayloads("new-secret"), b"b")) == b"b"
    assert unseal(SealedPayloads("new-secret"), seal(worker, b"c")) == b"c"


def test_payloads_sealed_before_key_ids_open_with_any_key_of_the_keyring(tmp_path):
    from qubinode_airflow.temporal.sealing import KEY_ID, KeyringPayloads, SealedPayloads

    legacy = seal(SealedPayloads("old-secret"), b"older format")
    del legacy.metadata[KEY_ID]
    keyring = KeyringPayloads(str(write_keyring(tmp_path / "keys.json", "new-secret", "old-secret")))
    assert unseal(keyring, legacy) == b"older format"


def test_a_broken_keyring_is_a_clear_error_at_start_and_ignored_once_running(tmp_path, caplog):
    from qubinode_airflow.temporal.sealing import KeyringPayloads, SealedPayloads

    path = tmp_path / "keys.json"
    with pytest.raises(ValueError, match=r"keys\.json \(\[qubinode_temporal\] sealing_keys\) cannot be read"):
        KeyringPayloads(str(path))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON Web Key Set"):
        KeyringPayloads(str(path))
    write_keyring(path, "old-secret")
    running = KeyringPayloads(str(path))
    path.write_text('{"keys": [{"kty": "oct"}]}')  # no "k": the running codec keeps its keys
    assert unseal(SealedPayloads("old-secret"), seal(running, b"still")) == b"still"
    assert "keeping the 1 keys read before" in caplog.text


def test_an_attempt_runs_across_a_rotation_and_the_worker_keeps_running(temporal, queue, start_worker, tmp_path):
    """The rotation as the roles run it: the worker's keyring gets the new key beside the old one while an
    attempt sealed with the old one runs; the scheduler seals new attempts with the new key."""
    import asyncio

    from temporalio.client import Client

    from qubinode_airflow.temporal.sealing import data_converter

    worker_keys = write_keyring(tmp_path / "worker-keys.json", "old-secret")
    worker = start_worker(keyring=str(worker_keys))
    marker = tmp_path / "ran"

    async def go():
        def attempt(sleep):
            return TaskAttempt(workload=json.dumps({"marker": str(marker), "sleep": sleep}), summary="test",
                               heartbeat_timeout=3, task_timeout=120, max_attempts=1)

        before = await Client.connect(temporal, namespace="airflow",
                                      data_converter=data_converter(keyring=str(write_keyring(
                                          tmp_path / "scheduler-keys.json", "old-secret"))))
        running = await before.start_workflow(WORKFLOW_NAME, attempt(8), id=workflow_id(str(uuid.uuid4())),
                                              task_queue=queue, result_type=AttemptResult)
        while not marker.exists():
            await asyncio.sleep(0.2)
        write_keyring(worker_keys, "new-secret", "old-secret")
        after = await Client.connect(temporal, namespace="airflow", data_converter=data_converter(keyring=str(
            write_keyring(tmp_path / "scheduler-keys.json", "new-secret", "old-secret"))))
        new = await after.start_workflow(WORKFLOW_NAME, attempt(0), id=workflow_id(str(uuid.uuid4())),
                                         task_queue=queue, result_type=AttemptResult)
        # The scheduler restarted: it reads the running attempt's result with the keys it has now.
        return (await asyncio.wait_for(after.get_workflow_handle(running.id, result_type=AttemptResult).result(), 60),
                await asyncio.wait_for(new.result(), 60))

    across, new = asyncio.run(go())
    assert isinstance(across, AttemptResult) and across.exit_code == 0 and across.attempt == 1
    assert isinstance(new, AttemptResult) and new.exit_code == 0
    assert worker.poll() is None  # no restart, and nothing ran twice
    assert len(marker.read_text().splitlines()) == 2


def start_raw(temporal, queue, payload, wf_id):
    """Start a workflow whose input is `payload` exactly as given: what someone who can reach Temporal, but
    holds no key, can do."""
    import asyncio

    from temporalio.client import Client
    from temporalio.common import RawValue

    async def go():
        client = await Client.connect(temporal, namespace="airflow")
        handle = await client.start_workflow(WORKFLOW_NAME, RawValue(payload), id=wf_id, task_queue=queue)
        began = time.monotonic()
        try:
            await asyncio.wait_for(handle.result(), 30)
        except Exception as e:  # noqa: BLE001 - the failure is what is looked at
            return e, time.monotonic() - began
        return None, time.monotonic() - began

    return asyncio.run(go())


def sealed_input(temporal, wf_id):
    import asyncio

    from temporalio.client import Client

    async def go():
        client = await Client.connect(temporal, namespace="airflow")
        events = [e async for e in client.get_workflow_handle(wf_id).fetch_history_events()]
        started = next(e for e in events if e.HasField("workflow_execution_started_event_attributes"))
        return started.workflow_execution_started_event_attributes.input.payloads[0]

    return asyncio.run(go())


def test_a_sealed_attempt_replayed_under_another_workflow_id_is_refused_at_once(temporal, queue, start_worker,
                                                                                tmp_path):
    start_worker()
    marker = tmp_path / "ran"
    first = workflow_id(str(uuid.uuid4()))
    assert run(temporal, queue, {"marker": str(marker)}, wf_id=first).exit_code == 0
    payload = sealed_input(temporal, first)
    error, took = start_raw(temporal, queue, payload, workflow_id(str(uuid.uuid4())))
    assert "AttemptRefused" in repr(getattr(error, "cause", error)) or "refused" in str(error.cause), error
    assert "not open" in str(error.cause) and took < 10
    assert len(pids(marker)) == 1  # the copy ran nothing


def test_an_unsealed_attempt_is_refused(temporal, queue, start_worker, tmp_path):
    from temporalio.converter import DataConverter

    start_worker()
    marker = tmp_path / "ran"
    attempt = TaskAttempt(workload=json.dumps({"marker": str(marker)}), summary="forged", heartbeat_timeout=3,
                          task_timeout=60, max_attempts=1)
    payload = DataConverter.default.payload_converter.to_payloads([attempt])[0]
    error, took = start_raw(temporal, queue, payload, workflow_id(str(uuid.uuid4())))
    assert "unsealed payload" in str(error.cause) and took < 10, error
    assert not marker.exists()


def test_an_attempt_sealed_with_another_key_fails_instead_of_retrying(temporal, queue, start_worker, tmp_path):
    from qubinode_airflow.temporal.sealing import data_converter

    start_worker()
    marker = tmp_path / "ran"
    began = time.monotonic()
    result = run(temporal, queue, {"marker": str(marker)}, converter=data_converter("not-the-workers-secret"))
    assert "does not open" in str(getattr(result, "cause", result)) and time.monotonic() - began < 15, result
    assert not marker.exists()
