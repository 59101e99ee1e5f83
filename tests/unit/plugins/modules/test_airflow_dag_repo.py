"""Git DAG repositories: secret scan, git resolution on real repositories, the host's bundle list."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from temporal_server import free_port
from wheels import make_wheel

# Stale bundle clones are removed as the Airflow user; in these tests, as whoever runs them.
USER = pwd.getpwuid(os.geteuid()).pw_name

from ansible_collections.qubinode.airflow.plugins.module_utils import _dag_repo as dr
from ansible_collections.qubinode.airflow.plugins.module_utils import _host as host


class Runner:
    """The one AnsibleModule method the code uses, run for real. The host's init system and
    container engine are not: `systemd-run` runs its command here, with a `systemctl` and a `podman`
    that record their arguments."""

    systemctl = []
    podman = []
    fakebin = None
    fail = None  # a systemctl (or podman) verb that fails

    def run_command(self, args, cwd=None, environ_update=None):
        env = dict(os.environ, **(environ_update or {}))
        if args[0] == "systemctl":
            Runner.systemctl.append(args[1:])
            return 0, "", ""
        if args[0] == "systemd-run":
            for tool in ("systemctl", "podman"):
                log = os.path.join(Runner.fakebin, tool + ".calls")
                with open(os.path.join(Runner.fakebin, tool), "w") as f:
                    f.write('#!/bin/sh\necho "$@" >> %s\n[ "$1" != "%s" ]\n' % (log, Runner.fail))
                os.chmod(os.path.join(Runner.fakebin, tool), 0o755)
            args = args[args.index("--") + 1:]
            env["PATH"] = Runner.fakebin + os.pathsep + env["PATH"]
            proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
            for tool in ("systemctl", "podman"):
                log = os.path.join(Runner.fakebin, tool + ".calls")
                if os.path.exists(log):
                    with open(log) as f:
                        getattr(Runner, tool).extend(line.split() for line in f)
                    os.remove(log)
            return proc.returncode, proc.stdout, proc.stderr
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_daemon(tmp_path):
    """A real git server on loopback serving tmp_path/srv (local paths are refused by the module)."""
    srv = tmp_path / "srv"
    srv.mkdir()
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--base-path=%s" % srv, "--export-all", "--reuseaddr",
                             "--listen=127.0.0.1", "--port=%d" % port, str(srv)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield srv, "git://127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(10)


def wait_served(url):
    deadline = time.monotonic() + 20
    while subprocess.run(["git", "ls-remote", url], capture_output=True, check=False).returncode != 0:
        assert time.monotonic() < deadline, "git daemon did not serve %s" % url
        time.sleep(0.2)


@pytest.fixture
def upstream(tmp_path, git_daemon):
    """A bare repository with two commits on main and a tag, pushed from a work tree, served by git daemon."""
    srv, base = git_daemon
    bare, work = srv / "up.git", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    git("config", "user.email", "qa@example.com", cwd=work)
    git("config", "user.name", "qa", cwd=work)
    (work / "dags").mkdir()
    (work / "dags" / "one.py").write_text("x = 1\n")
    (work / "README").write_text("top\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    git("tag", "v1", cwd=work)
    (work / "dags" / "two.py").write_text("y = 2\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "two", cwd=work)
    git("push", "-q", str(bare), "main", "--tags", cwd=work)
    wait_served(base + "/up.git")
    return dict(url=base + "/up.git", bare=bare, work=work, v1=git("rev-parse", "v1", cwd=work),
                head=git("rev-parse", "HEAD", cwd=work))


# -- secret scan ---------------------------------------------------------------------------------

@pytest.mark.parametrize("line, kind", [
    ('KEY = "AKIAQ7EXAMPLE2345678"', "AWS access key id"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY12", "AWS secret access key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    ("-----BEGIN RSA PRIVATE KEY-----", "private key"),
    ('DB = "postgresql://etl:hunter22@db.example.com/dw"', "password in a URI"),
    ("token = 'ghp_" + "a" * 36 + "'", "GitHub token"),
    ("SLACK = 'xoxb-1234567890-abcdefghij'", "Slack token"),
])
def test_secret_scan_finds(tmp_path, line, kind):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "settings.py").write_text("# config\n" + line + "\n")
    (finding,) = dr.scan_secrets(str(tmp_path))
    assert finding["file"] == "sub/settings.py" and finding["line"] == 2
    assert finding["message"].startswith(kind)
    assert line.split("=")[-1].strip(" '\"") not in json.dumps(finding)  # the value is never repeated


@pytest.mark.parametrize("line", [
    'URL = "postgresql://user:password@db.example.com/dw"',
    'URL = "postgresql://etl:${DB_PASSWORD}@db/dw"',
    'URL = "https://github.com/org/repo.git"',
    'URL = "mysql://etl:***@db/dw"',
    "aws_region = 'us-east-1'",
    "from airflow.sdk import dag  # AKIA in a comment is short",
])
def test_secret_scan_leaves_ordinary_code(tmp_path, line):
    (tmp_path / "dag.py").write_text(line + "\n")
    assert dr.scan_secrets(str(tmp_path)) == []


@pytest.mark.parametrize("line, kind", [
    ("TOKEN = 'github_pat_" + "A1b2" * 10 + "'", "GitHub fine-grained token"),
    ("TOKEN = 'glpat-" + "x1Y2z3" * 4 + "'", "GitLab token"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "private key"),
    ('URL = "postgresql://etl:pa/ss/word@db.example.com/dw"', "password in a URI"),
    ('URL = "redis://:hunter22@cache.example.com:6379/0"', "password in a URI"),
    # a placeholder elsewhere on the line does not hide a real password
    ('A = "mysql://u:password@db/x"; B = "mysql://etl:hunter22@db2/x"', "password in a URI"),
])
def test_secret_scan_finds_what_it_used_to_miss(tmp_path, line, kind):
    (tmp_path / "dag.py").write_text(line + "\n")
    (finding,) = dr.scan_secrets(str(tmp_path))
    assert finding["message"].startswith(kind) and finding["line"] == 1


def test_secret_scan_reads_binary_and_large_files(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\0" * 9000 + b"\nAKIAQ7EXAMPLE2345678\n")
    with open(tmp_path / "big.txt", "wb") as f:
        f.write((b"x" * 1000 + b"\n") * 3000)  # 3 MB, beyond the old 2 MiB cut
        f.write(b"key = 'AKIAQ7EXAMPLE2345679'\n")
    found = sorted((f["file"], f["line"]) for f in dr.scan_secrets(str(tmp_path)))
    assert found == [("big.txt", 3001), ("blob.bin", 2)]


def test_secret_scan_follows_no_link(tmp_path):
    """Links to a device that never ends and to a root-only file: reported, never read."""
    tree = tmp_path / "tree"
    (tree / "dags").mkdir(parents=True)
    os.symlink("/dev/zero", tree / "dags" / "zero.py")
    os.symlink("/etc/shadow", tree / "shadow")
    os.symlink("/etc", tree / "dags" / "etc")  # a linked directory is not walked
    os.symlink("one.py", tree / "dags" / "alias.py")  # a link inside the tree is fine
    (tree / "dags" / "one.py").write_text("x = 1\n")
    started = time.monotonic()
    report = dr.scan_secrets(str(tree))
    assert time.monotonic() - started < 5
    assert sorted((f["file"], f["kind"]) for f in report) == [
        ("dags/etc", "link"), ("dags/zero.py", "link"), ("shadow", "link")]
    assert all("root:" not in json.dumps(f) for f in report)


def test_an_accepted_finding_is_listed_by_fingerprint(tmp_path):
    (tmp_path / "dag.py").write_text('URL = "postgresql://etl:hunter22@db/dw"\nKEY = "AKIAQ7EXAMPLE2345678"\n')
    first = dr.scan_secrets(str(tmp_path))
    assert len(first) == 2 and all(len(f["fingerprint"]) == 16 for f in first)
    (tmp_path / dr.ALLOW_FILE).write_text("# reviewed: test fixture\n%s\n" % first[0]["fingerprint"])
    assert [f["line"] for f in dr.scan_secrets(str(tmp_path))] == [2]
    assert "hunter22" not in (tmp_path / dr.ALLOW_FILE).read_text()


# -- git -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref, expect", [("main", "head"), ("v1", "v1")])
def test_resolve_reads_branches_and_tags_without_writing(upstream, ref, expect, tmp_path):
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    try:
        assert g.resolve(ref) == upstream[expect]
        assert g.resolve(upstream["v1"]) == upstream["v1"]  # a full SHA is taken as it is
    finally:
        g.close()


def test_unknown_ref_is_a_clear_error(upstream, tmp_path):
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    with pytest.raises(dr.RepoError, match="ref 'nope' is not a branch or tag of .*full 40-character commit SHA"):
        g.resolve("nope")
    g.close()


def test_fetch_and_export_a_subdir_at_a_commit(upstream, tmp_path):
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    mirror = str(tmp_path / "mirror.git")
    g.fetch(mirror)
    tree = g.export(mirror, upstream["v1"], "dags", str(tmp_path / "stage"))
    assert sorted(os.listdir(tree)) == ["one.py"]
    with pytest.raises(dr.RepoError, match="commit 0{40} is not in"):
        g.export(mirror, "0" * 40, "dags", str(tmp_path / "stage2"))
    g.close()


class PushModule(Runner):
    """An AnsibleModule as DagRepo.forward_commit reads it, with git run for real."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = False
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def push_repo(upstream, tmp_path, commit, check_mode=False, **kw):
    from ansible_collections.qubinode.airflow.plugins.modules import airflow_dag_repo as mod

    params = dict(api_url="http://127.0.0.1:9", api_username="admin", api_password="x", api_token=None,
                  validate_certs=True, ca_path=None, api_timeout=1.0, api_retries=0, name="team_a",
                  url=upstream["url"], ref="main", commit=commit, forward_only=True, token=None,
                  ssh_private_key=None, username="x-access-token", work_dir=str(tmp_path / "repos"))
    params.update(kw)
    module = PushModule(params, check_mode)
    repo = mod.DagRepo(module)
    return repo, dr.Git(upstream["url"], workdir=str(tmp_path))


