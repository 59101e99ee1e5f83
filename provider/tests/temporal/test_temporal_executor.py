"""The Temporal executor inside the scheduler's process, against a real Temporal dev server and a real
worker (its task runner stood in, as in test_temporal_worker): starts, results, revoke, adoption, and
Temporal down at start-up and during a run."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import time
import types
import uuid

import pytest
from conftest import ROOT
from temporal_server import free_port, temporal_server
from test_temporal_worker import SECRET, WORKER, alive, polling, wait_for

# The task runner's stand-in: the workload is Airflow's own ExecuteTask; its task_id says what to do.
RUNNER = textwrap.dedent("""
    import json, os, time

    def run(data):
        ti = json.loads(data)["ti"]
        with open(os.path.join(os.environ["QA_RAN"], ti["id"]), "a") as f:
            f.write("%d\\n" % os.getpid())
        kind, unused, arg = ti["task_id"].partition("_")
        if kind == "sleep":
            time.sleep(float(arg))
        return int(arg) if kind == "exit" else 0
""")
TEMPORAL = pathlib.Path(sys.executable).parent / "temporal"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """The scheduler's [qubinode_temporal] settings, a queue of the test's own, the stand-in runner."""
    queue = "test-%s" % uuid.uuid4().hex[:8]
    (tmp_path / "ran").mkdir()
    (tmp_path / "runner_stand_in.py").write_text(RUNNER)
    monkeypatch.setenv("AIRFLOW__QUBINODE_TEMPORAL__TASK_QUEUE", queue)
    monkeypatch.setenv("AIRFLOW__QUBINODE_TEMPORAL__HEARTBEAT_TIMEOUT", "3")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", SECRET)
    return types.SimpleNamespace(queue=queue, ran=tmp_path / "ran", dir=tmp_path, procs=[])


def start_worker(env, address):
    script = WORKER.format(src=str(ROOT / "provider" / "src"), address=address, queue=env.queue, secret=SECRET,
                           keyring=None, drain=5).replace('"stand_in"', '"runner_stand_in"')
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(env.dir), QA_RAN=str(env.ran)))
    env.procs.append(proc)
    assert wait_for(lambda: polling(address, env.queue, proc), 90), "the worker never polled %s" % env.queue
    return proc


@pytest.fixture
def executor(env):
    from qubinode_airflow.temporal.executor import TemporalExecutor

    made = []

    def make(address, parallelism=16):
        os.environ["AIRFLOW__QUBINODE_TEMPORAL__ADDRESS"] = address
        ex = TemporalExecutor(parallelism=parallelism)
        ex.start()
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.end()
    os.environ.pop("AIRFLOW__QUBINODE_TEMPORAL__ADDRESS", None)
    for proc in env.procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(40)


def workload(task_id):
    from airflow.executors.workloads import BundleInfo, ExecuteTask
    from airflow.executors.workloads.task import TaskInstanceDTO

    ti = TaskInstanceDTO(id=uuid.uuid4(), task_id=task_id, dag_id="d", run_id="r", try_number=1,
                         dag_version_id=uuid.uuid4(), pool_slots=1, priority_weight=1,
                         external_executor_id=str(uuid.uuid4()))
    return ExecuteTask(ti=ti, token="a-token", dag_rel_path="d.py", bundle_info=BundleInfo(name="dags"), log_path=None)


def queue_and_start(ex, *items):
    for item in items:
        ex.queued_tasks[item.ti.key] = item
    began = time.monotonic()
    ex.trigger_tasks(len(items))
    return time.monotonic() - began


def outcomes(ex, items, seconds=60):
    """{task_id: state} once the executor reported every item."""
    keys = {item.ti.key: item.ti.task_id for item in items}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ex.sync()
        if all(key in ex.event_buffer for key in keys):
            break
        time.sleep(0.3)
    return {task_id: str(ex.event_buffer[key][0]) if key in ex.event_buffer else None for key, task_id in keys.items()}


def runs(env, item):
    path = env.ran / str(item.ti.id)
    return path.read_text().split() if path.exists() else []


def ti_of(item):
    return types.SimpleNamespace(key=item.ti.key, external_executor_id=item.ti.external_executor_id)


def test_queued_attempts_start_in_one_batch_and_report_their_outcome(temporal, env, executor):
    start_worker(env, temporal)
    ex = executor(temporal)
    items = [workload("exit_0"), workload("exit_3"), workload("sleep_1")]
    queue_and_start(ex, *items)
    assert not ex.queued_tasks and len(ex.running) == 3
    assert outcomes(ex, items) == {"exit_0": "success", "exit_3": "failed", "sleep_1": "success"}
    assert not ex.running and all(len(runs(env, item)) == 1 for item in items)


def test_a_start_that_already_reached_temporal_is_not_run_again(temporal, env, executor):
    """The answer to a start was lost (the heartbeat's budget ran out): the next heartbeat starts the same
    workflow id again, after the attempt already ended."""
    start_worker(env, temporal)
    ex = executor(temporal)
    item = workload("exit_0")
    queue_and_start(ex, item)
    assert outcomes(ex, [item]) == {"exit_0": "success"}
    ex.event_buffer.clear()
    queue_and_start(ex, item)
    assert not ex.queued_tasks and item.ti.key in ex.running
    assert outcomes(ex, [item]) == {"exit_0": "success"}
    assert len(runs(env, item)) == 1


def test_revoking_cancels_the_workflow_and_stops_the_task_process(temporal, env, executor):
    start_worker(env, temporal)
    ex = executor(temporal)
    item = workload("sleep_60")
    queue_and_start(ex, item)
    assert wait_for(lambda: runs(env, item))
    pid = int(runs(env, item)[0])
    ex.revoke_task(ti=ti_of(item))
    assert item.ti.key not in ex.running
    assert wait_for(lambda: not alive(pid), 10)


def test_a_restarted_scheduler_adopts_running_attempts_and_no_others(temporal, env, executor):
    start_worker(env, temporal)
    first = executor(temporal)
    item = workload("sleep_4")
    queue_and_start(first, item)
    first.end()  # the scheduler stops; the workflow goes on
    second = executor(temporal)
    never_started = workload("exit_0")
    assert second.try_adopt_task_instances([ti_of(item), ti_of(never_started)]) == [ti_of(never_started)]
    assert outcomes(second, [item]) == {"sleep_4": "success"}
    assert len(runs(env, item)) == 1


def test_temporal_down_at_start_up_holds_attempts_queued_without_blocking(env, executor, tmp_path, capsys):
    port = free_port()
    began = time.monotonic()
    ex = executor("127.0.0.1:%d" % port)
    item = workload("exit_0")
    took = queue_and_start(ex, item)
    assert time.monotonic() - began < 15 and took < 12  # the scheduler's loop goes on
    assert item.ti.key in ex.queued_tasks and not ex.running
    logged = capsys.readouterr().out  # the scheduler's log
    assert "1 task attempts stay queued: Temporal at 127.0.0.1:%d" % port in logged
    # Adoption after a restart with Temporal down: adopted (and watched), never reset to run twice.
    running_elsewhere = workload("sleep_1")
    assert ex.try_adopt_task_instances([ti_of(running_elsewhere)]) == []
    with temporal_server(TEMPORAL, tmp_path, port) as address:
        start_worker(env, address)
        queue_and_start(ex, item)
        assert not ex.queued_tasks
        assert outcomes(ex, [item]) == {"exit_0": "success"}
        # The adopted attempt had no workflow after all: its watch says so once Temporal answers.
        assert outcomes(ex, [running_elsewhere]) == {"sleep_1": "failed"}


def test_a_run_survives_temporal_restarting_under_it(env, executor, tmp_path):
    port = free_port()
    item = workload("sleep_8")
    with temporal_server(TEMPORAL, tmp_path, port) as address:
        worker = start_worker(env, address)
        ex = executor(address)
        queue_and_start(ex, item)
        assert wait_for(lambda: runs(env, item))
    with temporal_server(TEMPORAL, tmp_path, port):
        assert outcomes(ex, [item], 90) == {"sleep_8": "success"}
    assert len(runs(env, item)) == 1 and worker.poll() is None


@pytest.mark.parametrize("parallelism", [3, 4])
def test_parallelism_below_twice_the_workers_concurrency_is_warned_about(temporal, env, executor, capsys,
                                                                         parallelism):
    start_worker(env, temporal)  # 2 attempts at once
    ex = executor(temporal, parallelism=parallelism)
    item = workload("exit_0")
    queue_and_start(ex, item)
    assert outcomes(ex, [item]) == {"exit_0": "success"}
    # The check ran with the first batch; if the worker did not poll yet, it runs with the next one. A check
    # that saw the workers is not repeated for CAPACITY_EVERY seconds.
    again = workload("exit_0")
    again.ti.try_number = 2  # another key
    queue_and_start(ex, again)
    assert outcomes(ex, [again]) == {"exit_0": "success"}
    time.sleep(1)
    logged = capsys.readouterr().out
    assert logged.count("[core] parallelism is") <= 1, logged
    warned = "[core] parallelism is 3, below twice the 2 attempts the workers polling %s run at once" % env.queue
    assert (warned in logged) == (parallelism == 3), logged


def test_the_workers_concurrency_counts_each_host_once_by_its_latest_identity():
    from qubinode_airflow.temporal.executor import worker_concurrency

    pollers = [("101@w1.example.com concurrency=4", 100), ("101@w1.example.com concurrency=4", 100),
               ("202@w1.example.com concurrency=8", 160),  # restarted with more slots; the old one lingers
               ("303@w2.example.com concurrency=4", 150), ("404@w3.example.com", 150)]  # no mark: not counted
    assert worker_concurrency(pollers) == 12


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost exit, printed
def test_a_stop_signal_whose_exit_was_lost_still_ends_the_scheduler_loop(env, executor):
    """The scheduler exits on SIGTERM by raising SystemExit from its handler; raised while a weakref
    callback runs (garbage collection), that exception is printed and ignored, and the scheduler would
    run on until systemd kills it. Here the signal arrives inside such a callback, for real."""
    import signal
    import weakref

    def scheduler_exit(signum, frame):  # what the scheduler's _exit_gracefully does
        sys.exit(0)

    previous = signal.signal(signal.SIGTERM, scheduler_exit)
    try:
        ex = executor("127.0.0.1:%d" % free_port())
        ex.sync()  # no signal yet: nothing happens

        class Collected:
            pass

        doomed = Collected()
        ref = weakref.ref(doomed, lambda gone: os.kill(os.getpid(), signal.SIGTERM))
        del doomed  # the callback runs, the handler's SystemExit is raised inside it and lost
        assert ref() is None
        with pytest.raises(SystemExit):
            ex.sync()  # the scheduler's next loop
        ex.end()  # the scheduler's shutdown calls sync() too: no second exit there
    finally:
        signal.signal(signal.SIGTERM, previous)
