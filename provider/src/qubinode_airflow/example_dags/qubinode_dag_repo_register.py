# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Register (or update) a git repository of DAGs from inside Airflow: the collection's dag_repos
playbook fetches, validates and pins it and every Airflow host serves it, exactly as from
ansible-playbook or AWX. Trigger with a conf such as
{"name": "team_a", "url": "https://git.example.com/team-a/dags.git", "ref": "main", "subdir": "dags"}, and
optionally import_paths, requirements_file and test_dir, as the dag_repos manifest takes them.

Adding a NEW repository restarts every Airflow service of the hosts (they read the bundle list at
start), including the scheduler that runs this task. The scheduler's restart is left to systemd and
waits until the task instances it runs, this one included, have ended, so the task ends normally;
should it be killed anyway (a restart by other means), its retry finds the repository registered and
served (changed=0). A new commit of a registered repository restarts only the dag-processor.

The connection `qubinode_stack` (type qubinode_ansible) holds the stack's inventory, SSH user and key.
Credentials never come from the DAG's params: with {"credentials": true} the register task reads them from
the repository's git connection `qubinode_git_<name>` when it runs (the DAG repositories page's "Add" writes
it from the token given there) and hands them to the playbook in a private file, masked in the log.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task

from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator
from qubinode_airflow.repos.registry import REF_PATTERN, SUBDIR_PATTERN, URL_PATTERN, repo_dag_args

_ARGS = repo_dag_args()
_ARGS["params"].update({
    # The dag_repos playbook's lookup checks every field again; these patterns refuse the obvious
    # (option-like values, '..', paths on the host, credentials in the URL) already in the form.
    "url": Param("https://git.example.com/dags.git", type="string", minLength=1, maxLength=2048, pattern=URL_PATTERN),
    "ref": Param("main", type="string", pattern=REF_PATTERN),
    "subdir": Param(None, type=["null", "string"], pattern=SUBDIR_PATTERN),
    "pin": Param(True, type="boolean"),
    # Directories the DAGs import from; the requirements file and the tests directory (null: the defaults,
    # requirements.txt and tests; "": none).
    "import_paths": Param([], type="array", maxItems=10, items={"type": "string", "pattern": SUBDIR_PATTERN}),
    "requirements_file": Param(None, type=["null", "string"], pattern="^$|" + SUBDIR_PATTERN),
    "test_dir": Param(None, type=["null", "string"], pattern="^$|" + SUBDIR_PATTERN),
    # Fetch with the credentials of the connection qubinode_git_<name>.
    "credentials": Param(False, type="boolean"),
})

with DAG(
    "qubinode_dag_repo_register",
    description="Validate, pin and serve a git repository of DAGs (the dag_repos playbook)",
    **_ARGS,
) as dag:

    @task(multiple_outputs=True)
    def manifest(params=None) -> dict:
        """The manifest entry the dag_repos playbook reads (its lookup checks every field), and the connection
        its credentials are read from (none: {})."""
        from qubinode_airflow.repos.registry import CREDENTIALS_VAR, credentials_var

        entry = {key: params[key] for key in ("name", "url", "ref", "pin")}
        if params.get("subdir"):
            entry["subdir"] = params["subdir"]
        if params.get("import_paths"):
            entry["import_paths"] = list(params["import_paths"])
        for key in ("requirements_file", "test_dir"):
            if isinstance(params.get(key), str):
                entry[key] = params[key]
        credentials = {}
        if params.get("credentials"):
            entry["credentials"] = CREDENTIALS_VAR
            credentials = credentials_var(params["name"])
        return {"dag_repos": [entry], "git_credentials": credentials}

    entry = manifest()
    AnsiblePlaybookOperator(task_id="register", playbook="qubinode.airflow.dag_repos",
                            ansible_conn_id="qubinode_stack", extra_vars={"dag_repos": entry["dag_repos"]},
                            git_credentials=entry["git_credentials"], retries=3, retry_delay=timedelta(seconds=20))