def test_a_push_newer_than_the_pin_is_pinned_and_an_older_one_is_superseded(upstream, tmp_path):
    (tmp_path / "repos" / "team_a").mkdir(parents=True)
    repo, g = push_repo(upstream, tmp_path, upstream["head"])
    assert repo.forward_commit(g, {"commit": upstream["v1"]}) == upstream["head"]
    assert repo.result["superseded"] is False
    # The older push finishes after the newer one: the newer one stays pinned.
    repo, g = push_repo(upstream, tmp_path, upstream["v1"])
    assert repo.forward_commit(g, {"commit": upstream["head"]}) == upstream["head"]
    assert repo.result["superseded"] is True
    assert "older than the pinned" in repo.module.warnings[0]
    # A repository not registered yet takes the push.
    repo, g = push_repo(upstream, tmp_path, upstream["v1"])
    assert repo.forward_commit(g, None) == upstream["v1"]


def test_forward_only_without_a_commit_is_refused_before_anything(upstream, tmp_path):
    repo, g = push_repo(upstream, tmp_path, None, subdir=None, test_dir="tests", import_paths=[], state="present")
    g.close()
    with pytest.raises(dr.RepoError, match="forward_only needs commit"):
        repo.check_input()
    assert not (tmp_path / "repos").exists()


def test_the_head_of_a_merge_request_is_fetched_only_into_a_review_mirror(upstream, tmp_path):
    work = upstream["work"]
    git("checkout", "-q", "-b", "feature", cwd=work)
    (work / "dags" / "review.py").write_text("r = 1\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "review", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    git("push", "-q", str(upstream["bare"]), "HEAD:refs/pull/7/head", cwd=work)  # as GitHub publishes it
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    mirror, review = str(tmp_path / "mirror.git"), str(tmp_path / "review.git")
    g.fetch(mirror)
    with pytest.raises(dr.RepoError, match="commit %s is not in" % head):
        g.export(mirror, head, "dags", str(tmp_path / "stage"))
    g.fetch(review, extra_refs=("refs/pull/7/head",))
    assert sorted(os.listdir(g.export(review, head, "dags", str(tmp_path / "stage2")))) == ["one.py", "review.py", "two.py"]
    assert git("--git-dir", review, "rev-parse", "refs/pull/7/head") == head
    g.close()


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/pull/0/head", "refs/pull/1/merge", "--upload-pack=x",
                                 "refs/merge-requests/1/head:refs/heads/main", "refs/pull/1/head/../../x"])
