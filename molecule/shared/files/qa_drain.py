"""One task that runs across a restart of the scheduler (molecule default, LocalExecutor): it waits until
systemd is stopping airflow-scheduler, then works on for a while. It ends `success` only if the stop
waited for it; a restart that kills running work kills it."""

import subprocess
import time

import pendulum
from airflow.sdk import dag, task


def scheduler_state() -> str:
    out = subprocess.run(["systemctl", "show", "--property=ActiveState", "--value", "airflow-scheduler"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["qubinode-test"])
def qa_drain():
    # No retry: success means the attempt that was running when the stop began is the one that ended.
    @task(retries=0)
    def across_restart() -> str:
        deadline = time.monotonic() + 1500
        while scheduler_state() != "deactivating":
            if time.monotonic() > deadline:
                raise TimeoutError("the scheduler was not stopped within 25 minutes")
            time.sleep(1)
        # Still the scheduler's child while it stops: work on, then end normally.
        time.sleep(20)
        return "outlived the scheduler's stop"

    across_restart()


qa_drain()
