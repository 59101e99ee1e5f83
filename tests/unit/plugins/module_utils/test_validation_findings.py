"""What the DAG validation's result refuses and what it only reports."""

from __future__ import annotations

from ansible_collections.qubinode.airflow.plugins.module_utils._dag_repo import validation_findings


def test_removed_apis_refuse_deprecated_ones_are_reported_beside():
    result = {"dags": {}, "errors": {"dags/a.py": ["import", "TypeError: unexpected keyword argument 'schedule_interval'"]},
              "lint": [["dags/a.py", 6, "AIR301", "`schedule_interval` is removed in Airflow 3.0", "Use `schedule` instead"],
                       ["dags/a.py", 6, "AIR311", "`airflow.DAG` is removed in Airflow 3.0; It still works", "`DAG` has "
                        "been moved to `airflow.sdk`"],
                       ["dags/a.py", 8, "AIR302", "`airflow.operators.dummy.DummyOperator` is moved", ""]]}
    report, deprecations = validation_findings(result)
    assert report == [
        {"file": "dags/a.py", "kind": "import", "message": "TypeError: unexpected keyword argument 'schedule_interval'"},
        {"file": "dags/a.py", "line": 6, "kind": "airflow3", "code": "AIR301",
         "message": "`schedule_interval` is removed in Airflow 3.0 - Use `schedule` instead"},
        {"file": "dags/a.py", "line": 8, "kind": "airflow3", "code": "AIR302",
         "message": "`airflow.operators.dummy.DummyOperator` is moved"},
    ]
    assert deprecations == [{"file": "dags/a.py", "line": 6, "kind": "airflow3", "code": "AIR311",
                             "message": "`airflow.DAG` is removed in Airflow 3.0; It still works - `DAG` has been moved "
                                        "to `airflow.sdk`"}]


def test_a_result_from_before_the_rules_has_no_lint():
    assert validation_findings({"dags": {"d": "d.py"}, "errors": {}}) == ([], [])


def test_only_the_airflow_rules_count():
    result = {"dags": {}, "errors": {}, "lint": [["a.py", 1, "invalid-syntax", "Expected `)`", ""], ["a.py", 2, None, "x", ""]]}
    assert validation_findings(result) == ([], [])
