"""A DAG served from the test git repository; QA_DAG_ID is replaced per copy."""

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="QA_DAG_ID", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def qa_repo_dag():
    @task
    def hello():
        return "served from git"

    hello()


qa_repo_dag()
