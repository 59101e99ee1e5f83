# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""An Airflow executor that runs every task attempt as one Temporal workflow.

    [core] executor = Temporal:qubinode_airflow.temporal.executor.TemporalExecutor

The scheduler gives each queued attempt a fresh UUID (pre_assigns_external_executor_id); the
workflow id is made from it, so a restarted scheduler finds and adopts the attempts still running.
The task's own state is written by the task runner through Airflow's Execution API; this executor
reports only whether the attempt's process finished cleanly, as every Airflow executor does.
Temporal's client is asyncio-based: it lives on an event loop in a thread of its own, and the
scheduler's loop exchanges work with it through thread-safe calls and a queue.

The scheduler's loop never waits on Temporal for long: the client connects on its first call, the
queued attempts of one heartbeat start concurrently and the heartbeat waits at most START_BUDGET
seconds for them. An attempt that did not start (Temporal slow, down or restarting) stays queued and
is tried again on the next heartbeat, under the same workflow id, so a start that did reach Temporal
is found, not repeated; Airflow's task_queued_timeout bounds how long it may wait.

The scheduler stops on SIGTERM or SIGINT by raising SystemExit from its signal handler. When the
signal lands while Python runs a weakref callback (garbage collection, which SQLAlchemy triggers
often), that exception is printed as "Exception ignored" and lost: the scheduler would run on until
systemd kills it, LocalExecutor tasks included, after TimeoutStopSec. The executor notes the signal, and
if the scheduler's loop calls it again, raises the SystemExit there (see _guard_stop).
"""

from __future__ import annotations

import asyncio
import math
import queue
import signal
import threading
import time
from datetime import timedelta
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from airflow.executors import workloads
from airflow.executors.base_executor import BaseExecutor
from qubinode_airflow.temporal.codec import (
    CONCURRENCY_MARK,
    EXIT_REFUSED,
    WORKFLOW_NAME,
    AttemptResult,
    Settings,
    TaskAttempt,
    workflow_id,
)
from qubinode_airflow.temporal.sealing import data_converter_from_airflow
from qubinode_airflow.temporal.tls import settings_tls

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancekey import TaskInstanceKey

CALL_TIMEOUT = 30
# Seconds one heartbeat waits for its workflow starts; and for the adoption checks after a restart.
START_BUDGET = 5.0
# Seconds a workflow may run beyond task_timeout x max_attempts (retry waits, a worker's start).
EXECUTION_SLACK = 3600
# Seconds between two checks of [core] parallelism against the workers' concurrency.
CAPACITY_EVERY = 600.0
# Seconds between two warnings that attempts stay queued because Temporal does not answer.
WARN_EVERY = 60.0
NEVER = -math.inf
# Answers that mean "not now": the attempt stays queued (or adopted) and is tried again.
TRANSIENT = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
                       RPCStatusCode.ABORTED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN, RPCStatusCode.INTERNAL})


def worker_concurrency(pollers) -> int:
    """The total concurrency of the workers among `pollers` ((identity, last access) pairs; an identity
    is "pid@host concurrency=N"). Temporal lists a worker that restarted a while under its old identity
    too: per host, only the one that polled last counts."""
    prefix = CONCURRENCY_MARK.partition("%")[0]
    latest = {}
    for identity, accessed in pollers:
        name, found, value = identity.rpartition(prefix)
        if found and value.isdigit():
            host = name.partition("@")[2]
            if host not in latest or accessed > latest[host][0]:
                latest[host] = (accessed, int(value))
    return sum(value for unused, value in latest.values())


async def within_budget(coros: list) -> list:
    """Run the coroutines at once and give each one's result or error, in order. Those still running after
    START_BUDGET are cancelled and give a TimeoutError, which transient() counts as transient."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    if not tasks:
        return []
    unused, pending = await asyncio.wait(tasks, timeout=START_BUDGET)
    for task in pending:
        task.cancel()
    return [asyncio.TimeoutError("no answer within %ss" % START_BUDGET) if task in pending
            else (task.exception() or task.result()) for task in tasks]


def transient(error: BaseException) -> bool:
    """Whether an error of a call to Temporal may go away by itself (the server unreachable, slow or
    restarting) rather than say something about the request."""
    if isinstance(error, RPCError):
        return error.status in TRANSIENT
    # Timeouts; and the SDK raises RuntimeError when it cannot connect.
    return isinstance(error, (asyncio.TimeoutError, FutureTimeout, asyncio.CancelledError, OSError, RuntimeError))


