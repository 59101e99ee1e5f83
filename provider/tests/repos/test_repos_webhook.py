"""The DAG repository webhook, status API and page, on a real Airflow api-server and dag-processor
(loopback, SQLite), with a real git repository served as a GitDagBundle."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import HOME

import qubinode_airflow

SECRET = "webhook-secret-7f3a"
PROMOTE = "qubinode_dag_repo_promote"
REVIEW = "qubinode_dag_repo_review"
REMOVE = "qubinode_dag_repo_remove"
EXAMPLES = pathlib.Path(qubinode_airflow.__file__).resolve().parent / "example_dags"
PASSWORDS = {"admin": "admin-pass-1", "viewer": "viewer-pass-1"}


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")).stdout.strip()


def dag_file(dag_id):
    return ("import pendulum\nfrom airflow.sdk import DAG\nfrom airflow.providers.standard.operators.empty import "
            "EmptyOperator\nwith DAG(%r, schedule=None, start_date=pendulum.datetime(2026, 1, 1)):\n"
            "    EmptyOperator(task_id='t')\n" % dag_id)


class Repo:
    def __init__(self, root: pathlib.Path, name: str):
        self.origin = root / ("%s.git" % name)
        self.work = root / ("%s-work" % name)
        git("init", "--bare", "-q", "-b", "main", str(self.origin))
        git("clone", "-q", str(self.origin), str(self.work))
        git("checkout", "-q", "-b", "main", cwd=self.work)

    def commit(self, files: dict[str, str], branch="main") -> str:
        if branch != "main":
            git("checkout", "-q", "-B", branch, cwd=self.work)
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", "change", cwd=self.work)
        git("push", "-q", "origin", "HEAD:%s" % branch, cwd=self.work)
        sha = git("rev-parse", "HEAD", cwd=self.work)
        if branch != "main":
            git("checkout", "-q", "main", cwd=self.work)
        return sha


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, base: str):
        self.base = base

    def call(self, method, path, body=None, headers=None, token=None):
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=dict(headers or {}))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data is not None and "Content-Type" not in req.headers:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError) as e:
            return 0, str(e)

    def token(self, user):
        status, body = self.call("POST", "/auth/token", {"username": user, "password": PASSWORDS[user]})
        assert status == 201, body
        return json.loads(body)["access_token"]

    def github_push(self, payload, secret=SECRET, event="push", signature=None):
        body = json.dumps(payload).encode()
        sig = signature or "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return self.call("POST", "/qubinode/webhook", body, {"X-GitHub-Event": event, "X-Hub-Signature-256": sig})


def set_registry(entries):
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        Variable.set("qubinode_dag_repos", json.dumps(entries), session=session)


def queued_requests():
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(DagPriorityParsingRequest))


def dag_ids(bundle):
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(session.scalars(select(DagModel.dag_id).where(DagModel.bundle_name == bundle,
                                                                 DagModel.is_stale.is_(False))))


def wait_for(check, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out waiting for %s" % what)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    tracked = Repo(root, "tracked")
    first = tracked.commit({"a.py": dag_file("hook_a")})
    pinned = Repo(root, "pinned")
    # An earlier validated commit (no DAG of its own), which a rollback may pin again.
    pinned_older = pinned.commit({"README.md": "DAGs\n"})
    pinned_commit = pinned.commit({"p.py": dag_file("hook_p")})
    # A repository whose DAG imports from plugins/ beside dags/ (airflow_dag_repo's import_paths).
    pathed = Repo(root, "pathed")
    pathed_commit = pathed.commit({"dags/i.py": dag_file("hook_i").replace("task_id='t'", "task_id=TASK_ID").replace(
        "import pendulum\n", "import pendulum\nfrom qa_hook_shared import TASK_ID\n"),
        "plugins/qa_hook_shared.py": "TASK_ID = 'from_plugins'\n"})
    bundles = [
        {"name": "tracked", "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
         "kwargs": {"repo_url": str(tracked.origin), "tracking_ref": "main", "refresh_interval": 3600}},
        {"name": "pinned", "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
         "kwargs": {"repo_url": str(pinned.origin), "tracking_ref": pinned_commit, "refresh_interval": 3600}},
        {"name": "pathed", "classpath": "qubinode_airflow.repos.bundle.GitDagBundleWithImportPaths",
         "kwargs": {"repo_url": str(pathed.origin), "tracking_ref": pathed_commit, "subdir": "dags",
                    "import_paths": ["plugins"], "refresh_interval": 3600}},
        # The example DAGs, the promote DAG among them, as the airflow role serves them.
        {"name": "qubinode-examples", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(EXAMPLES), "refresh_interval": 3600}},
    ]
    set_registry({
        "tracked": {"url": str(tracked.origin), "ref": "main", "pin": False, "commit": first},
        "pinned": {"url": str(pinned.origin), "ref": "main", "pin": True, "commit": pinned_commit,
                   "history": [pinned_commit, pinned_older], "requirements": ["qa-needed-lib>=1", "<b>qa-bold</b>"],
                   "packages": ["qa-needed-lib==1.2.0"]},
        "pathed": {"url": str(pathed.origin), "ref": "main", "pin": True, "commit": pathed_commit, "subdir": "dags",
                   "import_paths": ["plugins"]},
    })
    (HOME / "passwords.json").write_text(json.dumps(PASSWORDS))
    port = free_port()
    env = dict(os.environ,
               AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(bundles),
               AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH=str(root / "bundles"),
               AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="3600",
               AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin,viewer:viewer",
               AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(HOME / "passwords.json"),
               AIRFLOW__API_AUTH__JWT_SECRET="test-jwt-secret-for-the-webhook-tests",
               AIRFLOW__API__BASE_URL="http://127.0.0.1:%d" % port,
               AIRFLOW_CONN_QUBINODE_WEBHOOK=json.dumps({"conn_type": "generic", "password": SECRET}))
    logs = root / "logs"
    logs.mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "airflow", *cmd], env=env, cwd=str(HOME),
                              stdout=open(logs / ("%s.log" % cmd[0]), "w"), stderr=subprocess.STDOUT)
             for cmd in (["api-server", "--host", "127.0.0.1", "--port", str(port)], ["dag-processor"])]
    st = Stack("http://127.0.0.1:%d" % port)
    st.tracked, st.pinned, st.pinned_commit, st.logs = tracked, pinned, pinned_commit, logs
    st.pinned_older = pinned_older
    st.api_pid = procs[0].pid
    try:
        wait_for(lambda: st.call("GET", "/api/v2/monitor/health")[0] == 200, 120, "the api-server")
        # The dag-processor's parsing processes import plugins/ of the "pathed" repository.
        wait_for(lambda: "hook_a" in dag_ids("tracked") and "hook_p" in dag_ids("pinned")
                 and "hook_i" in dag_ids("pathed") and {PROMOTE, REVIEW, REMOVE} <= dag_ids("qubinode-examples"), 120,
                 "the first parse of the four bundles")
        yield st
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def push_event(repo: Repo, commit: str, ref="refs/heads/main"):
    return {"ref": ref, "after": commit, "repository": {"clone_url": str(repo.origin), "full_name": "local/x"}}


def test_unsigned_and_badly_signed_pushes_are_refused(stack):
    commit = stack.tracked.commit({"refused.py": dag_file("hook_refused")})
    before = queued_requests()
    event = push_event(stack.tracked, commit)
    status = stack.call("POST", "/qubinode/webhook", event, {"X-GitHub-Event": "push"})[0]
    assert status == 401
    assert stack.github_push(event, secret="not-the-secret")[0] == 401
    assert stack.github_push(event, signature="sha256=" + "0" * 64)[0] == 401
    status = stack.call("POST", "/qubinode/webhook", event, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})[0]
    assert status == 401
    assert queued_requests() <= before  # nothing queued (the dag-processor may take earlier requests meanwhile)
    time.sleep(3)
    assert "hook_refused" not in dag_ids("tracked"), "a refused push refreshed the bundle"


def test_unknown_repository_is_404(stack):
    status, body = stack.github_push({"ref": "refs/heads/main", "after": "0" * 40,
                                      "repository": {"clone_url": "https://git.example.com/other/dags.git"}})
    assert status == 404 and "other/dags" in body


def test_ping(stack):
    status, body = stack.github_push({"zen": "hi", "hook_id": 1}, event="ping")
    assert status == 200 and json.loads(body)["status"] == "pong"


def test_github_push_refreshes_the_tracking_bundle(stack):
    commit = stack.tracked.commit({"b.py": dag_file("hook_b")})
    status, body = stack.github_push(push_event(stack.tracked, commit))
    assert status == 202, body
    assert json.loads(body)["bundles"] == [{"bundle": "tracked", "action": "refresh", "file": "a.py"}]
    wait_for(lambda: "hook_b" in dag_ids("tracked"), 60, "hook_b to be parsed after the push")


def test_gitlab_push_with_token_and_another_url_spelling(stack):
    commit = stack.tracked.commit({"c.py": dag_file("hook_c")})
    event = {"object_kind": "push", "ref": "refs/heads/main", "after": commit,
             "project": {"git_http_url": "file://%s/" % stack.tracked.origin}}
    status, body = stack.call("POST", "/qubinode/webhook", event,
                              {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET})
    assert status == 202, body
    wait_for(lambda: "hook_c" in dag_ids("tracked"), 60, "hook_c to be parsed after the GitLab push")


def test_push_to_another_branch_and_to_a_pinned_repo_change_nothing(stack):
    stack.tracked.commit({"d.py": dag_file("hook_d")}, branch="feature")
    status, body = stack.github_push(push_event(stack.tracked, "f" * 40, ref="refs/heads/feature"))
    assert status == 202
    assert json.loads(body)["bundles"][0]["action"] == "none"
    commit = stack.pinned.commit({"q.py": dag_file("hook_q")})
    status, body = stack.github_push(push_event(stack.pinned, commit))
    (result,) = json.loads(body)["bundles"]
    assert status == 202 and result["action"] == "none" and result["pinned_commit"] == stack.pinned_commit
    time.sleep(3)
    assert "hook_d" not in dag_ids("tracked") and "hook_q" not in dag_ids("pinned")


def set_paused(dag_id, paused):
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.get(DagModel, dag_id).is_paused = paused


def promote_runs(dag_id=PROMOTE):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [dict(run_id=r.run_id, conf=r.conf, state=str(r.state), user=r.triggering_user_name,
                     run_type=str(r.run_type))
                for r in session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id))]


def test_a_push_to_a_pinned_repo_asks_the_promote_dag_only_while_it_is_unpaused(stack):
    commit = stack.pinned.commit({"r.py": dag_file("hook_r")})
    event = dict(push_event(stack.pinned, commit), delivery=1)
    # Paused, as Airflow creates it: nothing runs, and the answer says how to turn pushes on.
    set_paused(PROMOTE, True)
    status, body = stack.github_push(event)
    (result,) = json.loads(body)["bundles"]
    assert status == 202 and result["action"] == "none" and "unpause the DAG %s" % PROMOTE in result["detail"]
    assert promote_runs() == []
    set_paused(PROMOTE, False)
    try:
        status, body = stack.github_push(dict(event, delivery=2))
        (result,) = json.loads(body)["bundles"]
        assert status == 202 and result["action"] == "validate" and result["commit"] == commit, body
        (run,) = promote_runs()
        assert run["run_id"] == result["dag_run_id"] and run["conf"] == {"name": "pinned", "commit": commit}
        assert run["user"] == "webhook" and run["state"] == "queued"
        # The pinned commit itself asks for nothing; "sync" by a user asks for the head of the branch.
        status, body = stack.github_push(dict(push_event(stack.pinned, stack.pinned_commit), delivery=3))
        assert json.loads(body)["bundles"][0]["detail"] == "pinned at this commit already"
        status, body = stack.call("POST", "/qubinode/repos/pinned/sync", {}, token=stack.token("admin"))
        assert status == 202 and json.loads(body)["action"] == "validate", body
        runs = promote_runs()
        assert len(runs) == 2 and runs[1]["conf"] == {"name": "pinned", "commit": None} and runs[1]["user"] == "admin"
    finally:
        set_paused(PROMOTE, True)
    # Nothing was pinned by the api-server: the registry and the served bundle are as they were.
    status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
    pinned = {r["name"]: r for r in json.loads(body)["repositories"]}["pinned"]
    assert pinned["pinned_commit"] == stack.pinned_commit and "hook_r" not in dag_ids("pinned")


def pull_request(repo, head, action="opened", number=3, base="main", **extra):
    return dict({"action": action, "number": number, "repository": {"clone_url": str(repo.origin), "full_name": "org/dags"},
                 "pull_request": {"number": number, "head": {"sha": head}, "base": {"ref": base}}}, **extra)


def merge_request(repo, head, action="update", iid=4, base="main"):
    return {"object_kind": "merge_request", "project": {"id": 99, "git_http_url": "file://%s" % repo.origin},
            "object_attributes": {"action": action, "iid": iid, "target_branch": base, "last_commit": {"id": head}}}


def test_a_merge_request_asks_the_review_dag_and_deploys_nothing(stack):
    head = stack.pinned.commit({"pr.py": dag_file("hook_pr")}, branch="feature-pr")
    set_paused(REVIEW, True)
    status, body = stack.github_push(pull_request(stack.pinned, head), event="pull_request")
    assert status == 202 and "unpause the DAG %s" % REVIEW in json.loads(body)["bundles"][0]["detail"], body
    set_paused(REVIEW, False)
    try:
        status, body = stack.github_push(pull_request(stack.pinned, head, delivery=2), event="pull_request")
        (result,) = json.loads(body)["bundles"]
        assert status == 202 and result["action"] == "review" and result["commit"] == head, body
        (run,) = promote_runs(REVIEW)
        assert run["conf"] == {"name": "pinned", "commit": head, "review_ref": "refs/pull/3/head",
                               "status": {"kind": "github", "repository": "org/dags"}}
        assert run["user"] == "webhook" and run["run_id"] == result["dag_run_id"]
        # GitLab, for a repository that follows its branch: reviewed all the same.
        status, body = stack.call("POST", "/qubinode/webhook", merge_request(stack.tracked, head),
                                  {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": SECRET})
        assert status == 202 and json.loads(body)["bundles"][0]["action"] == "review", body
        assert promote_runs(REVIEW)[-1]["conf"] == {
            "name": "tracked", "commit": head, "review_ref": "refs/merge-requests/4/head",
            "status": {"kind": "gitlab", "repository": "99"}}
        # Another target branch, a closed one, a malformed one: no run.
        status, body = stack.github_push(pull_request(stack.pinned, head, base="release"), event="pull_request")
        assert "merge request into release; the bundle serves main" in json.loads(body)["bundles"][0]["detail"]
        status, body = stack.github_push(pull_request(stack.pinned, head, action="closed"), event="pull_request")
        assert status == 202 and json.loads(body)["status"] == "ignored"
        for bad in (pull_request(stack.pinned, "main", delivery=5), pull_request(stack.pinned, head, number=True),
                    dict(pull_request(stack.pinned, head), repository={"clone_url": str(stack.pinned.origin),
                                                                       "full_name": "../../x"})):
            assert stack.github_push(bad, event="pull_request")[0] == 400
        assert stack.github_push(pull_request(stack.pinned, head, delivery=2), event="pull_request")[0] == 409
        assert len(promote_runs(REVIEW)) == 2
    finally:
        set_paused(REVIEW, True)
    status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
    pinned = {r["name"]: r for r in json.loads(body)["repositories"]}["pinned"]
    assert pinned["pinned_commit"] == stack.pinned_commit and "hook_pr" not in dag_ids("pinned")


def tree_peak_rss_kib(pid):
    """Sum of the peak resident sizes (VmHWM) of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open("/proc/%d/status" % current) as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
            for task in os.listdir("/proc/%d/task" % current):
                with open("/proc/%d/task/%s/children" % (current, task)) as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total


