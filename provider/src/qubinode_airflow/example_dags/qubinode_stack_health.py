# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Health and drift of the qubinode.airflow stack, from inside Airflow; optionally its upgrade.

1. `health`: the collection's read-only health playbook (every service runs and answers).
2. `drift`, at the same time (both only read): the site playbook in check mode. A converged stack
   reports no change; anything else is drift (a hand edit, a missing package) and is listed in the task
   log and in the returned recap.
3. `upgrade` (only with the param upgrade=true, and only once health and drift succeeded): the site
   playbook for real, with `airflow_version` when given. It restarts the services it changes: run it with the Temporal engine on worker hosts
   that it does not touch (params.limit), or from AWX, not from the Airflow it restarts.

The connection `qubinode_stack` (type qubinode_ansible) holds the stack's inventory (the groups
airflow_db, airflow_core, airflow_temporal, airflow_workers), the SSH user (root, or one with sudo)
and its private key; `qubinode_vault` (optional) the Ansible Vault password.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator

STACK = "qubinode_stack"

with DAG(
    "qubinode_stack_health",
    description="Health, drift (site playbook in check mode) and optional upgrade of the qubinode.airflow stack",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["qubinode", "ansible"],
    params={
        "fail_on_drift": Param(False, type="boolean"),
        "upgrade": Param(False, type="boolean"),
        "airflow_version": Param(None, type=["null", "string"]),
        "limit": Param("all", type="string"),
    },
) as dag:
    health = AnsiblePlaybookOperator(task_id="health", playbook="qubinode.airflow.health", ansible_conn_id=STACK)
    drift = AnsiblePlaybookOperator(task_id="drift", playbook="qubinode.airflow.site", check=True, diff=False,
                                    ansible_conn_id=STACK, limit="{{ params.limit }}")

    @task
    def report(recap: dict, params=None) -> dict:
        drifted = {host: row["changed"] for host, row in recap.items() if row["changed"]}
        if drifted and params["fail_on_drift"]:
            raise RuntimeError("the stack drifted from its configuration: %s (changes per host); the drift "
                               "task's log lists them" % drifted)
        return {"hosts": sorted(recap), "drifted": drifted}

    @task.short_circuit
    def upgrade_requested(params=None) -> bool:
        return bool(params["upgrade"])

    @task
    def upgrade_vars(params=None) -> dict:
        return {"airflow_version": params["airflow_version"]} if params.get("airflow_version") else {}

    extra = upgrade_vars()
    upgrade = AnsiblePlaybookOperator(task_id="upgrade", playbook="qubinode.airflow.site", ansible_conn_id=STACK,
                                      limit="{{ params.limit }}", extra_vars=extra)

    summary = report(drift.output)
    [health, summary] >> upgrade_requested() >> extra
