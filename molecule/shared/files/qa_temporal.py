"""Parallel tasks for the Temporal engine tests: long enough to kill a worker or restart the server
mid-task, with Airflow retries to recover."""

import time
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["qubinode-test"],
     default_args={"retries": 2, "retry_delay": timedelta(seconds=5)})
def qa_temporal():
    @task
    def work(n: int) -> int:
        time.sleep(20)
        return n

    @task
    def total(values: list[int]) -> int:
        if sorted(values) != [1, 2, 3]:
            raise ValueError(f"unexpected values {values!r}")
        return sum(values)

    total(work.expand(n=[1, 2, 3]))


qa_temporal()
