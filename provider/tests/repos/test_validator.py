"""The DAG validator (the script the airflow_dag_repo module runs in its sandbox), run by real Airflow on
repositories shaped like real ones: the repository's modules never shadow the standard library or Airflow."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

from conftest import ROOT


def validator_source():
    """The VALIDATOR constant of the module utils, read without importing them (no Ansible here)."""
    tree = ast.parse((ROOT / "plugins" / "module_utils" / "_dag_repo.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "VALIDATOR" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("no VALIDATOR in _dag_repo.py")


def write(repo, files):
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return repo


def validate(tmp_path, files=None, subdir=None, tests=None, config=None, import_paths=(), requirements=None,
             site_packages=None):
    """The validator's result for tmp_path/repo (its `subdir`), with the tests in `tests` (relative to the
    repository) as the module passes them, the stack's `config` ({AIRFLOW__CORE__...: value}), the text of
    the repository's requirements file and the directory of a review's packages."""
    repo = tmp_path / "repo"
    if files is not None:
        write(repo, files)
    tree = repo / subdir if subdir else repo
    extra = [str(repo / tests), str(repo)] if tests else []
    script = tmp_path / "qubinode_validate.py"
    source = validator_source()
    # Its refusal to run as root (what the sandbox guarantees, tested with the sandbox) is left out here: the
    # test runs it as the test's user, with the Python that has Airflow.
    refusal = "if os.getuid() == 0 or os.geteuid() == 0:"
    assert refusal in source
    script.write_text(source.replace(refusal, "if False:"))
    env = {"HOME": "/tmp", "AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONDONTWRITEBYTECODE": "1",
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH", ""),
           **(config or {})}
    if import_paths:
        env["QUBINODE_IMPORT_PATHS"] = ":".join(str(repo / path) for path in import_paths)
    if requirements is not None:
        # As the module stages it: the commit's file, beside the tree.
        (tmp_path / "requirements.txt").write_text(textwrap.dedent(requirements))
        env["QUBINODE_REQUIREMENTS"] = str(tmp_path / "requirements.txt")
    if site_packages:
        env["QUBINODE_SITE_PACKAGES"] = str(site_packages)
    proc = subprocess.run([sys.executable, str(script), str(tree)] + extra, env=env, capture_output=True, text=True,
                          timeout=300, cwd="/tmp", check=False)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("QUBINODE-VALIDATION ")]
    assert line, "the validator did not finish (rc %s): %s" % (proc.returncode, proc.stderr[-2000:])
    return json.loads(line[0].split(" ", 1)[1])


DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
import helpers

with DAG("qa_paths", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id=helpers.TASK_ID)
"""


def test_a_module_named_like_the_standard_library_does_not_break_validation(tmp_path):
    result = validate(tmp_path, {"copy.py": "VALUE = 1\n", "logging.py": "VALUE = 2\n", "helpers.py": "TASK_ID = 'a'\n",
                                 "dags/qa_paths.py": DAG})
    assert result["dags"] == {"qa_paths": "dags/qa_paths.py"}, result
    assert result["errors"] == {}, result


def test_a_module_named_like_airflow_does_not_shadow_it(tmp_path):
    result = validate(tmp_path, {"airflow.py": "VALUE = 3\n", "helpers.py": "TASK_ID = 'b'\n", "dags/qa_paths.py": DAG})
    assert result["dags"] == {"qa_paths": "dags/qa_paths.py"}, result
    assert result["errors"] == {}, result


def test_a_dag_file_that_exits_the_interpreter_is_a_finding_and_the_others_are_parsed(tmp_path):
    result = validate(tmp_path, {"dags/exits.py": "# an Airflow DAG file that exits\nimport sys\nsys.exit(7)\n",
                                 "helpers.py": "TASK_ID = 'c'\n", "dags/qa_paths.py": DAG})
    assert result == {"dags": {"qa_paths": "dags/qa_paths.py"}, "errors": {"dags/exits.py": ["import", "SystemExit: 7"]},
                      "lint": [], "requirements": []}


AIRFLOW2_DAG = """
from airflow import DAG
from airflow.utils.dates import days_ago
from airflow.operators.bash import BashOperator

with DAG("qa_airflow2", schedule_interval="@daily", start_date=days_ago(1)) as dag:
    BashOperator(task_id="hello", bash_command="echo hello")
"""