def test_a_huge_unsigned_body_is_refused_as_it_streams_in(stack):
    """50 MiB without a signature, sent in chunks with no length announced: 413 once 5 MiB are in, and the
    api-server never holds the body (its peak memory grows by far less than the body)."""
    import http.client

    before = tree_peak_rss_kib(stack.api_pid)
    host, port = stack.base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.putrequest("POST", "/qubinode/webhook")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("X-GitHub-Event", "push")
    conn.endheaders()
    chunk = b"x" * (1024 * 1024)
    try:
        for _chunk in range(50):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading (broken pipe, reset or a full buffer): what is wanted
    status = conn.getresponse().status
    conn.close()
    grown_mib = (tree_peak_rss_kib(stack.api_pid) - before) / 1024
    assert status == 413
    assert grown_mib < 25, "the api-server's peak memory grew by %.0f MiB for a refused body" % grown_mib
    # A declared length over the limit is refused before the body is read.
    headers = {"X-GitHub-Event": "push", "Content-Length": str(50 * 1024 * 1024)}
    status, _body = stack.call("POST", "/qubinode/webhook", b"{}", headers)
    assert status in (0, 413)


@pytest.mark.parametrize("body", [b"[]", b"not json", b'"text"', b'{"ref": "refs/heads/main", "after": null}',
                                  b'{"ref": 5, "after": "%s"}' % (b"a" * 40),
                                  b'{"ref": "refs/heads/main", "after": "HEAD", "repository": {}}',
                                  b'{"ref": "refs/heads/main", "after": "%s", "repository": []}' % (b"a" * 40)])