def test_a_review_ref_is_the_head_of_a_merge_request_or_refused(ref):
    from ansible_collections.qubinode.airflow.plugins.module_utils._repo_input import InputError, check_review_ref

    with pytest.raises(InputError, match="review_ref .*refs/pull/<number>/head"):
        check_review_ref(ref)
    assert check_review_ref("refs/merge-requests/12/head") == "refs/merge-requests/12/head"


def test_a_push_commit_that_is_not_on_the_ref_is_refused(upstream, tmp_path):
    work = upstream["work"]
    git("checkout", "-q", "-b", "side", upstream["v1"], cwd=work)
    (work / "dags" / "side.py").write_text("z = 3\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "side", cwd=work)
    git("push", "-q", str(upstream["bare"]), "side", cwd=work)
    side = git("rev-parse", "HEAD", cwd=work)
    (tmp_path / "repos" / "team_a").mkdir(parents=True)
    repo, g = push_repo(upstream, tmp_path, side)
    with pytest.raises(dr.RepoError, match="commit %s is not on main .*still serving %s" % (side[:12], upstream["v1"][:12])):
        repo.forward_commit(g, {"commit": upstream["v1"]})


def test_a_push_to_a_repository_with_credentials_needs_them_given(upstream, tmp_path):
    repo, g = push_repo(upstream, tmp_path, upstream["head"])
    with pytest.raises(dr.RepoError, match="registered with credentials .*qubinode_git_team_a.*give them again"):
        repo.forward_commit(g, {"commit": upstream["v1"], "git_conn_id": "qubinode_git_team_a"})
    repo, g = push_repo(upstream, tmp_path, upstream["head"], check_mode=True)
    assert repo.forward_commit(g, {"commit": upstream["v1"]}) == upstream["head"]
    assert not (tmp_path / "repos").exists()  # check mode fetched nothing


def test_git_runs_no_hook_or_fsmonitor_a_repository_carries(upstream, tmp_path):
    """Hooks and code-running config planted in the mirror (as a non-root user could when the mirror
    lay in a directory it could write) are never run by root's git."""
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    mirror = tmp_path / "mirror.git"
    g.fetch(str(mirror))
    proof = tmp_path / "pwned"
    for hook in ("reference-transaction", "post-checkout", "pre-auto-gc", "post-index-change"):
        (mirror / "hooks" / hook).write_text("#!/bin/sh\ntouch %s\n" % proof)
        os.chmod(mirror / "hooks" / hook, 0o755)
    with open(mirror / "config", "a") as f:
        f.write("[core]\n\tfsmonitor = touch %s\n\thooksPath = %s\n" % (proof, mirror / "hooks"))
    (upstream["work"] / "three.py").write_text("z = 3\n")
    git("add", "-A", cwd=upstream["work"])
    git("commit", "-qm", "three", cwd=upstream["work"])
    git("push", "-q", str(upstream["bare"]), "main", cwd=upstream["work"])
    g.fetch(str(mirror))
    g.export(str(mirror), git("rev-parse", "HEAD", cwd=upstream["work"]), None, str(tmp_path / "stage"))
    g.close()
    assert not proof.exists()


@pytest.mark.parametrize("url", ["/srv/repos/etc.git", "file:///etc", "ext::sh -c touch% /tmp/x"])
def test_git_refuses_local_and_command_transports(url, tmp_path):
    g = dr.Git(url, workdir=str(tmp_path))
    with pytest.raises(dr.RepoError, match="git ls-remote failed"):
        g.resolve("main")
    g.close()


@pytest.mark.parametrize("subdir", ["--output=%(out)s", "--add-file=/etc/hostname", "-o%(out)s"])
def test_a_subdir_is_never_read_as_an_option(upstream, tmp_path, subdir):
    out = tmp_path / "written-by-git"
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    g.fetch(str(tmp_path / "mirror.git"))
    with pytest.raises(dr.RepoError, match="git archive"):
        g.export(str(tmp_path / "mirror.git"), upstream["head"], subdir % dict(out=out), str(tmp_path / "stage"))
    g.close()
    assert not out.exists()
    assert not (tmp_path / "stage" / "hostname").exists()


def test_a_subdir_that_is_a_link_is_refused(upstream, tmp_path):
    os.symlink("/etc", upstream["work"] / "linked")
    git("add", "-A", cwd=upstream["work"])
    git("commit", "-qm", "link", cwd=upstream["work"])
    git("push", "-q", str(upstream["bare"]), "main", cwd=upstream["work"])
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    g.fetch(str(tmp_path / "mirror.git"))
    with pytest.raises(dr.RepoError, match="subdir 'linked' is not a directory .*link is not followed"):
        g.export(str(tmp_path / "mirror.git"), git("rev-parse", "HEAD", cwd=upstream["work"]), "linked",
                 str(tmp_path / "stage"))
    g.close()


def test_an_import_path_that_is_a_link_or_missing_is_not_a_directory_of_the_commit(upstream, tmp_path):
    """What the module checks for each of import_paths before it exports anything."""
    os.symlink("/etc", upstream["work"] / "plugins")
    os.symlink("/etc", upstream["work"] / "dags" / "lib")
    git("add", "-A", cwd=upstream["work"])
    git("commit", "-qm", "links", cwd=upstream["work"])
    git("push", "-q", str(upstream["bare"]), "main", cwd=upstream["work"])
    head = git("rev-parse", "HEAD", cwd=upstream["work"])
    g = dr.Git(upstream["url"], workdir=str(tmp_path))
    mirror = str(tmp_path / "mirror.git")
    g.fetch(mirror)
    assert g.has_tree(mirror, head, "dags")
    for path in ("plugins", "dags/lib", "dags/lib/passwd", "missing"):
        assert not g.has_tree(mirror, head, path), path
    g.close()


# -- the root-only work directory ------------------------------------------------------------------

def test_the_work_dir_is_made_root_only(tmp_path):
    path = tmp_path / "a" / "dag-repos"
    dr.ensure_root_dir(str(path))
    assert oct(os.stat(path).st_mode & 0o777) == "0o700" and os.stat(path).st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
@pytest.mark.parametrize("attack", ["link", "owner", "writable"])
def test_a_work_dir_another_user_controls_is_refused(tmp_path, attack):
    parent = tmp_path / "airflow-home"
    parent.mkdir()
    target = parent / "dag-repos"
    if attack == "link":
        (tmp_path / "elsewhere").mkdir()
        os.symlink(tmp_path / "elsewhere", target)
        match = "is a symbolic link"
    elif attack == "owner":
        os.chown(parent, 65534, 65534)
        match = "owned by uid 65534"
    else:
        os.chmod(parent, 0o777)
        match = "writable by root only"
    with pytest.raises(dr.RepoError, match=match):
        dr.ensure_root_dir(str(target))
    assert not (tmp_path / "elsewhere" / ".lock").exists()


def test_credentials_travel_in_the_environment_only(tmp_path):
    g = dr.Git("https://git.example.com/r.git", token="tok-123", workdir=str(tmp_path))
    last = int(g.env["GIT_CONFIG_COUNT"]) - 1
    assert g.env["GIT_CONFIG_KEY_%d" % last] == "http.extraHeader"
    assert g.env["GIT_CONFIG_VALUE_%d" % last].startswith("Authorization: Basic ")
    assert "tok-123" not in json.dumps(g.env)  # base64 in a header, not the token as text
    key = dr.Git("git@git.example.com:r.git", ssh_private_key="-----KEY-----", workdir=str(tmp_path))
    path = key.env["GIT_SSH_COMMAND"].split()[2]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    key.close()
    assert not os.path.exists(path)


# -- the host's bundle list --------------------------------------------------------------------------

BASE = [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": "/var/lib/airflow/dags"}}]


@pytest.fixture
def confdir(tmp_path, monkeypatch):
    """An Airflow core host: airflow.cfg with the local bundle, and every Airflow unit installed."""
    units = tmp_path / "units"
    units.mkdir()
    for unit in host.AIRFLOW_UNITS:
        if unit != "airflow-temporal-worker":
            (units / ("%s.service" % unit)).write_text("")
    monkeypatch.setattr(host, "UNIT_DIR", str(units))
    # No scheduler of this machine's (a test host's, say) counts as this host's.
    (tmp_path / "no-processes").mkdir()
    monkeypatch.setattr(host, "PROC", str(tmp_path / "no-processes"))
    host.deferred.clear()
    Runner.systemctl, Runner.podman, Runner.fail = [], [], None
    Runner.fakebin = str(tmp_path / "bin")
    os.mkdir(Runner.fakebin)
    storage = tmp_path / "bundles"
    (tmp_path / "airflow.cfg").write_text(
        "[dag_processor]\ndag_bundle_storage_path = %s\ndag_bundle_config_list = %s\n" % (storage, json.dumps(BASE)))
    return tmp_path


CORE_UNITS = {"airflow-dag-processor", "airflow-scheduler", "airflow-triggerer", "airflow-api-server"}


def repo(commit, **kw):
    return dict(dict(url="https://git.example.com/r.git", ref="main", subdir="dags", pin=True,
                     refresh_interval=300, commit=commit, git_conn_id=None), **kw)


def test_bundles_env_is_written_once_and_read_back(confdir):
    registry = {"platform": repo("a" * 40)}
    changed, restarted, bundles = dr.apply_to_host(Runner(), registry, str(confdir), USER, False)
    assert changed and set(restarted) == CORE_UNITS
    assert [b["name"] for b in bundles] == ["dags-folder", "platform"]
    # The commit is in root's pin file, which the bundle reads; the list names the branch it was validated from.
    assert bundles[1]["classpath"] == dr.PINNED_BUNDLE and bundles[1]["kwargs"]["tracking_ref"] == "main"
    pin = confdir / "bundle-pins" / "platform"
    assert bundles[1]["kwargs"]["pin_file"] == str(pin) and pin.read_text() == "a" * 40 + "\n"
    assert oct(os.stat(pin).st_mode & 0o777) == "0o644" and os.stat(pin).st_uid == os.geteuid()
    assert oct(os.stat(pin.parent).st_mode & 0o777) == "0o755"
    assert dr.read_env_file(str(confdir / "bundles.env")) == bundles
    assert oct(os.stat(confdir / "bundles.env").st_mode & 0o777) == "0o644"
    assert dr.apply_to_host(Runner(), registry, str(confdir), USER, False) == (False, [], bundles)


def test_a_repository_with_import_paths_is_served_by_the_bundle_that_puts_them_on_sys_path(confdir):
    registry = {"platform": repo("a" * 40, import_paths=["plugins"], pin=False), "plain": repo("b" * 40, pin=False),
                "pinned": repo("c" * 40, import_paths=["lib"])}
    _changed, _restarted, bundles = dr.apply_to_host(Runner(), registry, str(confdir), USER, False)
    served = dict((b["name"], b) for b in bundles)
    assert served["platform"]["classpath"] == dr.IMPORT_PATHS_BUNDLE
    assert served["platform"]["kwargs"]["import_paths"] == ["plugins"]
    assert served["plain"]["classpath"] == dr.GIT_BUNDLE and "import_paths" not in served["plain"]["kwargs"]
    # The pinned bundle's class derives from the import-paths one.
    assert served["pinned"]["classpath"] == dr.PINNED_BUNDLE and served["pinned"]["kwargs"]["import_paths"] == ["lib"]
    # A new URL still drops the clones of the bundle, whichever class serves it.
    assert ("platform", "bare") in dr.stale_clones([], bundles)


class ParseApi:
    """The calls of a refresh request: the bundle's DAGs (with their file tokens), then a parse of each file."""

    def __init__(self, tokens=("tok-1", "tok-2", "tok-1")):
        self.tokens, self.calls = tokens, []

    def list_all(self, path, key, query=None):
        self.calls.append(("LIST", path, query))
        return [{"dag_id": "d%d" % n, "file_token": t} for n, t in enumerate(self.tokens)]

    def request(self, method, path, query=None):
        self.calls.append((method, path, query))


def test_a_new_pin_restarts_nothing_and_asks_the_dag_processor_to_refresh_the_bundle(confdir):
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    clone = confdir / "bundles" / "platform" / "tracking_repo"
    clone.mkdir(parents=True)
    Runner.systemctl.clear()
    api = ParseApi()
    changed, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(confdir), USER, False,
                                              api=api)
    assert changed and restarted == [] and Runner.systemctl == []
    assert (confdir / "bundle-pins" / "platform").read_text() == "b" * 40 + "\n"
    # Every file of the bundle is parsed again (two DAGs of one file: one request), not only the new ones.
    assert api.calls == [("LIST", "dags", {"bundle_name": "platform"}), ("PUT", "parseDagFile/tok-1", None),
                         ("PUT", "parseDagFile/tok-2", None)]
    assert clone.exists()  # the bundle fetches the new pin into its checkout itself
    # The same pin again: nothing to do, nothing asked.
    assert dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(confdir), USER, False, api=api)[0] is False
    assert len(api.calls) == 3


