# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The task runner of the worker: runs Airflow workloads, each in a child process of its own.

The task supervisor installs signal handlers, which only the main thread of a process may do, so
every attempt gets a process of its own (as Airflow's LocalExecutor and Edge worker do). The worker's
fork server (forkserver.py) calls warm() once - importing Airflow is most of a short task's cost -
then run() once per attempt, in processes forked from it that each run one attempt after another. The workload, with its token, comes through a pipe, never on
the command line, where `ps` would show it.
run() returns the task process's exit code, or EXIT_REFUSED when Airflow will not start this attempt
because it already runs or ran elsewhere.
`python -m qubinode_airflow.temporal.run_workload` runs one workload read from standard input.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys

from qubinode_airflow.temporal.codec import EXIT_REFUSED

# What a task process imports to parse a DAG file and run a task (measured on a task process of Airflow
# 3.3: about 130 modules, 0.1 CPU-s, paid again by every fork unless its parent imported them).
# LocalExecutor's processes inherit them from the scheduler; a module missing here only costs time.
FOR_TASKS = (
    "airflow.dag_processing.dagbag",
    "airflow.dag_processing.importers.python_importer",
    "airflow.dag_processing.bundles.local",
    "airflow.models.dag",
    "airflow.models.dagrun",
    "airflow.models.taskinstancehistory",
    "airflow.serialization.serialized_objects",
    "airflow.sdk.definitions.decorators",
    "airflow.sdk.definitions.decorators.task_group",
    "airflow.sdk.definitions.timetables.interval",
    "airflow.sdk.definitions.timetables.trigger",
    "airflow.sdk.definitions.timetables.events",
    "airflow.sdk.bases.decorator",
    "airflow.sdk.bases.branch",
    "airflow.sdk.bases.hook",
    "airflow.timetables.interval",
    "airflow.timetables.simple",
    "airflow.triggers.temporal",
    "airflow.triggers.file",
    "airflow.triggers.external_task",
    "airflow.ti_deps.deps.trigger_rule_dep",
    "airflow.ti_deps.deps.prev_dagrun_dep",
    "airflow.providers.standard.decorators.python",
    "airflow.providers.standard.operators.python",
    "airflow.providers.common.compat.sdk",
    "jinja2.ext",
    "croniter",
)

log = logging.getLogger(__name__)


@functools.cache
def _adapter():
    """The parser of workloads, built once per process."""
    from pydantic import TypeAdapter

    from airflow.executors import workloads

    return TypeAdapter(workloads.All)


def warm() -> None:
    """Import and set up once what every attempt needs, so that each fork starts with it."""
    from airflow.executors.base_executor import BaseExecutor  # noqa: F401 - imported for the forks
    from airflow.sdk.execution_time import supervisor  # noqa: F401 - imported for the forks

    _adapter()
    notice_exit_promptly()  # patched once here, inherited by every fork
    for name in FOR_TASKS:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - an optimisation only: the task imports what it needs
            log.debug("not imported ahead: %s (%s)", name, e)
    try:
        # The plugins every task's context loads, and the TLS context of the Execution API client:
        # both are cached per process, so set up here they are set up once.
        from airflow.sdk.api import client
        from airflow.sdk.plugins_manager import integrate_macros_plugins

        integrate_macros_plugins()
        client.Client._get_ssl_context_cached(client.API_SSL_CA_FILE_PATH, client.API_SSL_CERT_PATH)
    except Exception as e:  # noqa: BLE001 - as above
        log.debug("not set up ahead: %s", e)


def notice_exit_promptly() -> bool:
    """Make Airflow's task supervisor notice its task process's exit when it happens.

    The supervisor (airflow.sdk.execution_time.supervisor, Airflow 3.3) waits in select() on the task
    process's sockets, then checks whether the process exited. A task process closes its sockets and
    then takes a while to exit (the interpreter's shutdown); when the check falls in between, the next
    select() has no socket left to wake it and sleeps [workers] min_heartbeat_interval (5 s) before the
    check that sees the exit. The attempt holds its worker slot meanwhile: on `make bench-temporal`, a
    quarter of the no-op attempts did. Once no socket is left, this waits for the exit itself, bounded
    by the same time, so heartbeats keep their interval. Returns whether the supervisor is patched (an
    Airflow without these internals is left alone: the attempt is only slower)."""
    from airflow.sdk.execution_time import supervisor

    cls = getattr(supervisor, "WatchedSubprocess", None)
    original = getattr(cls, "_service_subprocess", None)
    if original is None:
        return False
    if getattr(original, "notices_exit", False):
        return True

    @functools.wraps(original)
    def service(self, max_wait_time, *args, **kwargs):
        if getattr(self, "_exit_code", 0) is None and not getattr(self, "_open_sockets", True):
            try:
                self._process.wait(timeout=max(0.0, max_wait_time))
            except Exception:  # noqa: BLE001,S110 - still running (TimeoutExpired): the next loop heartbeats
                pass
            max_wait_time = 0
        return original(self, max_wait_time, *args, **kwargs)

    service.notices_exit = True
    cls._service_subprocess = service
    return True


def run(data: str) -> int:
    from airflow.executors.base_executor import BaseExecutor
    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.exceptions import TaskAlreadyRunningError

    if not data.strip():
        return 0
    notice_exit_promptly()
    # A one-shot process (main) needs the parser only: the task imports the rest as it goes.
    workload = _adapter().validate_json(data)
    try:
        return BaseExecutor.run_workload(
            workload, proctitle="airflow worker -- Temporal: %s" % workload.display_name
        )
    except TaskAlreadyRunningError as e:
        print("Airflow refused to start %s: %s" % (workload.display_name, e), file=sys.stderr)
        return EXIT_REFUSED
    except ServerResponseError as e:
        if e.response is not None and e.response.status_code in (404, 409, 410):
            print("Airflow refused to start %s: %s" % (workload.display_name, e), file=sys.stderr)
            return EXIT_REFUSED
        raise


def main() -> int:
    return run(sys.stdin.read())


if __name__ == "__main__":
    sys.exit(main())