def test_a_malformed_signed_body_is_400_and_changes_nothing(stack, body):
    before = queued_requests()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, text = stack.call("POST", "/qubinode/webhook", body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sig})
    assert status == 400, text
    assert queued_requests() <= before  # nothing queued (the dag-processor may take earlier requests meanwhile)


def test_a_replayed_delivery_is_refused(stack):
    commit = stack.tracked.commit({"replay.py": dag_file("hook_replay")})
    event = push_event(stack.tracked, commit)
    status, body = stack.github_push(event)
    assert status == 202, body
    before = queued_requests()
    status, body = stack.github_push(event)
    assert status == 409 and "replay" in body
    # Nothing queued by the replay; the dag-processor may have taken the first delivery's request meanwhile.
    assert queued_requests() <= before


def test_a_repository_with_its_own_secret_takes_only_deliveries_signed_with_it(stack):
    admin = stack.token("admin")
    own = {"connection_id": "qubinode_webhook_pinned", "conn_type": "generic", "password": "pinned-own-7c1e"}
    status, body = stack.call("POST", "/api/v2/connections", own, token=admin)
    assert status == 201, body
    try:
        commit = stack.pinned.commit({"own.py": dag_file("hook_own")})
        event = push_event(stack.pinned, commit)
        assert stack.github_push(event)[0] == 401  # the stack's secret does not move this repository
        status, body = stack.github_push(event, secret="pinned-own-7c1e")
        assert status == 202, body
        assert json.loads(body)["bundles"][0]["bundle"] == "pinned"
    finally:
        assert stack.call("DELETE", "/api/v2/connections/qubinode_webhook_pinned", token=admin)[0] == 204


