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
    assert sorted(bag.dags) == ["qubinode_dag_repo_promote", "qubinode_dag_repo_register", "qubinode_dag_repo_remove",
                                "qubinode_dag_repo_review", "qubinode_stack_health", "qubinode_vm_lifecycle"]
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
    # Health and drift only read, so they run at the same time; an upgrade needs both to have passed.
    assert dag.get_task("health").upstream_task_ids == set() and drift.upstream_task_ids == set()
    assert set(dag.get_task("upgrade_requested").upstream_task_ids) == {"health", "report"}
    assert dag.params["upgrade"] is False


def test_promote_wiring():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(EXAMPLES), safe_mode=False, bundle_name="x", bundle_path=str(EXAMPLES)).dags["qubinode_dag_repo_promote"]
    run = dag.get_task("validate_and_pin")
    assert run.playbook == "qubinode.airflow.dag_repos" and run.ansible_conn_id == "qubinode_stack"
    assert run.upstream_task_ids == set() and run.check is False and len(dag.tasks) == 1
    # One run at a time: a push older than the pinned commit then changes nothing (forward_only).
    assert dag.max_active_runs == 1 and dag.schedule is None


def test_register_hands_the_pages_fields_to_the_playbook():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(EXAMPLES), safe_mode=False, bundle_name="x", bundle_path=str(EXAMPLES)).dags["qubinode_dag_repo_register"]
    manifest = dag.get_task("manifest").python_callable
    base = {"name": "team_a", "url": "https://git.example.com/a.git", "ref": "main", "pin": True, "subdir": None,
            "import_paths": [], "requirements_file": None, "test_dir": None, "credentials": False}
    # The defaults: nothing but what was given reaches the manifest (its lookup fills in the rest).
    assert manifest(params=base) == {"dag_repos": [{"name": "team_a", "url": "https://git.example.com/a.git",
                                                    "ref": "main", "pin": True}], "git_credentials": {}}
    given = dict(base, subdir="dags", import_paths=["plugins"], requirements_file="", test_dir="dags/tests",
                 credentials=True)
    out = manifest(params=given)
    assert out["dag_repos"] == [{"name": "team_a", "url": "https://git.example.com/a.git", "ref": "main", "pin": True,
                                 "subdir": "dags", "import_paths": ["plugins"], "requirements_file": "",
                                 "test_dir": "dags/tests", "credentials": "qubinode_dag_repo_credentials"}]
    assert out["git_credentials"] == {"qubinode_dag_repo_credentials": "qubinode_git_team_a"}
    # The form refuses what the playbook's lookup would: a path out of the repository.
    for key, bad, good in (("import_paths", ["../x"], ["plugins"]), ("requirements_file", "/etc/shadow", ""),
                           ("test_dir", "../t", "dags/tests")):
        assert refused(dag, key, bad) and not refused(dag, key, good), key


def refused(dag, key, value):
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    try:
        copy.deepcopy(dag.params.get_param(key)).resolve(value)
    except ParamValidationError:
        return True
    return False


def test_promote_entry_hands_on_the_registered_entry_and_the_push():
    import pytest

    from qubinode_airflow.repos.registry import promote_credentials, promote_entry

    sha = "ab" * 20
    registry = {"team": {"url": "https://git.example.com/t.git", "ref": "main", "pin": True, "commit": "cd" * 20,
                         "subdir": "dags", "import_paths": ["plugins"], "refresh_interval": 60, "dag_ids": ["a"],
                         "history": ["cd" * 20], "git_conn_id": None},
                "follows": {"url": "https://git.example.com/f.git", "ref": "main", "pin": False, "commit": sha},
                "private": {"url": "https://git.example.com/p.git", "ref": "main", "commit": sha,
                            "git_conn_id": "qubinode_git_private", "requirements_file": "deps/req.txt", "test_dir": ""}}
    assert promote_entry(registry, "team", sha) == {
        "name": "team", "pin": True, "url": "https://git.example.com/t.git", "ref": "main", "subdir": "dags",
        "import_paths": ["plugins"], "refresh_interval": 60, "commit": sha, "forward_only": True}
    # "Sync now" on the page: the head of the ref, validated like any registration.
    assert "commit" not in promote_entry(registry, "team", None)
    # Registered with credentials: the playbook gets them in a variable, read from the repository's own connection.
    assert promote_entry(registry, "private", sha)["credentials"] == "qubinode_dag_repo_credentials"
    # A requirements file or test directory other than the default goes with it ("" reads none).
    assert {k: promote_entry(registry, "private", sha)[k] for k in ("requirements_file", "test_dir")} == {
        "requirements_file": "deps/req.txt", "test_dir": ""}
    assert promote_credentials(registry, "private") == {"qubinode_dag_repo_credentials": "qubinode_git_private"}
    assert promote_credentials(registry, "team") == {} and "credentials" not in promote_entry(registry, "team", sha)
    registry["private"]["git_conn_id"] = "qubinode_stack"
    for name, commit, says in (("nope", sha, "nope is not a registered DAG repository"),
                               ("follows", sha, "follows is not pinned"),
                               ("private", sha, "names the connection 'qubinode_stack' for its credentials, not "
                                                "qubinode_git_private"),
                               ("team", "--all", "is not a full 40-character SHA")):
        with pytest.raises(ValueError, match=says):
            promote_entry(registry, name, commit)
    with pytest.raises(ValueError, match="not a registered"):
        promote_entry("not json", "team", sha)