def test_a_new_pin_of_a_bundle_without_a_dag_restarts_the_dag_processor_only(confdir):
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    changed, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(confdir), USER, False,
                                              api=ParseApi(tokens=()))
    assert changed and restarted == ["airflow-dag-processor"]
    assert Runner.systemctl[-2:] == [["stop", "airflow-dag-processor"], ["start", "airflow-dag-processor"]]


def test_a_planted_pin_is_replaced_never_followed_and_a_linked_pin_directory_is_refused(confdir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (confdir / "bundle-pins").mkdir(mode=0o755)
    os.symlink(victim, confdir / "bundle-pins" / "platform")
    os.symlink(victim, confdir / "bundle-pins" / "gone")
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    pin = confdir / "bundle-pins" / "platform"
    assert not pin.is_symlink() and pin.read_text() == "a" * 40 + "\n"
    assert not os.path.lexists(confdir / "bundle-pins" / "gone") and victim.read_text() == "keep\n"
    shutil.rmtree(confdir / "bundle-pins")
    os.symlink(tmp_path, confdir / "bundle-pins")
    with pytest.raises(dr.RepoError, match="the pin directory: .*bundle-pins is a symbolic link"):
        dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(confdir), USER, False)
    assert not (tmp_path / "platform").exists()


def fake_proc(tmp_path, *titles):
    proc = tmp_path / "proc"
    for pid, title in enumerate(titles, start=100):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(title.replace(b" ", b"\0"))
    (proc / "self").mkdir()
    return str(proc)