@pytest.mark.parametrize("field, value, says", [
    ("url", None, "entry 'tracked': field 'url' is missing"),
    ("url", "https://me:hunter2@git.example.com/x.git", "entry 'tracked': field 'url' holds credentials"),
    ("pin", "yes", "entry 'tracked': field 'pin' has the wrong type"),
])
def test_a_tampered_registry_is_a_clear_error(stack, field, value, says):
    from airflow.models.variable import Variable

    saved = json.loads(Variable.get("qubinode_dag_repos"))
    broken = json.loads(json.dumps(saved))
    if value is None:
        del broken["tracked"][field]
    else:
        broken["tracked"][field] = value
    set_registry(broken)
    try:
        status, body = stack.github_push(push_event(stack.tracked, "b" * 40))
        assert status == 500 and says in body and "hunter2" not in body
        status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
        assert status == 500 and says in body
    finally:
        set_registry(saved)


def test_status_needs_a_login_and_reports_each_repository(stack):
    assert stack.call("GET", "/qubinode/repos")[0] == 401
    assert stack.call("GET", "/qubinode/repos", token="not-a-jwt")[0] in (401, 403)
    head = stack.tracked.commit({"bad.py": "from airflow.sdk import DAG  # noqa\nimport not_a_module_anywhere\n"})
    stack.github_push(push_event(stack.tracked, head))

    def tracked_status():
        status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
        assert status == 200, body
        repos = {r["name"]: r for r in json.loads(body)["repositories"]}
        t = repos["tracked"]
        return repos if t["served_version"] == head and t["import_errors"] else None

    repos = wait_for(tracked_status, 60, "the status to show the broken push")
    t, p = repos["tracked"], repos["pinned"]
    assert t["pinned"] is False and t["pinned_commit"] is None and t["last_refresh"]
    assert {"hook_a", "hook_b", "hook_c"} <= set(t["dag_ids"]) and t["dag_count"] == len(t["dag_ids"])
    assert t["import_errors"][0]["file"] == "bad.py" and "not_a_module_anywhere" in t["import_errors"][0]["message"]
    assert p["pinned"] is True and p["pinned_commit"] == stack.pinned_commit == p["served_version"]
    assert p["dag_ids"] == ["hook_p"] and p["import_errors"] == []
    assert p["requirements"] == ["qa-needed-lib>=1", "<b>qa-bold</b>"] and p["packages"] == ["qa-needed-lib==1.2.0"]
    assert t["requirements"] == [] == t["packages"]