class TemporalExecutor(BaseExecutor):
    pre_assigns_external_executor_id = True
    supports_ad_hoc_ti_run = True
    serve_logs = False
    is_local = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = Settings.from_airflow()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._workflows: dict[TaskInstanceKey, str] = {}
        # When the last warning and capacity check were (time.monotonic()); never yet: the monotonic clock
        # starts near 0 when the host boots, so 0.0 would mean "just now" on a host up for less than a minute.
        self._warned = NEVER
        self._capacity_checked = NEVER
        self._stop_signal = 0
        self._ending = False

    # -- the event loop thread --------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="temporal-executor", daemon=True)
        self._thread.start()
        # Lazy: the first call connects, so a Temporal that is down does not stop the scheduler starting
        # (and running the tasks of its other executors); attempts wait queued until it answers.
        self._client = self._call(Client.connect(self.settings.address, namespace=self.settings.namespace,
                                                 data_converter=data_converter_from_airflow(), lazy=True,
                                                 tls=settings_tls(self.settings)))
        self.log.info("Temporal executor on %s, namespace %s, task queue %s", self.settings.address,
                      self.settings.namespace, self.settings.task_queue)
        self._guard_stop()

    def _guard_stop(self) -> None:
        """Wrap the scheduler's SIGTERM and SIGINT handlers (installed before executors start) so that a
        stop they request is remembered; sync() ends the scheduler's loop if it still runs after one."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue

            def noted(number, frame, previous=previous):
                self._stop_signal = number
                previous(number, frame)

            signal.signal(signum, noted)

    def _call(self, coro, timeout: float = CALL_TIMEOUT) -> Any:
        """Run a coroutine on the executor's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _spawn(self, coro) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    # -- queued attempts -> workflows ---------------------------------------------------------------
    def _process_workloads(self, workload_items: Sequence[workloads.All]) -> None:
        batch = []
        for workload in workload_items:
            if not isinstance(workload, workloads.ExecuteTask):
                raise RuntimeError("TemporalExecutor runs task workloads only, not %s" % type(workload).__name__)
            key = workload.ti.key
            wf_id = workflow_id(workload.ti.external_executor_id or "%s-%s" % (workload.ti.id, key.try_number))
            attempt = TaskAttempt(
                workload=workload.model_dump_json(),
                summary="%s.%s run %s try %s%s" % (key.dag_id, key.task_id, key.run_id, key.try_number,
                                                   "" if key.map_index < 0 else " map %s" % key.map_index),
                heartbeat_timeout=self.settings.heartbeat_timeout,
                task_timeout=self.settings.task_timeout,
                max_attempts=self.settings.max_attempts,
            )
            batch.append((key, wf_id, attempt))
        try:
            outcomes = self._call(self._start_batch(batch), timeout=START_BUDGET + 5)
        except Exception as e:  # the executor's own loop is stuck: nothing started, all stay queued
            outcomes = {key: e for key, unused, unused in batch}
        if time.monotonic() - self._capacity_checked > CAPACITY_EVERY:
            self._capacity_checked = time.monotonic()
            self._spawn(self._check_capacity())
        waiting = []
        for key, wf_id, unused in batch:
            error = outcomes.get(key)
            if error is not None and transient(error):
                waiting.append((wf_id, error))  # stays queued: the next heartbeat tries again
                continue
            del self.queued_tasks[key]
            if error is not None:
                self.log.error("Temporal refused workflow %s for %s: %s", wf_id, key, error)
                self.fail(key, info=wf_id)
                continue
            self.running.add(key)
            self._workflows[key] = wf_id
            self._spawn(self._watch(key, wf_id))
        if waiting and time.monotonic() - self._warned > WARN_EVERY:
            self._warned = time.monotonic()
            self.log.warning("%d task attempts stay queued: Temporal at %s did not start their workflows (%s: %s); "
                             "trying again on every heartbeat", len(waiting), self.settings.address, waiting[0][0],
                             waiting[0][1] or "no answer")
        elif not waiting:
            self._warned = NEVER

    async def _start_batch(self, batch) -> dict:
        """Start the batch's workflows at once; each key maps to None (started) or its error."""
        outcomes = await within_budget([self._start_workflow(wf_id, attempt) for unused, wf_id, attempt in batch])
        return {key: outcome for (key, unused, unused), outcome in zip(batch, outcomes)}

    async def _start_workflow(self, wf_id: str, attempt: TaskAttempt) -> None:
        try:
            await self._client.start_workflow(
                WORKFLOW_NAME, attempt, id=wf_id, task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # A retry of this call after a lost answer finds the workflow it already started.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=attempt.summary,
                # Every try on every worker, with the waits between them: a workflow Temporal lost track of
                # ends, and the executor reports the attempt failed instead of holding its slot.
                execution_timeout=timedelta(seconds=attempt.task_timeout * attempt.max_attempts + EXECUTION_SLACK),
            )
        except WorkflowAlreadyStartedError:
            # An earlier heartbeat's start reached Temporal and the workflow already ended: its
            # result is there to watch, and it must not run again.
            pass

    async def _check_capacity(self) -> None:
        """Warn when [core] parallelism leaves the workers without a backlog: the executor holds a slot per
        attempt until its result arrives, so with parallelism at the workers' total concurrency a worker
        that finished waits for the scheduler's next loop before it gets more work."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        try:
            answer = await self._client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=self.settings.namespace, task_queue=TaskQueue(name=self.settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
        except Exception as e:  # a check only: Temporal down is reported by the starts
            self.log.debug("could not describe task queue %s: %s", self.settings.task_queue, e)
            return
        total = worker_concurrency([(poller.identity, poller.last_access_time.ToSeconds()) for poller in answer.pollers])
        if not total:
            # No worker polls yet (the scheduler started first): check again with the next batch.
            self._capacity_checked = NEVER
            return
        if self.parallelism and self.parallelism < 2 * total:
            self.log.warning("[core] parallelism is %d, below twice the %d attempts the workers polling %s run at "
                             "once: workers will wait for work; set it (airflow_parallelism) to at least %d",
                             self.parallelism, total, self.settings.task_queue, 2 * total)

    async def _watch(self, key: TaskInstanceKey, wf_id: str) -> None:
        """Wait for the workflow's end and queue its outcome for sync()."""
        handle = self._client.get_workflow_handle(wf_id, result_type=AttemptResult)
        while True:
            try:
                result = await handle.result()
                self._results.put((key, wf_id, result, None))
                return
            except WorkflowFailureError as e:
                self._results.put((key, wf_id, None, "workflow %s failed: %s" % (wf_id, e.cause or e)))
                return
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND:
                    self._results.put((key, wf_id, None, "workflow %s is gone" % wf_id))
                    return
                await asyncio.sleep(5)  # server restarting: keep waiting, the workflow is durable
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a broken connection: the workflow lives on in Temporal
                self.log.warning("watching %s: %s; trying again", wf_id, e)
                await asyncio.sleep(5)

    def sync(self) -> None:
        if self._stop_signal and not self._ending:
            # Called from the scheduler's loop after a stop signal: its SystemExit was lost.
            number, self._stop_signal = self._stop_signal, 0
            self.log.warning("the scheduler's exit on signal %d was lost (raised inside a garbage collection "
                             "callback); exiting now", number)
            raise SystemExit(0)
        while True:
            try:
                key, wf_id, result, error = self._results.get_nowait()
            except queue.Empty:
                return
            self._workflows.pop(key, None)
            if key not in self.running:
                continue
            if result is not None and result.ok:
                self.success(key, info=wf_id)
            else:
                if result is not None and result.exit_code == EXIT_REFUSED:
                    error = "Airflow refused to start this attempt on %s: it already ran elsewhere" % result.worker
                elif result is not None:
                    error = "attempt ended with exit code %s on %s" % (result.exit_code, result.worker)
                self.log.warning("%s: %s", key, error)
                self.fail(key, info=wf_id)

    # -- cancellation, adoption, shutdown -----------------------------------------------------------
    def revoke_task(self, *, ti: TaskInstance) -> None:
        key = ti.key
        self.queued_tasks.pop(key, None)
        self.running.discard(key)
        wf_id = self._workflows.pop(key, None) or (workflow_id(ti.external_executor_id) if ti.external_executor_id else None)
        if wf_id:
            try:
                self._call(self._client.get_workflow_handle(wf_id).cancel(), timeout=START_BUDGET)
            except Exception as e:  # revoke_task must not raise
                self.log.warning("could not cancel workflow %s: %s", wf_id, e)

    def try_adopt_task_instances(self, tis: Sequence[TaskInstance]) -> Sequence[TaskInstance]:
        candidates = [ti for ti in tis if ti.external_executor_id]
        not_adopted = [ti for ti in tis if not ti.external_executor_id]
        try:
            found = self._call(self._describe_all([workflow_id(ti.external_executor_id) for ti in candidates]),
                               timeout=START_BUDGET + 5)
        except Exception as e:
            found = [e] * len(candidates)
        for ti, status in zip(candidates, found):
            wf_id = workflow_id(ti.external_executor_id)
            if isinstance(status, BaseException) and transient(status):
                # Temporal does not answer now: the workflow may well run. Resetting the task would run it a
                # second time, so it is watched, and its watch reports it once Temporal answers.
                self.log.warning("adopting %s without checking workflow %s: Temporal did not answer (%s)",
                                 ti.key, wf_id, status or "no answer")
            elif isinstance(status, BaseException) or status not in (WorkflowExecutionStatus.RUNNING,
                                                                     WorkflowExecutionStatus.COMPLETED):
                not_adopted.append(ti)
                continue
            self.running.add(ti.key)
            self._workflows[ti.key] = wf_id
            self._spawn(self._watch(ti.key, wf_id))
            self.log.info("adopted %s (workflow %s)", ti.key, wf_id)
        return not_adopted

    async def _describe_all(self, wf_ids: list[str]) -> list:
        """The status of each workflow, or the error of asking for it."""
        async def status(wf_id):
            return (await self._client.get_workflow_handle(wf_id).describe()).status

        return await within_budget([status(wf_id) for wf_id in wf_ids])

    def end(self) -> None:
        """Scheduler shutdown: report what already finished; running workflows go on in Temporal
        and the next scheduler adopts them."""
        self._ending = True
        self.sync()
        self._shutdown()

    def terminate(self) -> None:
        self._ending = True
        self._shutdown()

    def _shutdown(self) -> None:
        if self._loop is None:
            return
        loop, self._loop = self._loop, None

        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(10)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