def test_an_airflow2_repository_gets_what_to_change_with_the_replacements(tmp_path):
    result = validate(tmp_path, {"dags/qa_airflow2.py": AIRFLOW2_DAG})
    assert "dags/qa_airflow2.py" in result["errors"], result
    lint = [tuple(finding) for finding in result["lint"]]
    assert ("dags/qa_airflow2.py", 6, "AIR301", "`schedule_interval` is removed in Airflow 3.0", "Use `schedule` instead") \
        in lint, lint
    assert ("dags/qa_airflow2.py", 6, "AIR301", "`airflow.utils.dates.days_ago` is removed in Airflow 3.0", "") in lint
    assert [f for f in lint if f[2] == "AIR311" and f[3].startswith("`airflow.DAG`")], "airflow.DAG still works, deprecated"
    bash = [f for f in lint if f[2] == "AIR312" and f[1] == 7]
    assert bash and "airflow.providers.standard.operators.bash" in bash[0][4], lint


def test_files_airflow_ignores_are_not_checked(tmp_path):
    result = validate(tmp_path, {".airflowignore": "old/\n", "old/qa_airflow2.py": AIRFLOW2_DAG,
                                 "helpers.py": "TASK_ID = 'd'\n", "dags/qa_paths.py": DAG})
    assert result == {"dags": {"qa_paths": "dags/qa_paths.py"}, "errors": {}, "lint": [], "requirements": []}


def test_files_airflow_ignores_are_not_compiled_either(tmp_path):
    """A legacy script the repository keeps out of Airflow's parse (Python 2 here) refuses nothing."""
    result = validate(tmp_path, {".airflowignore": "scripts/\n", "scripts/legacy.py": "print 'python 2'\n",
                                 "helpers.py": "TASK_ID = 'e'\n", "dags/qa_paths.py": DAG})
    assert result == {"dags": {"qa_paths": "dags/qa_paths.py"}, "errors": {}, "lint": [], "requirements": []}


def test_the_stacks_ignore_file_syntax_applies(tmp_path):
    files = {".airflowignore": "^scr.pts/\n", "scripts/legacy.py": "print 'python 2'\n",
             "helpers.py": "TASK_ID = 'f'\n", "dags/qa_paths.py": DAG}
    glob = validate(tmp_path, files)
    assert glob["errors"] == {"scripts/legacy.py": ["syntax", "SyntaxError: Missing parentheses in call to 'print'. "
                                                    "Did you mean print(...)? (line 1)"]}, glob
    regexp = validate(tmp_path, config={"AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX": "regexp"})
    assert regexp == {"dags": {"qa_paths": "dags/qa_paths.py"}, "errors": {}, "lint": [], "requirements": []}


PACKAGE_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from common.tasks import TASK_ID

with DAG("qa_package", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id=TASK_ID)
"""


def test_a_package_with_relative_imports_validates_as_airflow_discovers_dag_files(tmp_path):
    """Airflow's DAG discovery (safe mode, its default) parses the files that name both "airflow" and "dag";
    a module of a package, imported alone, would fail its relative import."""
    files = {"common/__init__.py": "", "common/names.py": "TASK_ID = 'g'\n",
             "common/tasks.py": "from .names import TASK_ID  # noqa\n", "qa_package.py": PACKAGE_DAG}
    result = validate(tmp_path, files)
    assert result == {"dags": {"qa_package": "qa_package.py"}, "errors": {}, "lint": [], "requirements": []}
    # A stack that turned safe mode off imports every file: so does its validation.
    unsafe = validate(tmp_path, config={"AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "False"})
    assert unsafe["errors"]["common/tasks.py"][0] == "import", unsafe
    assert "relative import" in unsafe["errors"]["common/tasks.py"][1], unsafe


def test_a_syntax_error_is_the_parse_finding_only(tmp_path):
    result = validate(tmp_path, {"qa_broken.py": "def broken(:\n    pass\n"})
    assert result == {"dags": {}, "errors": {"qa_broken.py": ["syntax", "SyntaxError: invalid syntax (line 1)"]},
                      "lint": [], "requirements": []}


AIRFLOW2_FIXABLE = """
from datetime import datetime
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("qa_airflow2_fixable", schedule_interval="@daily", start_date=datetime(2024, 1, 1), catchup=False) as dag:
    BashOperator(task_id="hello", bash_command="echo hello")