def test_a_busy_scheduler_restarts_on_its_own_after_the_others_without_being_waited_for(confdir, monkeypatch):
    """The task that registers a repository runs under the scheduler, which waits for it before it stops:
    waiting for that stop would hold the task, and the task the stop, until the drain times out."""
    monkeypatch.setattr(host, "PROC", fake_proc(confdir, b"airflow scheduler",
                                                b"airflow worker -- LocalExecutor: <idle>",
                                                b"airflow worker -- LocalExecutor: qubinode_dag_repo_register/register"))
    _c, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    assert set(restarted) == CORE_UNITS
    others = sorted(CORE_UNITS - {"airflow-scheduler"})
    assert [sorted(c[1:]) for c in Runner.systemctl[:2]] == [others, others]
    assert [c[0] for c in Runner.systemctl[:2]] == ["stop", "start"]
    assert Runner.systemctl[2:] == [["restart", "airflow-scheduler"]]
    # Then the API is waited for without the draining scheduler's health (which waits for the caller).
    dr.wait_healthy(Health({"metadatabase": {"status": "healthy"}, "scheduler": {"status": "unhealthy"},
                            "dag_processor": {"status": "healthy"}}), timeout=5)


class Health:
    def __init__(self, answer):
        self.answer = answer

    def request(self, method, path):
        assert (method, path) == ("GET", "monitor/health")
        return self.answer


def test_without_a_deferred_restart_an_unhealthy_scheduler_is_waited_for(confdir):
    with pytest.raises(dr.RepoError, match="did not come back within 3s"):
        dr.wait_healthy(Health({"metadatabase": {"status": "healthy"}, "scheduler": {"status": "unhealthy"}}), timeout=3)


def test_an_idle_scheduler_restarts_with_the_others(confdir, monkeypatch):
    monkeypatch.setattr(host, "PROC", fake_proc(confdir, b"airflow scheduler", b"airflow worker -- LocalExecutor: <idle>"))
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    assert [(c[0], sorted(c[1:])) for c in Runner.systemctl] == [("stop", sorted(CORE_UNITS)), ("start", sorted(CORE_UNITS))]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_stale_clones_are_removed_as_the_airflow_user_never_through_a_planted_link(confdir):
    """The bundle storage belongs to the Airflow user, who can plant a link there: root's cleanup would
    remove what the link points to. As the owner, the own stale clone goes, the linked one stays."""
    owner = "nobody"
    base = tempfile.mkdtemp(dir="/tmp")
    try:
        os.chmod(base, 0o755)
        storage, protected = os.path.join(base, "bundles"), os.path.join(base, "root-owned")
        os.makedirs(os.path.join(storage, "platform", "tracking_repo"))
        os.makedirs(os.path.join(protected, "tracking_repo"))
        os.symlink(protected, os.path.join(storage, "team"))  # planted: team/tracking_repo is root's
        for top, _dirs, _files in os.walk(storage):
            os.lchown(top, 65534, 65534)
        os.lchown(os.path.join(storage, "team"), 65534, 65534)
        cfg = (confdir / "airflow.cfg").read_text().replace(str(confdir / "bundles"), storage)
        (confdir / "airflow.cfg").write_text(cfg)
        registry = {"platform": repo("a" * 40), "team": repo("a" * 40, url="https://git.example.com/t.git")}
        dr.apply_to_host(Runner(), registry, str(confdir), owner, False)
        # Another branch: the tracking checkout of the old one is stale.
        registry = {"platform": repo("b" * 40, ref="release"),
                    "team": repo("b" * 40, ref="release", url="https://git.example.com/t.git")}
        os.makedirs(os.path.join(storage, "platform", "tracking_repo"), exist_ok=True)
        os.lchown(os.path.join(storage, "platform", "tracking_repo"), 65534, 65534)
        dr.apply_to_host(Runner(), registry, str(confdir), owner, False)
        assert not os.path.exists(os.path.join(storage, "platform", "tracking_repo"))
        assert os.path.isdir(os.path.join(protected, "tracking_repo")), "root's directory was removed through a link"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_failed_restart_is_reported_with_where_to_look(confdir):
    Runner.fail = "start"
    with pytest.raises(dr.RepoError, match=r"restarting .*airflow-scheduler.*journalctl -u qubinode-airflow-restart-"):
        dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    assert [c[0] for c in Runner.systemctl] == ["stop", "start"]


