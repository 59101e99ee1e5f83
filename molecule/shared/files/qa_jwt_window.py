"""One task that runs across a rotation of the JWT secret (molecule distributed): it keeps calling the
Execution API with the token it got before the rotation until the test releases it through a variable."""

import time

import pendulum
from airflow.sdk import Variable, dag, get_current_context, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["qubinode-test"])
def qa_jwt_window():
    # No retry: success means the attempt that started before the rotation is the one that ended.
    @task(retries=0)
    def across_rotation() -> str:
        run_id = get_current_context()["run_id"]
        deadline = time.monotonic() + 1500
        while Variable.get("qa_jwt_release", default=None) != run_id:
            if time.monotonic() > deadline:
                raise TimeoutError("the test did not release this run within 25 minutes")
            time.sleep(3)
        return run_id

    across_rotation()


qa_jwt_window()
