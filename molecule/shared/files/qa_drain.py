"""Two tasks that run across a restart of the scheduler (molecule default, LocalExecutor). Each waits until
systemd is stopping airflow-scheduler, then works on: one for 20 s, well within the scenario's
airflow_drain_timeout, the other for far longer. The first ends `success` only if the stop waited for it;
the second is killed when the drain's time is up: the converge names it and Airflow runs it again."""

import subprocess
import time

import pendulum
from airflow.sdk import dag, task


def scheduler_state() -> str:
    out = subprocess.run(["systemctl", "show", "--property=ActiveState", "--value", "airflow-scheduler"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


def wait_for_the_stop() -> None:
    deadline = time.monotonic() + 1500
    while scheduler_state() != "deactivating":
        if time.monotonic() > deadline:
            raise TimeoutError("the scheduler was not stopped within 25 minutes")
        time.sleep(1)


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["qubinode-test"])
def qa_drain():
    # No retry: success means the attempt that was running when the stop began is the one that ended.
    @task(retries=0)
    def across_restart() -> str:
        wait_for_the_stop()
        # Still the scheduler's child while it stops: work on, then end normally.
        time.sleep(20)
        return "outlived the scheduler's stop"

    # Killed when the drain's time is up; the next scheduler resets the attempt it cannot adopt and runs the
    # task again (try 2), which ends at once.
    @task(retries=0)
    def beyond_the_drain(**context) -> str:
        if context["ti"].try_number > 1:
            return "run again after the drain killed the first try"
        wait_for_the_stop()
        time.sleep(1500)
        return "the drain waited longer than airflow_drain_timeout"

    across_restart()
    beyond_the_drain()


qa_drain()