def test_sync_needs_edit_rights_and_a_same_origin_request(stack):
    assert stack.call("POST", "/qubinode/repos/tracked/sync", {}, token=stack.token("viewer"))[0] == 403
    admin = stack.token("admin")
    status, body = stack.call("POST", "/qubinode/repos/tracked/sync", {}, token=admin)
    assert status == 202 and json.loads(body)["action"] == "refresh"
    assert stack.call("POST", "/qubinode/repos/nope/sync", {}, token=admin)[0] == 404
    # The UI's session cookie alone is not enough: a cross-site form could send it.
    status = stack.call("POST", "/qubinode/repos/tracked/sync", {}, {"Cookie": "_token=" + admin})[0]
    assert status == 403
    headers = {"Cookie": "_token=" + admin, "X-Qubinode-Request": "1"}
    status = stack.call("POST", "/qubinode/repos/tracked/sync", {}, headers)[0]
    assert status == 202


def test_rollback_pins_again_a_validated_commit_only_through_the_promote_dag(stack):
    path = "/qubinode/repos/pinned/rollback"
    older = stack.pinned_older
    assert stack.call("POST", path, {"commit": older}, token=stack.token("viewer"))[0] == 403
    admin = stack.token("admin")
    # The UI's session cookie alone is not enough: a cross-site form could send it.
    assert stack.call("POST", path, {"commit": older}, {"Cookie": "_token=" + admin})[0] == 403
    # Paused, as Airflow creates it: no run, and the answer says how to turn it on.
    before = len(promote_runs())
    status, text = stack.call("POST", path, {"commit": older}, token=admin)
    assert status == 200 and "unpause the DAG %s" % PROMOTE in json.loads(text)["detail"], text
    assert len(promote_runs()) == before
    set_paused(PROMOTE, False)
    try:
        # Only one of the repository's last validated commits; the field is named.
        for body, says in (({"commit": "ef" * 20}, "commit: pinned cannot roll back to 'efef"),
                           ({"commit": older[:12]}, "give one of its last validated commits (%s)" % older[:12]),
                           ({}, "cannot roll back to None"), (b"not json", "cannot roll back to None")):
            status, text = stack.call("POST", path, body, token=admin)
            assert status == 400 and says in json.loads(text)["detail"], text
        status, text = stack.call("POST", "/qubinode/repos/tracked/rollback", {"commit": older}, token=admin)
        assert status == 400 and "tracked follows its ref main" in text
        assert stack.call("POST", "/qubinode/repos/nope/rollback", {"commit": older}, token=admin)[0] == 404
        status, text = stack.call("POST", path, {"commit": stack.pinned_commit}, token=admin)
        assert status == 200 and json.loads(text)["detail"] == "pinned at this commit already"
        assert len(promote_runs()) == before
        status, text = stack.call("POST", path, {"commit": older}, token=admin)
        assert status == 202 and json.loads(text)["action"] == "rollback", text
        run = promote_runs()[-1]
        assert run["conf"] == {"name": "pinned", "commit": older, "rollback": True} and run["user"] == "admin"
    finally:
        set_paused(PROMOTE, True)
    # The api-server only asked: the pin is the promote DAG's to change.
    status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
    pinned = {r["name"]: r for r in json.loads(body)["repositories"]}["pinned"]
    assert pinned["pinned_commit"] == stack.pinned_commit and pinned["history"] == [stack.pinned_commit, older]


