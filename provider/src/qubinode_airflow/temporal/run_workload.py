# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The task runner of the worker: runs Airflow workloads, each in a child process of its own.

The task supervisor installs signal handlers, which only the main thread of a process may do, so
every attempt gets a process of its own (as Airflow's LocalExecutor and Edge worker do). The worker's
fork server (forkserver.py) calls warm() once - importing Airflow is most of a short task's cost -
then run() in a fresh fork per attempt. The workload, with its token, comes through a pipe, never on
the command line, where `ps` would show it.
run() returns the task process's exit code, or EXIT_REFUSED when Airflow will not start this attempt
because it already runs or ran elsewhere.
`python -m qubinode_airflow.temporal.run_workload` runs one workload read from standard input.
"""

from __future__ import annotations

import sys

from qubinode_airflow.temporal.codec import EXIT_REFUSED

_ADAPTER = None


def warm() -> None:
    """Import what every attempt needs, so that a fork starts with it."""
    global _ADAPTER
    from pydantic import TypeAdapter

    from airflow.executors import workloads
    from airflow.executors.base_executor import BaseExecutor  # noqa: F401 - imported for the forks
    from airflow.sdk.execution_time import supervisor  # noqa: F401 - imported for the forks

    _ADAPTER = TypeAdapter(workloads.All)


def run(data: str) -> int:
    from airflow.executors.base_executor import BaseExecutor
    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.exceptions import TaskAlreadyRunningError

    if not data.strip():
        return 0
    if _ADAPTER is None:
        warm()
    workload = _ADAPTER.validate_json(data)
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
