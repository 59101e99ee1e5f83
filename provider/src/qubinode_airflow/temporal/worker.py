# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The Temporal worker that runs Airflow task attempts.

    qubinode-temporal-worker [--concurrency N] [--drain-timeout SECONDS]

Settings come from [qubinode_temporal] of airflow.cfg, the same file the scheduler reads. Each
attempt runs in a process of its own while the activity heartbeats to Temporal; if this worker dies,
Temporal gives the attempt to another worker once the heartbeat is overdue. Those processes are forks
of one task runner (forkserver.py), which imported Airflow once, when the worker started: importing
Airflow is most of a short task's cost.

A stop (SIGTERM or SIGINT) drains the worker: it takes no new attempt and waits up to the drain timeout
for the running ones to end. Those still running then are stopped (SIGTERM, then SIGKILL after
STOP_GRACE seconds), each named in a warning; Airflow records them as failed tries and retries them as
the task's retries allow. A workflow whose attempt ended during the drain is completed by another
worker, or by this one once it runs again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from qubinode_airflow.temporal.codec import ACTIVITY_NAME, CONCURRENCY_MARK, AttemptResult, Settings, TaskAttempt
from qubinode_airflow.temporal.forkserver import ForkServer
from qubinode_airflow.temporal.sealing import data_converter_from_airflow
from qubinode_airflow.temporal.tls import settings_tls
from qubinode_airflow.temporal.workflow import TaskAttemptWorkflow

log = logging.getLogger("qubinode_airflow.temporal.worker")
# Seconds a stopped attempt's task process gets between SIGTERM and SIGKILL.
STOP_GRACE = 30
# Seconds a stopping worker waits for its running attempts by default (--drain-timeout).
DRAIN_TIMEOUT = 600
# The module whose run() runs each attempt (tests put a stand-in for Airflow's task process here).
RUNNER = "qubinode_airflow.temporal.run_workload"
RUNNERS = None


def _identity() -> str:
    return "%s@%s" % (os.getpid(), socket.getfqdn())


@activity.defn(name=ACTIVITY_NAME)
async def run_airflow_task(attempt: TaskAttempt) -> AttemptResult:
    info = activity.info()
    log.info("running %s (attempt %d on this queue)", attempt.summary, info.attempt)
    proc = await RUNNERS.spawn(attempt.workload.encode("utf-8"))
    beat = max(1.0, attempt.heartbeat_timeout / 3)
    try:
        while True:
            try:
                code = await asyncio.wait_for(proc.wait(), timeout=beat)
                break
            except asyncio.TimeoutError:
                activity.heartbeat()
    except asyncio.CancelledError:
        # The workflow was cancelled (Airflow revoked the attempt), or this worker is stopping and its
        # drain timeout is over.
        if activity.is_worker_shutdown():
            log.warning("%s: stopped before it ended, the worker's drain timeout is over", attempt.summary)
        await _stop(proc)
        raise
    log.info("%s finished with exit code %s", attempt.summary, code)
    return AttemptResult(exit_code=code, worker=_identity(), attempt=info.attempt)


async def _stop(proc):
    if proc.returncode is not None:
        return
    proc.signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=STOP_GRACE)
    except asyncio.TimeoutError:
        proc.signal(signal.SIGKILL)
        await proc.wait()


async def connect(settings: Settings, converter, attempts: int = 30, concurrency: int | None = None) -> Client:
    """The server may still be starting (both come up at boot): try for a while, then give up.
    The identity this worker polls with names its concurrency, which the executor adds up."""
    identity = _identity() + ("" if concurrency is None else CONCURRENCY_MARK % concurrency)
    for n in range(1, attempts + 1):
        try:
            return await Client.connect(settings.address, namespace=settings.namespace, identity=identity,
                                        data_converter=converter, tls=settings_tls(settings))
        except Exception as e:  # the SDK raises RuntimeError for connection failures
            if n == attempts:
                raise SystemExit("cannot reach Temporal at %s (namespace %s): %s; check [qubinode_temporal] "
                                 "address and that the server runs" % (settings.address, settings.namespace, e))
            await asyncio.sleep(2)
    raise AssertionError("unreachable")


async def serve(settings: Settings, concurrency: int, converter=None, drain_timeout: int = DRAIN_TIMEOUT) -> None:
    """`converter` seals the payloads; by default with the key of this host's Airflow configuration."""
    global RUNNERS
    client = await connect(settings, converter or data_converter_from_airflow(strict=True), concurrency=concurrency)
    RUNNERS = ForkServer(RUNNER)
    # Airflow is imported while the worker connects, not when the first attempt arrives.
    await RUNNERS.start()
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[TaskAttemptWorkflow],
        # The workflow is a few lines that call only Temporal's workflow API (workflow.py): the sandbox,
        # which re-imports its module for every workflow run, would guard nothing and cost CPU per attempt.
        workflow_runner=UnsandboxedWorkflowRunner(),
        activities=[run_airflow_task],
        max_concurrent_activities=concurrency,
        graceful_shutdown_timeout=timedelta(seconds=drain_timeout),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("polling %s/%s on %s, %d at a time", settings.address, settings.namespace, settings.task_queue,
             concurrency)
    try:
        async with worker:
            await stop.wait()
            log.info("stopping: no new attempt; running attempts get %ss to end", drain_timeout)
    finally:
        await RUNNERS.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="qubinode-temporal-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, help="task attempts at once ([qubinode_temporal] worker_concurrency)")
    parser.add_argument("--drain-timeout", type=int, default=DRAIN_TIMEOUT,
                        help="seconds a stop waits for running attempts before it stops them (default %(default)s)")
    # Units written before the fork server pass --prestart: accepted, and ignored.
    parser.add_argument("--prestart", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_airflow()
    except ValueError as e:
        parser.error(str(e))
    if args.prestart is not None:
        log.warning("--prestart is ignored: every attempt runs in a fork of one task runner that imported Airflow once")
    if args.drain_timeout < 0:
        parser.error("--drain-timeout must be 0 or more seconds, not %d" % args.drain_timeout)
    asyncio.run(serve(settings, args.concurrency or settings.worker_concurrency, drain_timeout=args.drain_timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