REGISTER = "qubinode_dag_repo_register"


def git_connection(conn_id):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        return None if conn is None else (conn.conn_type, conn.login, conn.password)


def test_add_asks_the_register_dag_and_keeps_the_token_in_a_connection_only(stack):
    good = {"name": "added", "url": "https://git.example.com/team/dags.git", "ref": "main", "subdir": "dags",
            "pin": True, "token": "glpat-added-" + "9" * 16}
    assert stack.call("POST", "/qubinode/repos", good, token=stack.token("viewer"))[0] == 403
    admin = stack.token("admin")
    assert stack.call("POST", "/qubinode/repos", good, {"Cookie": "_token=" + admin})[0] == 403
    # Each field is checked before anything is written; the answer names it.
    for change, says in (({"url": "https://me:pw@git.example.com/x.git"}, "url: 'https://me:pw@"),
                         ({"url": "/etc/passwd"}, "url: '/etc/passwd' is not a remote git URL"),
                         ({"url": "--upload-pack=touch /tmp/x"}, "url: '--upload-pack"),
                         ({"name": "../x"}, "name: '../x' is not letters, digits"),
                         ({"ref": "-x"}, "ref: '-x' is not a branch"),
                         ({"subdir": "../../etc"}, "subdir: '../../etc' is not a relative directory"),
                         ({"pin": "yes"}, "pin: must be true"),
                         ({"token": "a\nb"}, "token: must be one line"),
                         # A token goes over https:// only: git:// has no authentication, http:// is clear text.
                         ({"url": "git://git.example.com/team/dags.git"}, "token: a token is sent over https:// only"),
                         ({"url": "http://git.example.com/team/dags.git"}, "token: a token is sent over https:// only"),
                         ({"import_paths": ["plugins", "../lib"]}, "import_paths: ['plugins', '../lib'] is not a list"),
                         ({"import_paths": "plugins"}, "import_paths: 'plugins' is not a list"),
                         ({"import_paths": ["p%d" % n for n in range(11)]}, "at most 10 different relative"),
                         ({"requirements_file": "/etc/shadow"}, "requirements_file: '/etc/shadow' is not a relative"),
                         ({"test_dir": ["tests"]}, "test_dir: ['tests'] is not a relative path"),
                         ({"owner": "x"}, "unknown field(s) owner")):
        status, text = stack.call("POST", "/qubinode/repos", dict(good, **change), token=admin)
        assert status == 400 and says in json.loads(text)["detail"], (change, text)
    status, text = stack.call("POST", "/qubinode/repos", dict(good, name="pinned"), token=admin)
    assert status == 409 and "pinned is registered already" in text
    assert git_connection("qubinode_git_added") is None
    # Paused, as Airflow creates it: nothing is written and the answer says how to turn it on.
    set_paused(REGISTER, True)
    status, text = stack.call("POST", "/qubinode/repos", good, token=admin)
    assert status == 200 and "unpause the DAG %s" % REGISTER in json.loads(text)["detail"]
    assert git_connection("qubinode_git_added") is None and promote_runs(REGISTER) == []
    set_paused(REGISTER, False)
    try:
        status, text = stack.call("POST", "/qubinode/repos", good, token=admin)
        assert status == 202 and json.loads(text)["action"] == "add", text
        (run,) = promote_runs(REGISTER)
        assert run["conf"] == {"name": "added", "url": good["url"], "ref": "main", "subdir": "dags", "pin": True,
                               "credentials": True} and run["user"] == "admin"
        assert git_connection("qubinode_git_added") == ("git", "x-access-token", good["token"])
    finally:
        set_paused(REGISTER, True)
    text = "".join(p.read_text(errors="replace") for p in stack.logs.iterdir())
    assert good["token"] not in text


def test_remove_asks_the_remove_dag(stack):
    path = "/qubinode/repos/tracked"
    assert stack.call("DELETE", path, token=stack.token("viewer"))[0] == 403
    admin = stack.token("admin")
    assert stack.call("DELETE", path, None, {"Cookie": "_token=" + admin})[0] == 403
    assert stack.call("DELETE", "/qubinode/repos/nope", token=admin)[0] == 404
    # Paused, as Airflow creates it: no run, and the answer says how to turn it on.
    set_paused(REMOVE, True)
    status, text = stack.call("DELETE", path, token=admin)
    assert status == 200 and "unpause the DAG %s" % REMOVE in json.loads(text)["detail"]
    assert promote_runs(REMOVE) == []
    set_paused(REMOVE, False)
    try:
        status, text = stack.call("DELETE", path, token=admin)
        assert status == 202 and json.loads(text)["action"] == "remove", text
        (run,) = promote_runs(REMOVE)
        assert run["conf"] == {"name": "tracked"} and run["user"] == "admin"
    finally:
        set_paused(REMOVE, True)
    # The api-server only asked: the repository is still registered and served until the DAG's run removes it.
    assert "hook_a" in dag_ids("tracked")


