"""Hostile values for the fields that name a DAG repository: refused where they enter (module, manifest
lookup, registry), with the field named, before any git call or write."""

from __future__ import annotations

import json
import os
import pwd
import re

import pytest

from ansible_collections.qubinode.airflow.plugins.module_utils import _dag_repo as dr
from ansible_collections.qubinode.airflow.plugins.module_utils import _repo_input as ri

SHA = "a" * 40


@pytest.mark.parametrize("value", ["--output=/root/.ssh/authorized_keys", "--add-file=/etc/shadow", "../../etc",
                                   "/etc", "dags/../../x", "dags/./x", "a//b", "dags\n", "-x", "dags/-rf",
                                   "da*gs", "dags:x"])
def test_hostile_subdirs_are_refused(value):
    with pytest.raises(ri.InputError, match="subdir"):
        ri.check_subdir(value)


@pytest.mark.parametrize("value, clean", [("dags", "dags"), ("airflow/dags/", "airflow/dags"), (None, None),
                                          ("", None), ("my.dags-1", "my.dags-1")])
def test_ordinary_subdirs_are_kept(value, clean):
    assert ri.check_subdir(value) == clean


@pytest.mark.parametrize("value", ["--upload-pack=touch /tmp/x", "-main", "a..b", "main\n", "main lock",
                                   "refs/heads/../x", "x.lock", "main@{1}", "a//b", ""])
def test_hostile_refs_are_refused(value):
    with pytest.raises(ri.InputError, match="ref"):
        ri.check_ref(value)


@pytest.mark.parametrize("value", ["main", "release/1.2", "v1.0", "feature_x+y", SHA])
def test_ordinary_refs_are_kept(value):
    assert ri.check_ref(value) == value


@pytest.mark.parametrize("value, says", [
    ("/etc", "path on this host"),
    ("file:///etc/.git", "path on this host"),
    ("./repo", "path on this host"),
    ("ext::sh -c id", "white space"),
    ("-oProxyCommand=id", "may not start with '-'"),
    ("https://user:ghp_secret@github.com/o/r.git", "holds credentials"),
    ("https://ghp_secret@github.com/o/r.git", "holds credentials"),
    ("ssh://git:pw@host/o/r.git", "holds credentials"),
    ("ftp://host/o/r.git", "scheme 'ftp' is not allowed"),
    ("https://host", "give a host and a repository path"),
    ("https://host/r\n.git", "control character"),
])
def test_hostile_urls_are_refused(value, says):
    with pytest.raises(ri.InputError, match=says):
        ri.check_url(value)
    with pytest.raises(ri.InputError) as e:
        ri.check_url(value)
    assert "ghp_secret" not in str(e.value) and ":pw@" not in str(e.value)


def test_a_token_is_not_sent_over_plain_http():
    with pytest.raises(ri.InputError, match="in clear"):
        ri.check_url("http://git.example.com/o/r.git", token=True)
    assert ri.check_url("http://git.example.com/o/r.git") == "http://git.example.com/o/r.git"


@pytest.mark.parametrize("value", ["https://git.example.com/o/r.git", "git@github.com:o/r.git",
                                   "ssh://git@git.example.com:2222/o/r.git", "git://127.0.0.1:9418/dags.git",
                                   "https://[::1]:8443/o/r.git"])
def test_ordinary_urls_are_kept(value):
    assert ri.check_url(value) == value


@pytest.mark.parametrize("value", ["../x", "a/b", "x" * 101, "", "a b", "-"])
def test_hostile_names_are_refused(value):
    if value == "-":
        assert ri.check_name(value) == "-"  # a plain name: letters, digits, '_' and '-'
        return
    with pytest.raises(ri.InputError, match="name"):
        ri.check_name(value)


# -- the registry (an Airflow variable that Op users can edit) -----------------------------------------

def entry(**kw):
    base = dict(url="https://git.example.com/r.git", ref="main", commit=SHA, subdir="dags", pin=True,
                refresh_interval=300, git_conn_id=None, dag_ids=["a"], history=[SHA])
    base.update(kw)
    return {k: v for k, v in base.items() if v != "DROP"}


