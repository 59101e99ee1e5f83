"""Real Airflow for the provider's tests: a throw-away AIRFLOW_HOME with a SQLite metadata database,
DAG files written by the tests into its DAG folder and run with `dag.test()` (Airflow's own in-process
scheduler loop, task runner and execution API)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import pytest

HOME = pathlib.Path(tempfile.mkdtemp(prefix="qubinode-provider-tests-"))
DAGS = HOME / "dags"
DAGS.mkdir()
os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
})
ROOT = pathlib.Path(__file__).resolve().parents[2]
# The collection under test, as Ansible finds it (hack/bootstrap.sh links it there).
COLLECTIONS = ROOT / ".cache" / "collections"
# Helpers shared with the unit tests.
sys.path.insert(0, str(ROOT / "tests"))

from temporal_server import temporal_server  # noqa: E402


def pytest_sessionstart(session):
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   cwd=str(HOME))


@pytest.fixture
def connection(monkeypatch):
    """Define an Airflow connection for this test (AIRFLOW_CONN_<ID>, Airflow's JSON form)."""

    def define(conn_id: str, **fields):
        monkeypatch.setenv("AIRFLOW_CONN_%s" % conn_id.upper(), json.dumps(fields))
        return conn_id

    return define


@pytest.fixture
def run_dag(tmp_path):
    """Write a DAG file into the DAG folder, run it with dag.test(); return (dag run, {task_id: ti})."""

    def run(dag_id: str, body: str, conf: dict | None = None):
        path = DAGS / ("%s.py" % dag_id)
        path.write_text(textwrap.dedent(body))
        namespace: dict = {"__name__": "qubinode_test_%s" % dag_id}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        dag = namespace["dag"]
        try:
            dag_run = dag.test(run_conf=conf)
        finally:
            path.unlink()
        return dag_run, {ti.task_id: ti for ti in dag_run.get_task_instances()}

    return run


def xcom(dag_run, task_id: str, key: str = "return_value"):
    """The value a task of a finished dag.test() run pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id,
                                                 key=key)).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    """A real Temporal server (the temporal CLI's dev server) with the namespace `airflow`."""
    with temporal_server(pathlib.Path(sys.executable).parent / "temporal", tmp_path_factory.mktemp("temporal")) as address:
        yield address