def test_the_status_lists_each_repositorys_recent_runs_newest_first(stack):
    status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
    repos = {r["name"]: r for r in json.loads(body)["repositories"]}
    pinned = repos["pinned"]["runs"]
    rollback = [r for r in pinned if r["why"] == "rollback"]
    assert rollback and rollback[0]["commit"] == stack.pinned_older and rollback[0]["by"] == "admin", pinned
    assert rollback[0]["dag_id"] == PROMOTE and rollback[0]["state"] == "queued"
    assert any(r["why"] == "push" and r["by"] == "webhook" and r["commit"] for r in pinned), pinned
    assert any(r["why"] == "sync" and r["by"] == "admin" and r["commit"] is None for r in pinned), pinned
    assert [r["at"] for r in pinned] == sorted((r["at"] for r in pinned), reverse=True)
    tracked = repos["tracked"]["runs"]
    assert tracked[0]["why"] == "remove" and tracked[0]["dag_id"] == REMOVE and tracked[0]["by"] == "admin"
    # A run triggered by hand is listed too, as manual; one that names no repository is not listed.
    set_paused(REMOVE, False)
    try:
        for conf in ({"name": "pathed"}, {}):
            assert stack.call("POST", "/api/v2/dags/%s/dagRuns" % REMOVE, {"logical_date": None, "conf": conf},
                              token=stack.token("admin"))[0] == 200
    finally:
        set_paused(REMOVE, True)
    status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
    runs = {r["name"]: r["runs"] for r in json.loads(body)["repositories"]}
    assert runs["pathed"][0]["why"] == "manual" and runs["pathed"][0]["by"] == "admin"
    assert sum(len(v) for v in runs.values()) == len(pinned) + len(tracked) + len(repos["pathed"]["runs"]) + 1


def test_page_is_listed_in_the_ui_and_needs_a_login(stack):
    assert stack.call("GET", "/qubinode/ui")[0] == 401
    status, body = stack.call("GET", "/qubinode/ui", token=stack.token("viewer"))
    assert status == 200 and "<h1>DAG repositories</h1>" in body
    status, body = stack.call("GET", "/api/v2/plugins", token=stack.token("admin"))
    views = [v for p in json.loads(body)["plugins"] for v in p["external_views"]]
    assert {"name": "DAG repositories", "href": "/qubinode/ui"}.items() <= views[0].items()


def test_secrets_stay_out_of_the_logs(stack):
    text = "".join(p.read_text(errors="replace") for p in stack.logs.iterdir())
    assert SECRET not in text and PASSWORDS["admin"] not in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    """Headless Chromium from the OS packages (hack/provider-tests.sh installs it); no network beyond loopback."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, stack, user):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(stack.base + "/api/v2/version")  # the cookie belongs to this origin
    browser.delete_all_cookies()
    browser.add_cookie({"name": "_token", "value": stack.token(user), "path": "/"})
    browser.get(stack.base + "/qubinode/ui")
    wait = WebDriverWait(browser, 30)
    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr[data-repo='tracked']")))
    return wait, row


def click_now(wait, css):
    """Click what `css` finds at the moment of the click: two seconds after each action the page builds its
    table again, and an element found before that is gone (a click on it fails, and never happens)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(driver):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:
            return False
        return True

    wait.until(attempt)


def test_status_page_in_a_browser_lists_repos_and_syncs(stack, browser):
    from selenium.webdriver.common.by import By

    status, body = stack.call("GET", "/qubinode/repos", token=stack.token("viewer"))
    api = {r["name"]: r for r in json.loads(body)["repositories"]}
    wait, row = open_page(browser, stack, "admin")
    assert row.find_element(By.CSS_SELECTOR, ".dag-count").text == str(api["tracked"]["dag_count"])
    assert api["tracked"]["served_version"][:12] in row.text and "follows main" in row.text
    assert "bad.py" in row.text  # the import error of the last push
    pinned = browser.find_element(By.CSS_SELECTOR, "tr[data-repo='pinned']")
    assert stack.pinned_commit[:12] in pinned.text
    # A line of the registry (an Airflow variable anyone with edit rights writes) is shown as text, never markup.
    assert pinned.find_element(By.CSS_SELECTOR, ".requirements").text == (
        "Requirements: qa-needed-lib>=1, <b>qa-bold</b> (installed: qa-needed-lib==1.2.0)")
    assert not pinned.find_elements(By.CSS_SELECTOR, ".requirements b")
    assert not row.find_elements(By.CSS_SELECTOR, ".requirements")
    # Its recent runs, with what they were for, the commit, the result and who asked.
    pinned.find_element(By.CSS_SELECTOR, ".runs summary").click()
    items = [li.text for li in pinned.find_elements(By.CSS_SELECTOR, ".runs li")]
    assert any(t.startswith("rollback %s: queued (admin, " % stack.pinned_older[:12]) for t in items), items

    commit = stack.tracked.commit({"e.py": dag_file("hook_e")})
    assert commit
    row.find_element(By.TAG_NAME, "button").click()
    wait.until(lambda d: d.find_element(By.ID, "message").text == "tracked: refresh requested")
    wait_for(lambda: "hook_e" in dag_ids("tracked"), 60, "hook_e after Sync now")


