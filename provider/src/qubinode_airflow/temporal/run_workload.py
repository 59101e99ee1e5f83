# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Child process of the worker: runs one Airflow workload read from standard input.

The task supervisor installs signal handlers, which only the main thread of a process may do, so
every attempt gets a process of its own (as Airflow's LocalExecutor and Edge worker do). The
workload - with its token - comes on stdin, never on the command line, where `ps` would show it.
The worker starts these processes ahead of their attempts: Airflow is imported first, then the
process waits for its workload; an empty stdin means it is not needed and it exits.
Exit code: the task process's, or EXIT_REFUSED when Airflow will not start this attempt because it
already runs or ran elsewhere.
"""

from __future__ import annotations

import sys

from qubinode_airflow.temporal.codec import EXIT_REFUSED


def main() -> int:
    from pydantic import TypeAdapter

    from airflow.executors import workloads
    from airflow.executors.base_executor import BaseExecutor
    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.exceptions import TaskAlreadyRunningError

    data = sys.stdin.read()
    if not data.strip():
        return 0
    workload = TypeAdapter(workloads.All).validate_json(data)
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


if __name__ == "__main__":
    sys.exit(main())
