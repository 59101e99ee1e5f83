"""The git bundle of a repository with import paths, with real git and Airflow's own bundle and parse: the DAGs
of dags/ import from plugins/, in the dag-processor's tracking checkout and in a task's versioned one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qubinode_airflow.repos.bundle import checked_import_paths


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")).stdout.strip()


DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from qa_shared.names import TASK_ID

with DAG("qa_import_paths", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    EmptyOperator(task_id=TASK_ID)
"""

# Run in a process of its own (its sys.path is what is tested): initialize the bundle as the dag-processor does
# (tracking checkout) or as a task's runner does (version), then parse its path with Airflow's BundleDagBag.
PARSE = """
import importlib, json, sys
from airflow.dag_processing.dagbag import BundleDagBag
spec = json.loads(sys.argv[1])
module, name = spec["classpath"].rsplit(".", 1)
bundle = getattr(importlib.import_module(module), name)(name=spec["name"], version=spec.get("version"), **spec["kwargs"])
bundle.initialize()
bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=spec["name"])
print(json.dumps({"dags": {d: [t.task_id for t in dag.tasks] for d, dag in bag.dags.items()},
                  "errors": [m.strip().splitlines()[-1] for m in bag.import_errors.values()]}))
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("import-paths")
    origin, work = root / "origin.git", root / "work"
    git("init", "--bare", "-q", "-b", "main", str(origin))
    git("clone", "-q", str(origin), str(work))
    (work / "dags").mkdir()
    (work / "dags" / "qa_import_paths.py").write_text(DAG)
    (work / "plugins" / "qa_shared").mkdir(parents=True)
    (work / "plugins" / "qa_shared" / "__init__.py").write_text("")
    (work / "plugins" / "qa_shared" / "names.py").write_text("TASK_ID = 'from_plugins'\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "dags and plugins", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    return root, str(origin), git("rev-parse", "HEAD", cwd=work)


def parse(root, spec):
    env = dict(os.environ, AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH=str(root / "bundles"))
    proc = subprocess.run([sys.executable, "-c", PARSE, json.dumps(spec)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("version", [False, True], ids=["dag-processor", "task-runner"])
def test_the_dags_import_from_the_repositorys_import_paths(repo, version):
    root, origin, sha = repo
    spec = {"name": "qa_paths_%s" % ("v" if version else "t"), "version": sha if version else None,
            "classpath": "qubinode_airflow.repos.bundle.GitDagBundleWithImportPaths",
            "kwargs": {"repo_url": origin, "tracking_ref": sha, "subdir": "dags", "import_paths": ["plugins"]}}
    assert parse(root, spec) == {"dags": {"qa_import_paths": ["from_plugins"]}, "errors": []}


def test_without_import_paths_the_same_repository_does_not_import(repo):
    root, origin, sha = repo
    spec = {"name": "qa_plain", "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
            "kwargs": {"repo_url": origin, "tracking_ref": sha, "subdir": "dags"}}
    result = parse(root, spec)
    assert result["dags"] == {} and result["errors"] == ["ModuleNotFoundError: No module named 'qa_shared'"], result


@pytest.mark.parametrize("value", [["../../etc"], ["/etc"], ["plugins/../.."], ["-x"], ["a:b"], "plugins",
                                   ["p%d" % i for i in range(11)], [""]])
def test_an_import_path_out_of_the_checkout_is_refused(value):
    with pytest.raises(ValueError, match="import_paths"):
        checked_import_paths(value)


# -- a pinned repository: the bundle serves the commit of root's pin file ---------------------------------

def commit(work, name, text):
    (work / "dags" / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", name, cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def pinned(tmp_path, monkeypatch):
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git("init", "--bare", "-q", "-b", "main", str(origin))
    git("clone", "-q", str(origin), str(work))
    (work / "dags").mkdir()
    shas = [commit(work, "one.py", "x = 1\n"), commit(work, "two.py", "y = 2\n")]
    pins = tmp_path / "bundle-pins"
    pins.mkdir(mode=0o755)
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "bundles"))
    return dict(origin=str(origin), work=work, shas=shas, pin=pins / "qa_pinned")


def pin(path, sha, mode=0o644):
    path.write_text(sha + "\n")
    os.chmod(path, mode)


def pinned_bundle(spec, version=None):
    from qubinode_airflow.repos.bundle import PinnedGitDagBundle

    return PinnedGitDagBundle(name="qa_pinned", version=version, repo_url=spec["origin"], tracking_ref="main",
                              subdir="dags", pin_file=str(spec["pin"]))


def test_the_dag_processor_serves_the_pin_not_the_branch_and_a_new_pin_at_its_next_refresh(pinned):
    one, two = pinned["shas"]
    pin(pinned["pin"], one)
    bundle = pinned_bundle(pinned)
    bundle.initialize()
    assert bundle.get_current_version().version == one  # the branch is at `two`, which nobody pinned
    assert sorted(os.listdir(bundle.path)) == ["one.py"]
    # A commit pushed after the checkout was made, pinned: the same process serves it at its refresh.
    three = commit(pinned["work"], "three.py", "z = 3\n")
    pin(pinned["pin"], three)
    bundle.refresh()
    assert bundle.get_current_version().version == three
    assert sorted(os.listdir(bundle.path)) == ["one.py", "three.py", "two.py"]
    # A rollback pin: back to `one` at the next refresh, and a new process starts there too.
    pin(pinned["pin"], one)
    bundle.refresh()
    assert bundle.get_current_version().version == one
    again = pinned_bundle(pinned)
    again.initialize()
    assert again.get_current_version().version == one


def test_a_pin_that_someone_else_could_have_written_stops_the_bundle(pinned, tmp_path):
    from qubinode_airflow.repos.bundle import PinError

    one, two = pinned["shas"]
    pin(pinned["pin"], one)
    bundle = pinned_bundle(pinned)
    bundle.initialize()
    attacks = {"group-writable": lambda p: pin(p, two, 0o664), "not a SHA": lambda p: pin(p, "main"),
               "link": lambda p: (p.unlink(), os.symlink(tmp_path / "elsewhere", p)),
               "missing": lambda p: p.unlink()}
    if os.geteuid() == 0:
        attacks["another user's"] = lambda p: (pin(p, two), os.chown(p, 65534, 65534))
    for what, attack in attacks.items():
        if os.path.lexists(pinned["pin"]):
            os.unlink(pinned["pin"])
        pin(pinned["pin"], one)
        attack(pinned["pin"])
        (tmp_path / "elsewhere").write_text(two + "\n")
        with pytest.raises(PinError, match="pin"):
            bundle.refresh()
        assert bundle.get_current_version().version == one, what  # still serving the last good pin
        with pytest.raises(PinError):
            pinned_bundle(pinned)
    os.unlink(pinned["pin"])
    pin(pinned["pin"], one)
    os.chmod(pinned["pin"].parent, 0o777)
    with pytest.raises(PinError, match="directory of .* must be root's and writable by root only"):
        pinned_bundle(pinned)


def test_a_task_runner_checks_out_its_version_without_reading_the_pin(pinned):
    one, two = pinned["shas"]
    bundle = pinned_bundle(pinned, version=two)  # no pin file on this host (yet)
    bundle.initialize()
    assert bundle.get_current_version().version == two and sorted(os.listdir(bundle.path)) == ["one.py", "two.py"]
