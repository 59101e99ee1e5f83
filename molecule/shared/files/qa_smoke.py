"""Smoke DAG for the test hosts: two tasks passing a value through XCom."""

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["qubinode-test"])
def qa_smoke():
    @task
    def produce() -> str:
        return "qubinode"

    @task
    def consume(value: str) -> None:
        if value != "qubinode":
            raise ValueError(f"unexpected XCom value {value!r}")

    consume(produce())


qa_smoke()