@pytest.mark.parametrize("name, item, says", [
    ("p", entry(url="DROP"), "entry 'p': field 'url' is missing"),
    ("../../etc", entry(), "entry name"),
    ("p", entry(url="https://u:pw@git.example.com/r.git"), "holds credentials"),
    ("p", entry(subdir="../../.."), "subdir"),
    ("p", entry(import_paths=["plugins", "../../root"]), "import_paths"),
    ("p", entry(import_paths="plugins"), "field 'import_paths' has the wrong type"),
    ("p", entry(commit="HEAD"), "commit"),
    ("p", entry(pin="yes"), "field 'pin' has the wrong type"),
    ("p", entry(evil=1), "unknown field"),
    ("p", entry(git_conn_id="aws_default"), "git_conn_id"),
    ("p", entry(history=["--upload-pack=x"]), "history"),
    ("p", "not a mapping", "is not a mapping"),
    ("p", entry(requirements=["--index-url=https://evil.example/simple"]), "entry 'p': requirements: .* is not a package"),
    ("p", entry(requirements="qa-tool"), "field 'requirements' has the wrong type"),
    ("p", entry(packages=["qa-tool>=1"]), "entry 'p': packages: .* is not a package pin"),
    ("p", entry(requirements_file="../../etc/shadow"), "requirements_file"),
    ("p", entry(test_dir="--rootdir=/"), "test_dir"),
])
def test_a_tampered_registry_entry_is_a_clear_error(name, item, says):
    with pytest.raises(ri.InputError, match=says):
        ri.check_registry({name: item})


class FakeAPI:
    def __init__(self, value):
        self.value = value

    def get_or_none(self, path):
        return {"key": dr.REGISTRY_KEY, "value": json.dumps(self.value)}


def test_an_entry_with_requirements_is_accepted():
    item = entry(requirements=["qa-tool>=1", "qa-base[x]"], packages=["qa-tool==1.0"], requirements_file="deps/r.txt",
                 test_dir="")
    assert ri.check_registry({"p": item}) == {"p": item}


def test_reading_a_tampered_registry_names_the_entry_and_field():
    with pytest.raises(dr.RepoError, match="qubinode_dag_repos, entry 'p': field 'url' is missing"):
        dr.read_registry(FakeAPI({"p": entry(url="DROP")}))
    assert dr.read_registry(FakeAPI({"p": entry()})) == {"p": entry()}


# -- the validation sandbox ---------------------------------------------------------------------------

def test_the_sandbox_never_runs_as_root_the_airflow_user_or_a_missing_user(monkeypatch):
    users = {"root": 0, "airflow": 990, "airflow-validate": 991}

    def getpwnam(name):
        if name not in users:
            raise KeyError(name)
        return pwd.struct_passwd((name, "x", users[name], users[name], "", "/nonexistent", "/sbin/nologin"))

    monkeypatch.setattr(dr.pwd, "getpwnam", getpwnam)
    assert dr.Sandbox("airflow-validate", 30).account("airflow") == (991, 991)
    for user, says in (("root", "is root"), ("airflow", "is the Airflow user"), ("nobody-here", "is not a user")):
        with pytest.raises(dr.RepoError, match="validation_user %r %s" % (user, says)):
            dr.Sandbox(user, 30).account("airflow")
    with pytest.raises(dr.RepoError, match="validation_timeout"):
        dr.Sandbox("airflow-validate", 0).account("airflow")


def props(argv):
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]


def test_the_native_sandbox_hides_secrets_and_bounds_time_memory_and_processes(tmp_path):
    box = dr.Sandbox("v", 60, "1G", 64, secret_paths=("/etc/airflow",), hidden=("/root",))
    argv = dr.sandbox_command(box, "/opt/venv/bin/python", "/w/staging-x", "/w/staging-x/tree/dags",
                              str(tmp_path), 991, 991, "unit")
    p = props(argv)
    for want in ("User=991", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                 "PrivateNetwork=yes", "MemoryMax=1G", "TasksMax=64", "RuntimeMaxSec=60", "KillMode=control-group",
                 "InaccessiblePaths=-/etc/airflow", "InaccessiblePaths=-/root",
                 "BindReadOnlyPaths=/w/staging-x:%s" % dr.SANDBOX_STAGE,
                 "Environment=QUBINODE_SECRET_PATHS=/etc/airflow"):
        assert want in p
    assert argv[-3:] == ["/opt/venv/bin/python", dr.SANDBOX_STAGE + "/qubinode_validate.py",
                         dr.SANDBOX_STAGE + "/tree/dags"]
    networked = dr.sandbox_command(dr.Sandbox("v", 60, network=True), "/p", "/w/s", "/w/s/tree", str(tmp_path),
                                   1, 1, "n")
    assert "PrivateNetwork=yes" not in props(networked)