def test_a_new_or_moved_repository_drops_all_its_old_clones(confdir):
    leftovers = [confdir / "bundles" / "platform" / d for d in ("tracking_repo", "bare", "versions")]
    for d in leftovers:
        d.mkdir(parents=True)
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    assert [d.exists() for d in leftovers] == [False, False, True]
    for d in leftovers[:2]:
        d.mkdir()
    moved = repo("a" * 40, url="https://elsewhere.example.com/r.git")
    assert set(dr.apply_to_host(Runner(), {"platform": moved}, str(confdir), USER, False)[1]) == CORE_UNITS
    assert [d.exists() for d in leftovers] == [False, False, True]


def test_check_mode_reports_and_writes_nothing(confdir):
    changed, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, True)
    assert changed and restarted
    assert not (confdir / "bundles.env").exists() and not (confdir / "bundle-pins").exists()
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    assert dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(confdir), USER, True)[0] is True
    assert (confdir / "bundle-pins" / "platform").read_text() == "a" * 40 + "\n"


def test_removing_the_last_repository_removes_the_file(confdir):
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    changed, restarted, bundles = dr.apply_to_host(Runner(), {}, str(confdir), USER, False)
    assert changed and set(restarted) == CORE_UNITS and bundles == BASE
    assert not (confdir / "bundles.env").exists() and os.listdir(confdir / "bundle-pins") == []
    assert dr.apply_to_host(Runner(), {}, str(confdir), USER, False)[0] is False


def test_unpinned_repository_tracks_its_ref(confdir):
    _c, _r, bundles = dr.apply_to_host(Runner(), {"p": repo("a" * 40, pin=False, git_conn_id="qubinode_git_p")},
                                       str(confdir), USER, False)
    assert bundles[1]["kwargs"]["tracking_ref"] == "main"
    assert bundles[1]["kwargs"]["git_conn_id"] == "qubinode_git_p"


def test_a_worker_host_restarts_its_worker_for_a_new_repository_only(confdir):
    units = confdir / "units"
    for unit in units.iterdir():
        unit.unlink()
    (units / "airflow-temporal-worker.service").write_text("")
    changed, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(confdir), USER, False)
    assert changed and restarted == ["airflow-temporal-worker"]
    assert Runner.systemctl == [["stop", "airflow-temporal-worker"], ["start", "airflow-temporal-worker"]]
    # A new pin matters to dag-processors only; task attempts get their commit in the workload.
    changed, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(confdir), USER, False)
    assert changed and restarted == []


# -- the podman runtime ------------------------------------------------------------------------------

@pytest.fixture
def podman_confdir(confdir, tmp_path, monkeypatch):
    """A core host whose Airflow runs as containers: no units, runtime.json as the airflow role writes it, and a
    container engine whose containers carry the grace periods the podman role labels them with."""
    for unit in os.listdir(host.UNIT_DIR):
        os.remove(os.path.join(host.UNIT_DIR, unit))
    engine = tmp_path / "engine"
    engine.mkdir()
    # Answers `podman container inspect NAMES...` as podman does: a JSON list of the containers it has, an error on
    # stderr (and 125) for the others. Besides the stack's containers it has two whose labels are hostile.
    labels = {"airflow-scheduler": "300", "airflow-api-server": "60", "airflow-dag-processor": "60",
              "airflow-triggerer": "60", "airflow-temporal-worker": "60",
              "qa-newline": "1\nairflow-scheduler 1", "qa-shell": "5; rm -rf /", "qa-plain": None}
    (engine / "podman").write_text(
        "#!%s\nimport json, sys\nLABELS = %r\nLABEL = %r\n"
        "if sys.argv[1:3] != ['container', 'inspect']:\n    sys.exit(2)\n"
        "known = [n for n in sys.argv[3:] if n in LABELS]\n"
        "print(json.dumps([{'Name': n, 'Config': {'Labels': {LABEL: LABELS[n]} if LABELS[n] else None}} for n in known]))\n"
        "for n in sys.argv[3:]:\n    if n not in LABELS:\n        sys.stderr.write('Error: no such container %%s\\n' %% n)\n"
        "sys.exit(125 if len(known) < len(sys.argv[3:]) else 0)\n" % (sys.executable, labels, host.STOP_TIMEOUT_LABEL))
    (engine / "podman").chmod(0o755)
    monkeypatch.setenv("PATH", "%s%s%s" % (engine, os.pathsep, os.environ["PATH"]))
    (confdir / "runtime.json").write_text(json.dumps(dict(
        runtime="podman", image="localhost/qubinode-airflow:3.3.2-0123456789ab", user="998:998",
        volumes=["/etc/airflow:/etc/airflow:ro", "/var/lib/airflow:/var/lib/airflow"],
        containers=sorted(CORE_UNITS))))
    return confdir


def test_a_containerised_host_restarts_its_containers(podman_confdir):
    """Each container stops within the grace period on its label: podman's default (10 s) would kill the
    scheduler's running tasks."""
    changed, restarted, _b = dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(podman_confdir), USER, False)
    assert changed and set(restarted) == CORE_UNITS
    assert Runner.systemctl == []
    assert [c[0] for c in Runner.podman] == ["stop", "stop", "start"]
    assert Runner.podman[0][:3] == ["stop", "--time", "60"] and set(Runner.podman[0][3:]) == CORE_UNITS - {"airflow-scheduler"}
    assert Runner.podman[1] == ["stop", "--time", "300", "airflow-scheduler"]
    assert set(Runner.podman[2][1:]) == CORE_UNITS


def test_a_container_without_a_grace_period_label_stops_as_podman_decides(podman_confdir):
    """A container the engine does not know (or one without the label) gets no --time: its stop says why."""
    assert host.manager_commands(Runner(), "stop", ["qa-gone", "qa-plain", "airflow-scheduler"], str(podman_confdir)) == [
        ["podman", "stop", "qa-gone", "qa-plain"], ["podman", "stop", "--time", "300", "airflow-scheduler"]]
    assert host.manager_commands(Runner(), "start", ["qa-gone"], str(podman_confdir)) == [["podman", "start", "qa-gone"]]