def test_a_rollback_entry_pins_one_of_the_last_validated_commits_only():
    import pytest

    from qubinode_airflow.repos.registry import promote_entry

    now, before, other = "cd" * 20, "ef" * 20, "ab" * 20
    registry = {"team": {"url": "https://git.example.com/t.git", "ref": "main", "pin": True, "commit": now,
                         "history": [now, before]}}
    # Pinned as given, not forward only: going back is the point.
    assert promote_entry(registry, "team", before, rollback=True) == {
        "name": "team", "pin": True, "url": "https://git.example.com/t.git", "ref": "main", "commit": before}
    for commit, says in ((other, "give one of its last validated commits \\(efefefefefef\\)"),
                         (now, "cannot roll back to 'cdcd"), (None, "a rollback needs the commit")):
        with pytest.raises(ValueError, match=says):
            promote_entry(registry, "team", commit, rollback=True)


def test_review_wiring():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(EXAMPLES), safe_mode=False, bundle_name="x", bundle_path=str(EXAMPLES)).dags["qubinode_dag_repo_review"]
    validate = dag.get_task("validate")
    assert validate.playbook == "qubinode.airflow.dag_repos" and validate.upstream_task_ids == set()
    assert validate.review is True and validate.on_start is not None and len(dag.tasks) == 3
    assert dag.get_task("passed").upstream_task_ids == {"validate"} == dag.get_task("refused").upstream_task_ids
    assert dag.get_task("passed").trigger_rule == "all_success"
    assert dag.get_task("refused").trigger_rule == "one_failed"


def test_a_review_entry_validates_the_head_of_a_merge_request_only():
    import pytest

    from qubinode_airflow.repos.registry import promote_entry

    sha = "ab" * 20
    registry = {"follows": {"url": "https://git.example.com/f.git", "ref": "main", "pin": False, "commit": "cd" * 20}}
    # Any registered repository may be reviewed, a pinned one or one that follows its branch.
    assert promote_entry(registry, "follows", sha, "refs/pull/7/head") == {
        "name": "follows", "pin": False, "url": "https://git.example.com/f.git", "ref": "main", "commit": sha,
        "review_ref": "refs/pull/7/head"}
    for commit, ref in ((sha, "refs/heads/main"), (None, "refs/pull/7/head"), (sha, "refs/pull/7/head\n")):
        with pytest.raises(ValueError):
            promote_entry(registry, "follows", commit, ref)


def test_remove_wiring():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(EXAMPLES), safe_mode=False, bundle_name="x", bundle_path=str(EXAMPLES)).dags["qubinode_dag_repo_remove"]
    remove = dag.get_task("remove")
    assert remove.playbook == "qubinode.airflow.dag_repos" and remove.ansible_conn_id == "qubinode_stack"
    assert remove.git_credentials == {}  # removing fetches nothing
    # The form's name, checked by its pattern, is the one name the playbook removes; the manifest is empty.
    assert remove.render_template(remove.extra_vars, {"params": {"name": "team_a"}}) == {
        "dag_repos": [], "dag_repos_remove": ["team_a"]}
    assert dag.params.get_param("name").schema["pattern"] == "^[A-Za-z0-9_-]{1,100}$"
    assert dag.max_active_runs == 1 and dag.schedule is None


def test_the_registered_repo_operator_reads_the_entry_when_it_runs(monkeypatch):
    import pytest
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    from qubinode_airflow.ansible.operators import AnsiblePlaybookOperator
    from qubinode_airflow.repos.operators import RegisteredRepoOperator

    sha, pinned = "ab" * 20, "cd" * 20
    registry = {"team": {"url": "https://git.example.com/t.git", "ref": "main", "pin": True, "commit": pinned,
                         "history": [pinned, sha], "git_conn_id": "qubinode_git_team"}}

    def variable(key, default=None, deserialize_json=False):
        return registry if key == "qubinode_dag_repos" else default

    monkeypatch.setattr(Variable, "get", staticmethod(variable))
    handed = []
    monkeypatch.setattr(AnsiblePlaybookOperator, "execute",
                        lambda self, context: handed.append((self.extra_vars, self.git_credentials)) or {})
    started = []

    def down(context):
        started.append(context["params"]["name"])
        raise OSError("the status API is down")

    promote = RegisteredRepoOperator(task_id="p", ansible_conn_id="qubinode_stack")
    promote.execute({"params": {"name": "team", "commit": sha, "rollback": True}})
    review = RegisteredRepoOperator(task_id="r", ansible_conn_id="qubinode_stack", review=True, on_start=down)
    review.execute({"params": {"name": "team", "commit": sha, "review_ref": "refs/pull/3/head"}})
    assert started == ["team"]  # a status that cannot be posted stops no check
    assert [h[0]["dag_repos"][0]["commit"] for h in handed] == [sha, sha]
    assert "review_ref" not in handed[0][0]["dag_repos"][0] and "forward_only" not in handed[0][0]["dag_repos"][0]
    assert handed[1][0]["dag_repos"][0]["review_ref"] == "refs/pull/3/head"
    assert handed[0][1] == handed[1][1] == {"qubinode_dag_repo_credentials": "qubinode_git_team"}
    # A conf the registry refuses fails the task, naming why, before the playbook runs.
    for params, says in (({"name": "gone", "commit": sha}, "gone is not a registered"),
                         ({"name": "team", "commit": "ef" * 20, "rollback": True}, "last validated commits")):
        with pytest.raises(AirflowFailException, match=says):
            promote.execute({"params": params})
    assert len(handed) == 2