"""


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_an_airflow2_repository_gets_a_migration_patch_that_applies_and_then_validates(tmp_path):
    repo = write(tmp_path / "repo", {"dags/qa_airflow2_fixable.py": AIRFLOW2_FIXABLE, "dags/qa_airflow2.py": AIRFLOW2_DAG})
    (repo / "dags" / "outside.py").symlink_to("/etc/hostname")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=qa", "-c", "user.email=qa@example.invalid", "commit", "-qm", "Airflow 2")
    patch = tmp_path / "airflow3.patch"
    proc = subprocess.run([sys.executable, "-m", "airflow", "dag-repos", "migration-patch", str(repo), "--output",
                           str(patch)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 file(s) changed, 1 finding(s) to fix by hand" in proc.stderr
    assert git(repo, "status", "--porcelain") == "", "the checkout is never written to"
    text = patch.read_text()
    assert "  dags/qa_airflow2.py:6:" in text and "AIR301 `airflow.utils.dates.days_ago` is removed in Airflow 3.0" in text
    assert "Links left out (not followed):\n  dags/outside.py" in text
    git(repo, "apply", "--check", str(patch))
    git(repo, "apply", str(patch))
    assert 'schedule="@daily"' in (repo / "dags" / "qa_airflow2_fixable.py").read_text()
    # What ruff cannot fix, by hand, as the header says; then the repository validates without a finding.
    legacy = repo / "dags" / "qa_airflow2.py"
    legacy.write_text(legacy.read_text().replace("from airflow.utils.dates import days_ago\n", "import pendulum\n")
                      .replace("days_ago(1)", 'pendulum.datetime(2024, 1, 1, tz="UTC")'))
    (repo / "dags" / "outside.py").unlink()
    result = validate(tmp_path)
    assert result == {"dags": {"qa_airflow2": "dags/qa_airflow2.py", "qa_airflow2_fixable": "dags/qa_airflow2_fixable.py"},
                      "errors": {}, "lint": [], "requirements": []}


def test_a_migration_patch_of_a_path_that_is_not_a_directory_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "airflow", "dag-repos", "migration-patch", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2
    assert "nowhere is not a directory: give the path of a checkout of the repository" in proc.stderr


TESTS = """
import os
import sys

from airflow.dag_processing.dagbag import DagBag

sys.path.append(os.path.join(os.getcwd(), "dags"))  # the DAGs' own modules, as Airflow's parse has them


def test_the_dags_load():
    bag = DagBag(dag_folder=os.path.join(os.getcwd(), "dags"), bundle_path=os.path.join(os.getcwd(), "dags"))
    assert bag.import_errors == {}
    assert "qa_paths" in bag.dags


def test_qa_paths_has_one_task():
    bag = DagBag(dag_folder=os.path.join(os.getcwd(), "dags"), bundle_path=os.path.join(os.getcwd(), "dags"))
    assert len(bag.dags["qa_paths"].tasks) == EXPECTED
"""


def test_the_repository_tests_run_against_the_copy_and_a_failure_is_a_finding(tmp_path):
    files = {"dags/qa_paths.py": DAG, "dags/helpers.py": "TASK_ID = 'e'\n"}
    passing = validate(tmp_path / "pass", {**files, "tests/test_dags.py": TESTS.replace("EXPECTED", "1")},
                       subdir="dags", tests="tests")
    assert passing == {"dags": {"qa_paths": "qa_paths.py"}, "errors": {}, "lint": [], "requirements": []}
    failing = validate(tmp_path / "fail", {**files, "tests/test_dags.py": TESTS.replace("EXPECTED", "2")},
                       subdir="dags", tests="tests")
    assert failing["dags"] == {"qa_paths": "qa_paths.py"}
    kind, message = failing["errors"]["tests"]
    assert kind == "tests"
    assert "the repository's tests failed (pytest exit 1)" in message
    assert "FAILED tests/test_dags.py::test_qa_paths_has_one_task" in message and "1 failed, 1 passed" in message
    assert not list((tmp_path / "fail" / "repo").rglob("__pycache__")) and not list((tmp_path / "fail").rglob(".pytest_cache"))


def test_tests_do_not_run_when_the_parse_already_failed(tmp_path):
    result = validate(tmp_path, {"dags/qa_broken.py": "def broken(:\n", "tests/test_x.py": "def test_x():\n    assert False\n"},
                      subdir="dags", tests="tests")
    assert list(result["errors"]) == ["qa_broken.py"], result


IMPORTING_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from qa_shared.names import TASK_ID

with DAG("qa_import_paths", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id=TASK_ID)
"""

IMPORTING_TEST = """
from qa_shared.names import TASK_ID


def test_the_task_id():
    assert TASK_ID == "from_plugins"
"""


def test_the_repositorys_import_paths_come_after_airflow_and_the_dags(tmp_path):
    files = {"dags/qa_import_paths.py": IMPORTING_DAG, "plugins/qa_shared/__init__.py": "",
             "plugins/qa_shared/names.py": "TASK_ID = 'from_plugins'\n", "plugins/copy.py": "VALUE = 4\n",
             "tests/test_names.py": IMPORTING_TEST}
    result = validate(tmp_path, files, subdir="dags", tests="tests", import_paths=["plugins"])
    assert result == {"dags": {"qa_import_paths": "qa_import_paths.py"}, "errors": {}, "lint": [], "requirements": []}
    # Without them, the DAG does not import (and the tests do not run).
    result = validate(tmp_path, subdir="dags", tests="tests")
    assert result["errors"] == {"qa_import_paths.py": ["import", "ModuleNotFoundError: No module named 'qa_shared'"]}