def test_a_hostile_grace_period_label_is_not_used(podman_confdir):
    """A label is any text. One with a newline and another container's name must not give that container its time
    (the scheduler would be killed after 1 s), and one with shell syntax must not reach the restart script: both
    are ignored, and those containers stop as podman decides."""
    units = ["airflow-scheduler", "qa-newline", "qa-shell"]
    assert host.manager_commands(Runner(), "restart", units, str(podman_confdir)) == [
        ["podman", "restart", "--time", "300", "airflow-scheduler"], ["podman", "restart", "qa-newline", "qa-shell"]]


def test_a_new_pin_restarts_no_container(podman_confdir):
    dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(podman_confdir), USER, False)
    Runner.podman.clear()
    api = ParseApi()
    assert dr.apply_to_host(Runner(), {"platform": repo("b" * 40)}, str(podman_confdir), USER, False, api=api)[1] == []
    assert Runner.podman == [] and api.calls[-1] == ("PUT", "parseDagFile/tok-2", None)


def test_a_failed_container_restart_is_reported(podman_confdir):
    Runner.fail = "start"
    with pytest.raises(dr.RepoError, match=r"restarting .*journalctl -u qubinode-airflow-restart-"):
        dr.apply_to_host(Runner(), {"platform": repo("a" * 40)}, str(podman_confdir), USER, False)


def test_airflow_python_runs_in_the_image_with_the_services_mounts(podman_confdir):
    argv, env = host.airflow_python("/opt/qubinode-airflow/venv", "airflow", str(podman_confdir),
                                    dict(AIRFLOW_HOME="/var/lib/airflow"), mounts=["/tmp/stage"])
    assert argv[:3] == ["podman", "run", "--rm"] and env == {}
    assert argv[argv.index("--user") + 1] == "998:998"
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert volumes == ["/etc/passwd:/etc/passwd:ro", "/etc/group:/etc/group:ro", "/etc/airflow:/etc/airflow:ro",
                       "/var/lib/airflow:/var/lib/airflow", "/tmp/stage:/tmp/stage"]
    assert "AIRFLOW_HOME=/var/lib/airflow" in argv
    assert argv[-3:] == ["--entrypoint", "python", "localhost/qubinode-airflow:3.3.2-0123456789ab"]


def test_airflow_python_natively_is_the_virtualenv_as_the_airflow_user(confdir, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    argv, env = host.airflow_python("/opt/v", "airflow", str(confdir), dict(A="1"))
    assert argv == ["runuser", "-u", "airflow", "--", "/opt/v/bin/python"] and env == dict(A="1")


@pytest.mark.parametrize("content", [None, "not json", "[]", "{}"])
def test_without_a_readable_runtime_description_the_host_is_native(tmp_path, content):
    if content is not None:
        (tmp_path / "runtime.json").write_text(content)
    assert host.read_runtime(str(tmp_path)) == dict(runtime="native")
    assert host.service_manager(str(tmp_path)) == "systemctl"


# -- the registry under concurrent registrations -------------------------------------------------------

def test_two_registrations_at_once_keep_both(tmp_path):
    """Each registration reads, merges and writes the registry under the work directory's lock; the
    fake API answers a read slowly, as a busy api-server would, which made one of them lose its entry."""
    import threading

    from fake_airflow import FakeAirflow

    from ansible_collections.qubinode.airflow.plugins.module_utils._api import AirflowAPI
    from ansible_collections.qubinode.airflow.plugins.modules import airflow_dag_repo as module

    work = tmp_path / "work"
    dr.ensure_root_dir(str(work))
    with FakeAirflow() as fake:
        def register(name):
            class Module:
                check_mode = False
                _diff = False
                params = dict(api_url=fake.url, api_username="admin", api_password="admin-pass", api_token=None,
                              validate_certs=True, ca_path=None, api_timeout=5.0, api_retries=2, name=name,
                              work_dir=str(work))
            repo = module.DagRepo(Module())
            slow = repo.api.get_or_none

            def get_or_none(path):
                value = slow(path)
                time.sleep(0.3)
                return value
            repo.api.get_or_none = get_or_none
            repo.merge(dict(url="https://git.example.com/%s.git" % name, ref="main", commit="c" * 40, pin=True))

        threads = [threading.Thread(target=register, args=(n,)) for n in ("team_a", "team_b", "team_c")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        registry = dr.read_registry(AirflowAPI(dict(api_url=fake.url, api_username="admin", api_password="admin-pass",
                                                    api_token=None, validate_certs=True, ca_path=None,
                                                    api_timeout=5.0, api_retries=2)))
    assert sorted(registry) == ["team_a", "team_b", "team_c"]


def test_a_requirements_file_is_read_only_as_a_regular_file_of_the_commit(tmp_path):
    bare, work = tmp_path / "bare.git", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    git("config", "user.email", "qa@example.com", cwd=work)
    git("config", "user.name", "qa", cwd=work)
    (work / "requirements.txt").write_text("apache-airflow-providers-ssh>=4\n")
    (work / "deps").mkdir()
    (work / "deps" / "big.txt").write_text("x" * 70000)
    os.symlink("/etc/shadow", work / "link.txt")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "reqs", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work)
    g = dr.Git("git://127.0.0.1/bare.git", workdir=str(tmp_path))
    assert g.read_file(str(bare), commit, "requirements.txt", 65536) == "apache-airflow-providers-ssh>=4\n"
    # A link (never followed), a directory, a path the commit lacks: no file.
    for path in ("link.txt", "deps", "missing.txt", "deps/missing.txt"):
        assert g.read_file(str(bare), commit, path, 65536) is None, path
    with pytest.raises(dr.RepoError, match="deps/big.txt of .* is larger than 65536 bytes"):
        g.read_file(str(bare), commit, "deps/big.txt", 65536)
    g.close()


def test_unmet_requirements_are_returned_and_named_in_a_warning(upstream, tmp_path):
    repo, g = push_repo(upstream, tmp_path, None, requirements_file="requirements.txt")
    g.close()
    repo.requirements_file = "requirements.txt"
    repo.unmet_requirements([[2, "apache-airflow-providers-ssh>=4", None, ""], [3, "pendulum<1", "3.1.0", ""],
                             [4, "-r x.txt", None, "not read: only package requirements are (no option, file or URL)"]],
                            "ab" * 20)
    assert [e["message"] for e in repo.result["unmet_requirements"]] == [
        "apache-airflow-providers-ssh>=4: not installed", "pendulum<1: installed at 3.1.0",
        "not read: only package requirements are (no option, file or URL)"]
    assert repo.result["unmet_requirements"][1] == dict(file="requirements.txt", line=3, requirement="pendulum<1",
                                                        installed="3.1.0", message="pendulum<1: installed at 3.1.0")
    assert repo.module.warnings == [
        "team_a at abababababab: its requirements.txt asks for apache-airflow-providers-ssh>=4, pendulum<1, which the "
        "stack's Airflow does not have; the playbook qubinode.airflow.dag_repos installs them on every host before the "
        "commit goes live (with the podman runtime, add them to the airflow role's airflow_extra_pip_packages; see "
        "unmet_requirements)",
        "team_a at abababababab: 1 line(s) of its requirements.txt are not package requirements and were not read (see "
        "unmet_requirements)"]


def requirements_repo(upstream, tmp_path, text, wheels_dir):
    """The upstream with `text` as its requirements file at the head, and a host whose runtime.json allows
    qa-tool besides the constraints (qa-base==1.0), with a local wheel directory as its index."""
    work = upstream["work"]
    (work / "requirements.txt").write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "requirements", cwd=work)
    git("push", "-q", str(upstream["bare"]), "main", cwd=work)
    for name, version, requires in (("qa-base", "1.0", ()), ("qa-base", "2.0", ()), ("qa-tool", "1.0", ["qa-base"])):
        make_wheel(wheels_dir, name, version, requires)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "constraints.txt").write_text("qa-base==1.0\n")
    (conf / "runtime.json").write_text(json.dumps(dict(
        runtime="native", constraints=str(conf / "constraints.txt"), dag_repo_packages=["qa-tool"],
        pip_extra_args="--no-index --find-links %s" % wheels_dir)))
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    os.symlink(sys.executable, venv / "python")
    (tmp_path / "repos" / "team_a").mkdir(parents=True)
    repo, g = push_repo(upstream, tmp_path, None, forward_only=False, requirements_only=True,
                        requirements_file="requirements.txt", airflow_config_dir=str(conf),
                        airflow_venv=str(tmp_path / "venv"))
    g.close()
    repo.requirements_file = "requirements.txt"
    return repo