def test_status_page_refuses_sync_and_rollback_to_a_viewer(stack, browser):
    from selenium.webdriver.common.by import By

    wait, row = open_page(browser, stack, "viewer")
    row.find_element(By.TAG_NAME, "button").click()
    wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("tracked: sync refused (HTTP 403)"))
    browser.find_element(By.CSS_SELECTOR, "#add summary").click()
    form = browser.find_element(By.ID, "add-form")
    form.find_element(By.NAME, "name").send_keys("by_viewer")
    form.find_element(By.NAME, "url").send_keys("https://git.example.com/v/dags.git")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("by_viewer: add refused (HTTP 403)"))
    before, removals = len(promote_runs()), len(promote_runs(REMOVE))
    click_now(wait, "tr[data-repo='pinned'] .rollback button")
    browser.switch_to.alert.accept()
    wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("pinned: rollback refused (HTTP 403)"))
    assert len(promote_runs()) == before
    click_now(wait, "tr[data-repo='tracked'] button.remove")
    browser.switch_to.alert.accept()
    wait.until(lambda d: d.find_element(By.ID, "message").text.startswith("tracked: remove refused (HTTP 403)"))
    assert len(promote_runs(REMOVE)) == removals


def test_status_page_adds_a_repository_in_a_browser(stack, browser):
    from selenium.webdriver.common.by import By

    wait = open_page(browser, stack, "admin")[0]
    browser.find_element(By.CSS_SELECTOR, "#add summary").click()
    form = browser.find_element(By.ID, "add-form")
    form.find_element(By.NAME, "name").send_keys("from_page")
    form.find_element(By.NAME, "url").send_keys("https://git.example.com/page/dags.git")
    form.find_element(By.NAME, "subdir").send_keys("dags")
    form.find_element(By.NAME, "import_paths").send_keys(" plugins, lib/shared ,")
    form.find_element(By.NAME, "test_dir").send_keys("dags/tests")
    form.find_element(By.NAME, "pin").click()  # follow the branch
    set_paused(REGISTER, False)
    try:
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.find_element(By.ID, "message").text == "from_page: add requested: the register DAG validates it")
        run = [r for r in promote_runs(REGISTER) if r["conf"]["name"] == "from_page"][-1]
        assert run["conf"] == {"name": "from_page", "url": "https://git.example.com/page/dags.git", "ref": "main",
                               "subdir": "dags", "pin": False, "import_paths": ["plugins", "lib/shared"],
                               "test_dir": "dags/tests"}
    finally:
        set_paused(REGISTER, True)
    assert git_connection("qubinode_git_from_page") is None  # no token given, no connection


def test_status_page_rolls_back_in_a_browser(stack, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait = open_page(browser, stack, "admin")[0]
    pinned = browser.find_element(By.CSS_SELECTOR, "tr[data-repo='pinned']")
    choice = Select(pinned.find_element(By.CSS_SELECTOR, ".rollback select"))
    # The pinned commit is not offered; the earlier validated one is.
    assert [o.get_attribute("value") for o in choice.options] == [stack.pinned_older]
    assert not browser.find_elements(By.CSS_SELECTOR, "tr[data-repo='tracked'] .rollback")
    set_paused(PROMOTE, False)
    try:
        before = len(promote_runs())
        pinned.find_element(By.CSS_SELECTOR, ".rollback button").click()
        browser.switch_to.alert.dismiss()  # asked first; nothing happens on "cancel"
        assert len(promote_runs()) == before
        pinned.find_element(By.CSS_SELECTOR, ".rollback button").click()
        browser.switch_to.alert.accept()
        wait.until(lambda d: d.find_element(By.ID, "message").text
                   == "pinned: rollback to %s requested" % stack.pinned_older[:12])
        run = promote_runs()[-1]
        assert run["conf"] == {"name": "pinned", "commit": stack.pinned_older, "rollback": True}
        assert run["user"] == "admin"
    finally:
        set_paused(PROMOTE, True)


def test_status_page_removes_a_repository_in_a_browser(stack, browser):
    from selenium.webdriver.common.by import By

    wait = open_page(browser, stack, "admin")[0]
    button = browser.find_element(By.CSS_SELECTOR, "tr[data-repo='pathed'] button.remove")
    set_paused(REMOVE, False)
    try:
        before = len(promote_runs(REMOVE))
        button.click()
        browser.switch_to.alert.dismiss()  # asked first; nothing happens on "cancel"
        assert len(promote_runs(REMOVE)) == before
        button.click()
        browser.switch_to.alert.accept()
        wait.until(lambda d: d.find_element(By.ID, "message").text
                   == "pathed: removal requested: the remove DAG runs it")
        run = promote_runs(REMOVE)[-1]
        assert run["conf"] == {"name": "pathed"} and run["user"] == "admin"
    finally:
        set_paused(REMOVE, True)
