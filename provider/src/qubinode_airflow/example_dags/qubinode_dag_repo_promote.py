# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Validate and pin the pushed commit of a pinned DAG repository: push to validated deploy.

The webhook (POST /qubinode/webhook) triggers a run for every signed push to the branch of a pinned
repository, with the conf {"name": <bundle>, "commit": <the push's SHA>}, while this DAG is unpaused;
"sync" on the DAG repositories page triggers one without a commit (the head of the branch). The run hands
the repository's registered entry to the collection's dag_repos playbook, which fetches the commit as root,
validates it in the sandbox and pins it only when it passes. A refused commit fails the run with the
findings in its log, and the commit pinned before keeps serving. Runs go one at a time, and a push older
than the pinned commit changes nothing, so pushes end with the newest valid commit served. "Roll back" on
the page starts a run with {"name", "commit", "rollback": true}: the commit must be one of the repository's
last validated commits, and is validated again before it is pinned.

The api-server and this DAG only ask: the values of the registry and the conf are checked again by the
playbook's manifest lookup and by the module, as root, before git runs.

The connection `qubinode_stack` (type qubinode_ansible) holds the stack's inventory, SSH user and key.
A repository registered with credentials is fetched with them: the playbook task reads the repository's
git connection `qubinode_git_<name>` when it runs and hands the token or key to the playbook in a private
file, masked in the log; neither the conf, XCom nor the rendered task fields hold them.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from qubinode_airflow.repos.operators import RegisteredRepoOperator
from qubinode_airflow.repos.registry import repo_dag_args

_ARGS = repo_dag_args()
_ARGS["params"].update({
    "commit": Param(None, type=["null", "string"], pattern=r"^[0-9a-f]{40}$"),
    # "Roll back" on the DAG repositories page: pin `commit`, one of the last validated commits, again.
    "rollback": Param(False, type="boolean"),
})

with DAG(
    "qubinode_dag_repo_promote",
    description="Validate and pin a push to a pinned git repository of DAGs (the dag_repos playbook)",
    **_ARGS,
) as dag:
    # One task: it reads the registered entry when it runs and hands it to the playbook.
    RegisteredRepoOperator(task_id="validate_and_pin", ansible_conn_id="qubinode_stack")