def test_requirements_only_resolves_the_commits_requirements_and_changes_nothing(upstream, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    repo = requirements_repo(upstream, tmp_path, "qa-tool  # what the DAGs import\n-r more.txt\n", wheels)
    repo.resolve_requirements({"team_b": dict(requirements=["qa-base"], packages=["qa-base==1.0"])})
    assert repo.result["commit"] == git("rev-parse", "HEAD", cwd=upstream["work"])
    assert repo.result["requirements"] == ["qa-tool"]
    assert repo.result["packages"] == ["qa-base==1.0", "qa-tool==1.0"]
    assert repo.result["changed"] is False
    assert repo.module.warnings == ["team_a at %s: line(s) 2 of its requirements.txt are not package requirements and "
                                    "were not read (no option, file or URL)" % repo.result["commit"][:12]]


@pytest.mark.parametrize("text, registry, expect", [
    ("qa-tool\nqa-evil==1\n", {}, "qa-evil==1: qa-evil is neither pinned by the stack's constraints nor listed"),
    ("qa-tool\nqa-base>=2\n", {}, r"The user requested \(constraint\) qa-base==1.0"),
    # Another registered repository's requirement conflicts: this commit is refused, the other keeps its package.
    ("qa-tool\n", {"team_b": dict(requirements=["qa-base<1"], packages=[])}, "qa-base<1"),
])
def test_requirements_only_refuses_what_cannot_be_installed(upstream, tmp_path, text, registry, expect):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    repo = requirements_repo(upstream, tmp_path, text, wheels)
    with pytest.raises(dr.RepoError) as e:
        repo.resolve_requirements(dict(registry, team_a=dict(commit=upstream["head"])))
    assert e.value.msg.startswith("team_a at %s refused: 1 finding(s); still serving %s"
                                  % (git("rev-parse", "HEAD", cwd=upstream["work"])[:12], upstream["head"][:12]))
    assert re.search(expect, e.value.report[0]["message"]), e.value.report
    assert e.value.report[0]["file"] == "requirements.txt"


def test_a_review_installs_what_its_requirements_add_into_the_stage_alone(upstream, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    repo = requirements_repo(upstream, tmp_path, "qa-tool\n", wheels)
    head = git("rev-parse", "HEAD", cwd=upstream["work"])
    stage = tmp_path / "stage"
    stage.mkdir()
    site = repo.review_packages("qa-tool\n", head, {}, str(stage))
    assert site == str(stage / "site-packages")
    assert repo.result["requirements"] == ["qa-tool"]
    assert repo.result["packages"] == ["qa-base==1.0", "qa-tool==1.0"]
    assert sorted(p.name for p in (stage / "site-packages").iterdir() if not p.name.endswith(".dist-info")) == [
        "qa_base", "qa_tool"]
    assert not (tmp_path / "venv" / "lib").exists()
    # A package nobody allowed refuses the head, naming it; nothing is fetched.
    with pytest.raises(dr.RepoError) as e:
        repo.review_packages("qa-tool\nqa-evil\n", head, {"team_a": dict(commit=upstream["head"])},
                             str(tmp_path / "repos"))
    assert "qa-evil is neither pinned by the stack's constraints" in e.value.report[0]["message"]
    assert not (tmp_path / "repos" / "site-packages").exists()


def test_a_host_reads_its_constraints_only_for_requirements_and_names_a_missing_file(confdir):
    # No entry with requirements: the constraints are not read (this host has none) and no file is written.
    assert dr.host_requirements({"a": repo("a" * 40)}, str(confdir)) == ([], [], [])
    assert dr.write_requirements(str(confdir), {"a": repo("a" * 40)}, False) is False
    (confdir / "runtime.json").write_text(json.dumps(dict(runtime="native", constraints=str(confdir / "missing.txt"))))
    with pytest.raises(dr.RepoError, match="cannot read the stack's constraints .*missing.txt.*converge the airflow role"):
        dr.host_requirements({"a": dict(repo("a" * 40), requirements=["qa-tool"])}, str(confdir))
