# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Remove a registered git repository of DAGs: the collection's dag_repos playbook (`dag_repos_remove`)
removes its bundle from every Airflow host and Temporal worker, its git connection `qubinode_git_<name>` and
its registry entry, exactly as from ansible-playbook or AWX. Trigger with a conf such as {"name": "team_a"};
"Remove" on the DAG repositories page starts such a run. A name that is not registered changes nothing.

The bundle list changes, so every Airflow service of the hosts restarts, the scheduler that runs this task
included: as with the register DAG, systemd waits for the task instances it runs to end, and a retry finds
the repository removed (changed=0). Runs of the removed repository's DAGs stay in the database.

The connection `qubinode_stack` (type qubinode_ansible) holds the stack's inventory, SSH user and key.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator
from qubinode_airflow.repos.registry import repo_dag_args

with DAG(
    "qubinode_dag_repo_remove",
    description="Stop serving a git repository of DAGs and forget it (the dag_repos playbook)",
    **repo_dag_args(),
) as dag:
    # The name is checked by the form's pattern, then by the playbook and, as root, by the module.
    AnsiblePlaybookOperator(task_id="remove", playbook="qubinode.airflow.dag_repos", ansible_conn_id="qubinode_stack",
                            extra_vars={"dag_repos": [], "dag_repos_remove": ["{{ params.name }}"]},
                            retries=3, retry_delay=timedelta(seconds=20))
