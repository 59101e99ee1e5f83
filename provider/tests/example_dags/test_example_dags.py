"""The example DAGs the airflow role serves with airflow_example_dags: true parse cleanly in a DagBag
(as the dag-processor reads them) and serialize (as Airflow stores them), without ansible-runner,
libvirt or any connection being there."""

from __future__ import annotations

import pathlib

import qubinode_airflow

EXAMPLES = pathlib.Path(qubinode_airflow.__file__).resolve().parent / "example_dags"


def test_examples_parse_and_serialize():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(str(EXAMPLES), safe_mode=False, bundle_name="qubinode-examples", bundle_path=str(EXAMPLES))
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["qubinode_dag_repo_register", "qubinode_stack_health", "qubinode_vm_lifecycle"]
    for dag in bag.dags.values():
        assert DagSerialization.to_dict(dag)["dag"]["dag_id"] == dag.dag_id
        assert "qubinode" in dag.tags


def test_stack_health_wiring():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(EXAMPLES), safe_mode=False, bundle_name="x", bundle_path=str(EXAMPLES)).dags["qubinode_stack_health"]
    drift = dag.get_task("drift")
    assert drift.playbook == "qubinode.airflow.site" and drift.check is True
    assert dag.get_task("health").playbook == "qubinode.airflow.health"
    assert dag.get_task("upgrade").check is False
    assert set(dag.get_task("upgrade").upstream_task_ids) == {"upgrade_vars"}
    assert dag.params["upgrade"] is False
