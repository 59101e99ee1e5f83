# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The operator of the promote and review DAGs: the dag_repos playbook for one registered repository, whose
manifest entry is read from the registry when the task runs (one task, not a task that reads it and one that
runs the playbook: a push goes live a task launch sooner)."""

from __future__ import annotations

from typing import Any

from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator


class RegisteredRepoOperator(AnsiblePlaybookOperator):
    """Run the dag_repos playbook for the repository the run's conf names (``name``), as it is registered
    (the Airflow variable ``qubinode_dag_repos``), with the conf's ``commit``: pinned forward only, pinned
    again with ``rollback``, or, with ``review=True``, validated at the merge request's ``review_ref`` and
    deployed nowhere. A repository registered with credentials is fetched with those of its own git
    connection, read when the task runs. A conf the registry refuses fails the task without a retry, naming
    why.

    :param review: validate the head of a merge request (the conf's ``review_ref``), pin nothing.
    :param on_start: called with the task's context before the playbook runs (the review DAG posts its
        "pending" status there); what it raises is logged, and the check goes on.
    """

    def __init__(self, *, review: bool = False, on_start=None, **kwargs):
        kwargs.setdefault("playbook", "qubinode.airflow.dag_repos")
        super().__init__(**kwargs)
        self.review = review
        self.on_start = on_start

    def manifest(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The playbook's manifest entry and git credentials; AirflowFailException says why there are none."""
        from airflow.sdk import Variable
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_airflow.repos.registry import REGISTRY_KEY, promote_credentials, promote_entry

        registry = Variable.get(REGISTRY_KEY, default={}, deserialize_json=True)
        try:
            entry = promote_entry(registry, params["name"], params.get("commit"),
                                  params.get("review_ref") if self.review else None,
                                  rollback=bool(params.get("rollback")))
            return entry, promote_credentials(registry, params["name"])
        except ValueError as e:
            raise AirflowFailException(str(e)) from e

    def execute(self, context) -> dict[str, dict[str, int]]:
        if self.on_start is not None:
            try:
                self.log.info("%s", self.on_start(context))
            except Exception as e:  # a status API that is down blocks no check
                self.log.warning("before the check: %s", e)
        entry, credentials = self.manifest(context["params"])
        self.log.info("manifest entry: %s", entry)
        self.extra_vars = dict(self.extra_vars or {}, dag_repos=[entry])
        self.git_credentials = credentials
        return super().execute(context)
