"""The task runner's warm-up in real Airflow: what it imports ahead exists, and a fork of the warmed
runner parses a DAG of @task tasks without importing Airflow's DAG machinery again."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import DAGS


def test_every_module_imported_ahead_exists_in_this_airflow():
    from qubinode_airflow.temporal import run_workload

    missing = []
    for name in run_workload.FOR_TASKS:
        try:
            importlib.import_module(name)
        except ImportError as e:
            missing.append("%s (%s)" % (name, e))
    assert not missing, "no longer in Airflow: %s" % missing


@pytest.mark.parametrize("warm", [True, False])
def test_a_fork_of_the_warmed_runner_parses_a_dag_without_importing_airflow_again(tmp_path, warm):
    dag_file = DAGS / "qa_warm_parse.py"
    dag_file.write_text(textwrap.dedent("""
        import pendulum
        from airflow.sdk import chain, dag, task

        @dag(schedule="@daily", start_date=pendulum.datetime(2026, 1, 1), catchup=False)
        def qa_warm_parse():
            @task
            def step(i: int) -> int:
                return i

            chain(*[step.override(task_id="s%d" % i)(i) for i in range(3)])

        qa_warm_parse()
    """))
    report = tmp_path / "new-modules"
    script = textwrap.dedent("""
        import os, sys
        from qubinode_airflow.temporal import run_workload
        if %r:
            run_workload.warm()
        before = set(sys.modules)
        pid = os.fork()
        if pid == 0:
            from airflow.dag_processing.dagbag import DagBag
            bag = DagBag(dag_folder=%r)
            assert "qa_warm_parse" in bag.dags, bag.import_errors
            with open(%r, "w") as f:
                f.write("\\n".join(sorted(m for m in set(sys.modules) - before if m.startswith("airflow"))))
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """) % (warm, str(dag_file), str(report))
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ),
                              timeout=120, check=False)
    finally:
        dag_file.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = [name for name in report.read_text().split() if name]
    if warm:
        assert len(imported) <= 5, imported
    else:  # the same fork without the warm-up
        assert len(imported) > 50, imported