def test_the_repositorys_tests_see_the_import_paths(tmp_path):
    files = {"dags/qa_other.py": DAG.replace("import helpers", "TASK_ID = 'h'").replace("helpers.TASK_ID", "TASK_ID"),
             "plugins/qa_shared/__init__.py": "", "plugins/qa_shared/names.py": "TASK_ID = 'not_from_plugins'\n",
             "tests/test_names.py": IMPORTING_TEST}
    result = validate(tmp_path, files, subdir="dags", tests="tests", import_paths=["plugins"])
    assert list(result["errors"]) == ["tests"], result
    assert "FAILED tests/test_names.py::test_the_task_id" in result["errors"]["tests"][1], result


def test_requirements_the_stack_does_not_satisfy_are_listed_and_nothing_is_installed(tmp_path):
    from importlib.metadata import version

    result = validate(tmp_path, {"helpers.py": "TASK_ID = 'r'\n", "dags/qa_paths.py": DAG}, requirements="""
        # what the DAGs need
        apache-airflow>=3.0  # the stack has it
        apache-airflow-providers-qubinode-nonexistent==1.0
        packaging<1
        pendulum ; python_version < "3"
        -r other.txt
        --index-url https://pypi.example.invalid/simple
        qa-pkg @ https://example.invalid/qa_pkg-1.0-py3-none-any.whl

        not a requirement!
        """)
    assert result["errors"] == {} and result["dags"] == {"qa_paths": "dags/qa_paths.py"}, result
    unread = "not read: only package requirements are (no option, file or URL)"
    assert result["requirements"] == [
        [4, "apache-airflow-providers-qubinode-nonexistent==1.0", None, ""],
        [5, "packaging<1", version("packaging"), ""],
        [7, "-r other.txt", None, unread],
        [8, "--index-url https://pypi.example.invalid/simple", None, unread],
        [9, "qa-pkg @ https://example.invalid/qa_pkg-1.0-py3-none-any.whl", None, unread],
        [11, "not a requirement!", None, unread],
    ], result["requirements"]


REVIEWED_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from qa_review_pkg import TASK_ID

with DAG("qa_reviewed", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id=TASK_ID)
"""

REVIEWED_TEST = """
import os
import sys

from qa_review_pkg import TASK_ID


def test_the_package():
    # The review's packages come first among the site directories, as pip would install them over the
    # virtualenv's (the standard library stays before them).
    site = os.path.dirname(os.path.dirname(sys.modules["qa_review_pkg"].__file__))
    assert [p for p in sys.path if p.endswith("site-packages")][0] == site
    assert TASK_ID == "from_the_review"
"""


def test_a_reviews_packages_are_imported_where_installed_ones_are_and_shadow_no_standard_module(tmp_path):
    # What the module installs into the stage for a merge request whose requirements file adds a package: the
    # package with its metadata and, from a hostile index, modules named like the standard library's.
    site = tmp_path / "site-packages"
    write(site, {"qa_review_pkg/__init__.py": "TASK_ID = 'from_the_review'\n",
                 "qa_review_pkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: qa-review-pkg\nVersion: 1.0\n",
                 "copy.py": "raise SystemExit('the review shadowed the standard library')\n",
                 "json/__init__.py": "raise SystemExit('the review shadowed the standard library')\n"})
    files = {"dags/qa_reviewed.py": REVIEWED_DAG, "tests/test_pkg.py": REVIEWED_TEST}
    result = validate(tmp_path, files, subdir="dags", tests="tests", requirements="qa-review-pkg==1.0\n",
                      site_packages=site)
    assert result == {"dags": {"qa_reviewed": "qa_reviewed.py"}, "errors": {}, "lint": [], "requirements": []}, result
    # Without them, the DAG does not import and the requirement is unmet.
    result = validate(tmp_path, subdir="dags", tests="tests", requirements="qa-review-pkg==1.0\n")
    assert result["errors"] == {"qa_reviewed.py": ["import", "ModuleNotFoundError: No module named 'qa_review_pkg'"]}
    assert result["requirements"] == [[1, "qa-review-pkg==1.0", None, ""]], result


def test_a_hostile_requirements_file_is_listed_bounded_and_printable(tmp_path):
    lines = ["\x1b[31mred", 'qa-extra-only ; extra == "ssh"'] + ["qa-missing-%d" % n for n in range(150)]
    result = validate(tmp_path, {"helpers.py": "TASK_ID = 'r'\n", "dags/qa_paths.py": DAG},
                      requirements="\n".join(lines) + "\n")
    found = result["requirements"]
    assert found[0] == [1, "?[31mred", None, "not read: only package requirements are (no option, file or URL)"]
    # A marker for an extra does not apply to the stack: not listed.
    assert found[1] == [3, "qa-missing-0", None, ""]
    assert len(found) == 101 and found[-1] == [102, "...", None, "not read: the first 100 findings are listed"]