def test_the_sandbox_finds_dag_files_as_the_stacks_dag_processor(tmp_path):
    (tmp_path / "airflow.cfg").write_text("[core]\ndag_discovery_safe_mode = False\n"
                                          "dag_ignore_file_syntax = regexp\n")
    p = props(dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree", str(tmp_path), 991, 991, "d"))
    assert "Environment=AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE=False" in p
    assert "Environment=AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX=regexp" in p
    # Only what Airflow accepts reaches the command line.
    (tmp_path / "airflow.cfg").write_text("[core]\ndag_ignore_file_syntax = glob\\nX=1 -p User=root\n")
    p = props(dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree", str(tmp_path), 991, 991, "d"))
    assert not [x for x in p if "DAG_IGNORE_FILE_SYNTAX" in x or "User=root" in x]


@pytest.mark.parametrize("value, says", [
    (["plugins", "plugins/"], "import_paths lists 'plugins' twice"),
    ([""], "import_paths holds an empty directory"),
    (["../plugins"], "import_paths '../plugins' must be a relative path"),
    (["a:b"], "wildcards, ':'"),
    (["p%d" % i for i in range(11)], "import_paths lists 11 directories: at most 10"),
])
def test_hostile_import_paths_are_refused_naming_the_field(value, says):
    with pytest.raises(ri.InputError, match=re.escape(says)):
        ri.check_import_paths(value)


def test_the_import_paths_reach_the_sandbox_as_it_sees_the_copy(tmp_path):
    argv = dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree/dags", str(tmp_path), 991, 991, "i",
                              import_paths=["/w/s/tree/plugins", "/w/s/tree/lib/shared"])
    assert "Environment=QUBINODE_IMPORT_PATHS=%s/tree/plugins:%s/tree/lib/shared" % (
        dr.SANDBOX_STAGE, dr.SANDBOX_STAGE) in props(argv)
    assert not [p for p in props(dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree", str(tmp_path),
                                                    991, 991, "n")) if "IMPORT_PATHS" in p]


def test_the_repository_tests_run_in_the_same_sandbox_from_the_staged_copy(tmp_path):
    argv = dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree/dags", str(tmp_path), 991, 991, "t",
                              tests="/w/s/tree/tests", tests_root="/w/s/tree")
    assert argv[-5:] == ["/p", dr.SANDBOX_STAGE + "/qubinode_validate.py", dr.SANDBOX_STAGE + "/tree/dags",
                         dr.SANDBOX_STAGE + "/tree/tests", dr.SANDBOX_STAGE + "/tree"]
    assert "PrivateNetwork=yes" in props(argv)


@pytest.mark.parametrize("field", ["test_dir", "requirements_file"])
@pytest.mark.parametrize("value", ["../tests", "/tests", "-tests", "tests/../../x", "te*sts"])
def test_a_hostile_test_dir_or_requirements_file_is_refused_naming_the_field(value, field):
    with pytest.raises(ri.InputError, match=field):
        ri.check_subdir(value, field=field)


def test_the_sandbox_reads_the_staged_requirements_file(tmp_path):
    argv = dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree", str(tmp_path), 991, 991, "t",
                              requirements="/w/s/requirements.txt")
    assert "Environment=QUBINODE_REQUIREMENTS=%s/requirements.txt" % dr.SANDBOX_STAGE in props(argv)


def test_the_podman_sandbox_mounts_no_secret(tmp_path):
    (tmp_path / "runtime.json").write_text(json.dumps(dict(
        runtime="podman", image="localhost/qubinode-airflow:x", user="990:990",
        volumes=["/etc/airflow:/etc/airflow:ro", "/var/lib/airflow:/var/lib/airflow"], containers=[])))
    argv = dr.sandbox_command(dr.Sandbox("v", 60), "/p", "/w/s", "/w/s/tree", str(tmp_path), 991, 991, "c")
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert volumes == ["/etc/passwd:/etc/passwd:ro", "/etc/group:/etc/group:ro", "/w/s:%s:ro" % dr.SANDBOX_STAGE]
    for flag, value in (("--user", "991:991"), ("--network", "none"), ("--timeout", "60")):
        assert argv[argv.index(flag) + 1] == value
    assert "--read-only" in argv and not any("/etc/airflow" in a for a in argv)


def run_as_is(stage):
    """Runs the sandbox's command line after '--' directly, as this (root) test: what a host whose
    systemd silently skipped the sandbox would do."""

    def run(args, cwd=None, environ_update=None):
        import subprocess

        env = dict(os.environ)
        for prop in props(args):
            if prop.startswith("Environment="):
                key, _eq, value = prop[len("Environment="):].partition("=")
                env[key] = value.replace(dr.SANDBOX_STAGE, stage)
        argv = [a.replace(dr.SANDBOX_STAGE, stage) for a in args[args.index("--") + 1:]]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.mark.skipif(os.geteuid() != 0, reason="shows what happens when the code would run as root")
def test_repository_code_that_would_run_as_root_does_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(dr.Sandbox, "account", lambda self, user: (991, 991))
    stage = tmp_path / "staging-x"
    (stage / "tree").mkdir(parents=True)
    proof = tmp_path / "ran"
    (stage / "tree" / "dag.py").write_text("# an Airflow DAG file\nopen(%r, 'w').write('root')\n" % str(proof))
    monkeypatch.setattr(dr, "run", run_as_is(str(stage)))
    with pytest.raises(dr.RepoError, match="sandbox could not hide uid 0"):
        dr.validate_tree("/usr/bin/python3", dr.Sandbox("v", 30), "airflow", str(stage),
                         str(stage / "tree"), str(tmp_path))
    assert not proof.exists()
