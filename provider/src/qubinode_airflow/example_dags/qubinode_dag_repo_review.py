# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Merge-request checks: validate the head commit of a merge request, deploy nothing, and report the result
as a commit status.

The webhook (POST /qubinode/webhook) triggers a run for every signed GitHub pull_request event (opened,
synchronize, reopened) and GitLab merge request event (open, update, reopen) that targets the branch of a
registered repository, while this DAG is unpaused, with the conf {"name", "commit", "review_ref",
"status": {"kind": "github" | "gitlab", "repository": "owner/repo" | project id}}. The run posts
"pending", hands the commit to the collection's dag_repos playbook (airflow_dag_repo's review_ref: the
commit is fetched from the merge request's head and validated as root in the sandbox; nothing is pinned,
registered or restarted), then posts "success" or "failure" with a link to the run, whose log holds the
findings.

Statuses are posted with the connection `qubinode_status_<name>`: its host is the API URL
(https://api.github.com, https://gitlab.example.com/api/v4) and its password the token. Without it the
result stays in the run. The connection `qubinode_stack` (type qubinode_ansible) holds the stack's
inventory, SSH user and key. A repository registered with credentials is fetched with them, read from its
git connection `qubinode_git_<name>` by the validate task when it runs, as the promote DAG does.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from qubinode_airflow.repos.operators import RegisteredRepoOperator
from qubinode_airflow.repos.registry import REVIEW_REF_RE, repo_dag_args

_ARGS = repo_dag_args()
_ARGS["params"].update({
    "commit": Param("0" * 40, type="string", pattern=r"^[0-9a-f]{40}$"),
    "review_ref": Param("refs/pull/1/head", type="string", pattern=REVIEW_REF_RE.pattern),
    "status": Param(None, type=["null", "object"]),
})


def report(params, state: str, description: str) -> str:
    """Post the commit status of this run's check; what was done, for the task log."""
    import logging

    from airflow.sdk import Connection, get_current_context
    from airflow.sdk.exceptions import AirflowNotFoundException

    from qubinode_airflow.repos.status import CONN_PREFIX, post_status

    if not params.get("status"):
        return "no status target in the run's conf: nothing posted"
    conn_id = CONN_PREFIX + params["name"]
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        logging.getLogger(__name__).warning("no connection %s: the %s status is not posted", conn_id, state)
        return "no connection %s: nothing posted" % conn_id
    link = get_current_context()["ti"].log_url.split("/tasks/")[0]
    code = post_status(conn, params["status"], params["commit"], state, description, link)
    return "%s posted (HTTP %s)" % (state, code)


def pending(context) -> str:
    return report(context["params"], "pending", "validating the DAGs of this commit")


with DAG(
    "qubinode_dag_repo_review",
    description="Validate the head of a merge request of a DAG repository and report a commit status",
    **_ARGS,
) as dag:

    @task(trigger_rule="all_success")
    def passed(params=None) -> str:
        return report(params, "success", "the DAGs pass the validation; nothing was deployed")

    @task(trigger_rule="one_failed")
    def refused(params=None) -> str:
        return report(params, "failure", "refused: the findings are in the log of the task validate")

    # "pending" is posted when the check starts; a status API that is down blocks no check.
    validate = RegisteredRepoOperator(task_id="validate", ansible_conn_id="qubinode_stack", review=True,
                                      on_start=pending)
    validate >> [passed(), refused()]
