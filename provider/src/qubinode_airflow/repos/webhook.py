# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Push webhook, status API and status page, mounted on Airflow's api-server at /qubinode.

Routes of plugin apps are not authenticated by Airflow, so each route here decides:
- POST /qubinode/webhook: GitHub (X-Hub-Signature-256, HMAC-SHA256 of the body) or GitLab (X-Gitlab-Token)
  push events (a repository that follows its ref is refreshed; for a pinned one, a run of the DAG
  qubinode_dag_repo_promote validates and pins the pushed commit while that DAG is unpaused), checked
  against the repository's own secret (the password of the connection `qubinode_webhook_<bundle>`) when
  it has one, else the stack's (connection `qubinode_webhook`, or the
  variable `qubinode_webhook_secret`). The body is read up to MAX_BODY and no further (413); unsigned or
  badly signed: 401; signed but malformed: 400; a delivery already taken (same signed body): 409; a
  repository that is not registered: 404. In each of these cases nothing else happens.
- GET /qubinode/repos, POST /qubinode/repos/{name}/sync, GET /qubinode/ui: Airflow users only (a bearer
  token or the UI's session cookie), read and edit rights on DAGs respectively.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import select

from qubinode_airflow.repos import registry

log = logging.getLogger(__name__)
SECRET_CONN_ID = "qubinode_webhook"
SECRET_VARIABLE = "qubinode_webhook_secret"
MAX_BODY = 5 * 1024 * 1024
# Deliveries taken are remembered in Airflow's audit log (table log), by the digest of the signed body.
DELIVERY_EVENT = "qubinode.webhook.delivery"
SHA_RE = registry.SHA_RE
# A cookie-authenticated POST must carry this header, which a cross-site form cannot send.
CSRF_HEADER = "X-Qubinode-Request"
# The repository DAGs that the webhook and the page start (the registry names them).
PROMOTE_DAG, REVIEW_DAG, REGISTER_DAG, REMOVE_DAG = (registry.PROMOTE_DAG, registry.REVIEW_DAG, registry.REGISTER_DAG,
                                                     registry.REMOVE_DAG)
REVIEW_EVENTS = ("pull_request", "merge request hook")
PR_ACTIONS = ("opened", "synchronize", "reopened")
MR_ACTIONS = ("open", "update", "reopen")


def _connection_password(conn_id: str) -> str | None:
    """The connection's password; None only when there is no such connection. Any other failure (a
    password that cannot be decrypted, a secrets backend that is down) is raised: a secret that cannot
    be read must not let an unsigned delivery through."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id).password or None
    except AirflowNotFoundException:
        return None


def webhook_secret() -> str | None:
    """The stack's shared secret, read on every request so a rotation needs no restart."""
    from airflow.models.variable import Variable

    return _connection_password(SECRET_CONN_ID) or Variable.get(SECRET_VARIABLE, default_var=None) or None


def repository_secret(bundle: str) -> str | None:
    """A repository's own secret, if it has one: then only deliveries signed with it move its bundle."""
    return _connection_password("%s_%s" % (SECRET_CONN_ID, bundle))


def signature_ok(secret: str | None, body: bytes, headers) -> tuple[bool, str]:
    """(valid, which scheme): GitHub's HMAC-SHA256 signature or GitLab's token, compared in constant time."""
    if not secret:
        return False, "none"
    github = headers.get("x-hub-signature-256")
    if github:
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(github.strip().encode(), want.encode()), "github"
    gitlab = headers.get("x-gitlab-token")
    if gitlab:
        return hmac.compare_digest(gitlab.encode(), secret.encode()), "gitlab"
    return False, "none"


async def read_body(request: Request) -> bytes:
    """The body, never more than MAX_BODY read into memory: a larger one is refused as it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, "payload too large (at most %d bytes)" % MAX_BODY)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, "payload too large (at most %d bytes)" % MAX_BODY)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_event(body: bytes) -> dict[str, Any] | None:
    """The event as a JSON object, or None when the body is not one."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def check_push(payload: dict[str, Any]) -> None:
    """A push event's fields, checked after its signature and before anything is done (400)."""
    for section in ("repository", "project"):
        if section in payload and not isinstance(payload[section], dict):
            raise HTTPException(400, "%r must be an object" % section)
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref.startswith(("refs/heads/", "refs/tags/")) or len(ref) > 255:
        raise HTTPException(400, "'ref' must be a branch or tag ref (refs/heads/... or refs/tags/...)")
    after = payload.get("after")
    if not isinstance(after, str) or not SHA_RE.fullmatch(after):
        raise HTTPException(400, "'after' must be the 40-character commit SHA the push ends at")


def remember_delivery(session, body: bytes) -> bool:
    """Record the delivery; False when the same signed body was taken before (a replay)."""
    from airflow.models.log import Log
    from sqlalchemy import func, select

    digest = hashlib.sha256(body).hexdigest()
    row = Log(event=DELIVERY_EVENT, extra=digest)
    session.add(row)
    session.flush()
    first = session.scalar(select(func.min(Log.id)).where(Log.event == DELIVERY_EVENT, Log.extra == digest))
    return first == row.id


def _session():
    from airflow.utils.session import create_session

    return create_session()


def refresh(name: str, entry: dict[str, Any], session, commit: str | None = None, why: str = "sync",
            who: str | None = None) -> dict[str, Any]:
    """A repository that follows its ref: ask the dag-processors to refresh it. A pinned one: a run of the
    promote DAG validates `commit` (None: the head of its ref) and pins it when it passes."""
    if entry.get("pin", True):
        return promote(name, entry, session, commit, why, who)
    rel = registry.request_refresh(session, name)
    return {"bundle": name, "action": "refresh", "file": rel}


def promote(name: str, entry: dict[str, Any], session, commit: str | None, why: str,
            who: str | None) -> dict[str, Any]:
    if commit and commit == entry.get("commit"):
        return _none(name, entry, "pinned at this commit already")
    return start_run(PROMOTE_DAG, name, entry, session, {"name": name, "commit": commit}, why, who,
                     "%s of %s" % (why, (commit or "the head of " + str(entry.get("ref")))[:40]),
                     "pinned: run airflow_dag_repo (or the dag_repos playbook) to validate and pin the push")


def review(name: str, entry: dict[str, Any], session, head: dict[str, Any]) -> dict[str, Any]:
    """A merge request's head: a run of the review DAG validates it and reports a commit status."""
    conf = {"name": name, "commit": head["commit"], "review_ref": head["review_ref"], "status": head["status"]}
    return start_run(REVIEW_DAG, name, entry, session, conf, "review", "webhook",
                     "review of %s (%s)" % (head["commit"][:12], head["review_ref"]),
                     "merge request not checked", action="review")


def _none(name: str, entry: dict[str, Any], detail: str) -> dict[str, Any]:
    return {"bundle": name, "action": "none", "pinned_commit": entry.get("commit") if entry.get("pin", True) else None,
            "detail": detail}


def start_run(dag_id: str, name: str, entry: dict[str, Any], session, conf: dict[str, Any], why: str,
              who: str | None, note: str, without: str, action: str = "validate") -> dict[str, Any]:
    """A run of `dag_id` with `conf`, answered as `action`, when that DAG is served and unpaused; else what to do."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models.dag import DagModel
    from airflow.utils import timezone
    from airflow.utils.types import DagRunTriggeredByType

    dag = session.get(DagModel, dag_id)
    if dag is None or dag.is_stale:
        return _none(name, entry, "%s; with the example DAGs served, the DAG %s does it on each event" % (without, dag_id))
    if dag.is_paused:
        return _none(name, entry, "%s: unpause the DAG %s to turn this on" % (without, dag_id))
    now = timezone.utcnow()
    run = trigger_dag(dag_id, triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name=who,
                      run_id="%s__%s__%s__%s" % (why, name, (conf.get("commit") or "head")[:12],
                                                 now.strftime("%Y%m%dT%H%M%S.%f")),
                      conf=conf, run_after=now, note=note, session=session)
    return {"bundle": name, "action": action, "commit": conf.get("commit"),
            "dag_id": dag_id, "dag_run_id": run.run_id if run else None}


def review_head(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The head of the merge request a GitHub pull_request or GitLab merge request event names, checked (400
    when malformed); None for an action that needs no check (closed, labeled, merge, ...)."""
    from qubinode_airflow.repos.status import StatusError, checked_target

    if event == "pull_request":
        pr, repo = payload.get("pull_request"), payload.get("repository")
        if payload.get("action") not in PR_ACTIONS:
            return None
        if not isinstance(pr, dict) or not isinstance(repo, dict):
            raise HTTPException(400, "'pull_request' and 'repository' must be objects")
        number, head = pr.get("number"), (pr.get("head") or {}).get("sha")
        branch, target = (pr.get("base") or {}).get("ref"), {"kind": "github", "repository": repo.get("full_name")}
        review_ref = "refs/pull/%s/head" % number
    else:
        attrs, project = payload.get("object_attributes"), payload.get("project")
        if not isinstance(attrs, dict) or not isinstance(project, dict):
            raise HTTPException(400, "'object_attributes' and 'project' must be objects")
        if attrs.get("action") not in MR_ACTIONS:
            return None
        number, head = attrs.get("iid"), (attrs.get("last_commit") or {}).get("id")
        branch, target = attrs.get("target_branch"), {"kind": "gitlab", "repository": project.get("id")}
        review_ref = "refs/merge-requests/%s/head" % number
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 10 ** 10:
        raise HTTPException(400, "the merge request's number must be a positive integer")
    if not isinstance(head, str) or not SHA_RE.fullmatch(head):
        raise HTTPException(400, "the merge request's head must be a 40-character commit SHA")
    if not isinstance(branch, str) or not 0 < len(branch) <= 255:
        raise HTTPException(400, "the merge request's target branch must be a branch name")
    try:
        status = checked_target(target)
    except StatusError as e:
        raise HTTPException(400, str(e)) from None
    return {"commit": head, "review_ref": review_ref, "branch": branch, "status": status}


def _user_dependency(method: str):
    """Airflow's own check: a valid token (header or UI cookie) and the right on DAGs."""
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag(method=method))


def same_origin(request: Request) -> None:
    """A request with a bearer token, or from the page (its header): the UI's session cookie alone is not
    enough, as a cross-site form could send it."""
    if not request.headers.get("authorization") and request.headers.get(CSRF_HEADER) != "1":
        raise HTTPException(403, "a browser request needs the %s: 1 header" % CSRF_HEADER)


async def page_request(request: Request) -> Any:
    """The JSON body of a request of the page (None when it is not JSON), once same_origin passed."""
    same_origin(request)
    try:
        return json.loads((await read_body(request)) or b"{}")
    except ValueError:
        return None


def _registry_dependency():
    """Who may change what the stack serves: users who may edit variables (the registry is one)."""
    from airflow.api_fastapi.core_api.security import requires_access_variable

    return Depends(requires_access_variable(method="PUT"))


def _connection_dependency(method: str):
    """Who may write (POST) or delete (DELETE) a connection: "Add" keeps a token in one, "Remove" deletes it."""
    from airflow.api_fastapi.core_api.security import requires_access_connection

    return Depends(requires_access_connection(method=method))


def write_git_connection(session, name: str, username: str, token: str) -> None:
    """The repository's git connection qubinode_git_<name>, as airflow_dag_repo writes it (encrypted at rest)."""
    from airflow.models.connection import Connection

    conn_id = registry.GIT_CONN_PREFIX + name
    for old in session.scalars(select(Connection).where(Connection.conn_id == conn_id)):
        session.delete(old)
    session.flush()
    session.add(Connection(conn_id=conn_id, conn_type="git", login=username, password=token,
                           description="git credentials of the DAG repository %s (qubinode.airflow)" % name))


def answer(result: dict[str, Any]) -> JSONResponse:
    """A user's request: 202 when it started something, 200 with the detail when there was nothing to do."""
    return JSONResponse(result, status_code=200 if result.get("action") == "none" else 202)


def dag_ready(dag_id: str, session) -> str | None:
    """None when `dag_id` is served and unpaused, else what to do."""
    from airflow.models.dag import DagModel

    dag = session.get(DagModel, dag_id)
    if dag is None or dag.is_stale:
        return "the DAG %s is not served: serve the example DAGs" % dag_id
    if dag.is_paused:
        return "unpause the DAG %s to turn this on" % dag_id
    return None


def _registry(session) -> dict[str, dict[str, Any]]:
    try:
        return registry.read_registry(session)
    except registry.RegistryError as e:
        log.error("webhook: %s", e)
        raise HTTPException(500, str(e)) from e


def registered(session, name: str) -> dict[str, Any]:
    """The registry entry of `name` (404 when there is none)."""
    repos = _registry(session)
    if name not in repos:
        raise HTTPException(404, "no registered DAG repository named %r" % name)
    return repos[name]


def authorised_bundles(payload, body: bytes, headers, repos) -> tuple[bool, list[str], list[str], str]:
    """(signed with the stack's secret, bundles the push names, those of them it may move, scheme)."""
    stack_ok, scheme = signature_ok(webhook_secret(), body, headers)
    names = registry.matching_bundles(repos, registry.push_urls(payload)) if payload is not None else []
    allowed = []
    for name in names:
        own = repository_secret(name)
        if own:
            ok, scheme = signature_ok(own, body, headers)
        else:
            ok = stack_ok
        if ok:
            allowed.append(name)
    return stack_ok, names, allowed, scheme


def review_event(session, event, payload, body, repos, names, allowed):
    head = review_head(event, payload)
    if head is None:
        return JSONResponse({"status": "ignored", "detail": "action %r needs no check" % (
            payload.get("action") or (payload.get("object_attributes") or {}).get("action"))}, status_code=202)
    if not names:
        urls = registry.push_urls(payload)
        raise HTTPException(404, "no registered DAG repository has the URL %s" % (urls[:1] or ["(none)"])[0])
    if not remember_delivery(session, body):
        raise HTTPException(409, "this delivery was taken before: a replay changes nothing")
    results = []
    for name in names:
        if name not in allowed:
            results.append(_none(name, repos[name], "the repository has a secret of its own; this delivery is "
                                                    "not signed with it"))
        elif repos[name].get("ref") != head["branch"]:
            results.append(_none(name, repos[name], "merge request into %s; the bundle serves %s"
                                 % (head["branch"], repos[name].get("ref"))))
        else:
            results.append(review(name, repos[name], session, head))
    log.info("webhook %s %s@%s: %s", event, names, head["commit"][:12], results)
    return JSONResponse({"status": "accepted", "bundles": results}, status_code=202)


def create_app() -> FastAPI:
    app = FastAPI(title="qubinode.airflow DAG repositories", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhook")
    async def webhook(request: Request, x_github_event: str | None = Header(None),
                      x_gitlab_event: str | None = Header(None)):
        body = await read_body(request)
        payload = parse_event(body)
        event = (x_github_event or x_gitlab_event or "").lower()
        with _session() as session:
            repos = _registry(session)
            stack_ok, names, allowed, scheme = authorised_bundles(payload, body, request.headers, repos)
            # Refused when nothing verifies it, or when every repository it names has a secret of its
            # own that did not sign it.
            if not (stack_ok or allowed) or (names and not allowed):
                log.warning("webhook from %s refused: %s", request.client.host if request.client else "?",
                            "no signature or token" if scheme == "none" else "bad %s signature" % scheme)
                raise HTTPException(401, "missing or invalid signature")
            if payload is None:
                raise HTTPException(400, "the body is not a JSON object")
            if event == "ping":
                return {"status": "pong"}
            if event in REVIEW_EVENTS:
                return review_event(session, event, payload, body, repos, names, allowed)
            if event not in ("push", "push hook", "tag_push", "tag push hook"):
                return JSONResponse({"status": "ignored", "detail": "event %r is not a push" % event},
                                    status_code=202)
            check_push(payload)
            if not names:
                urls = registry.push_urls(payload)
                raise HTTPException(404, "no registered DAG repository has the URL %s" % (urls[:1] or ["(none)"])[0])
            if not remember_delivery(session, body):
                raise HTTPException(409, "this delivery was taken before: a replay changes nothing")
            ref = registry.pushed_ref(payload)
            results = []
            for name in names:
                if name not in allowed:
                    results.append({"bundle": name, "action": "none",
                                    "detail": "the repository has a secret of its own; this delivery is not "
                                              "signed with it"})
                elif ref and repos[name].get("ref") not in (ref, None):
                    results.append({"bundle": name, "action": "none",
                                    "detail": "push to %s; the bundle serves %s" % (ref, repos[name].get("ref"))})
                else:
                    results.append(refresh(name, repos[name], session, payload["after"], "push", "webhook"))
        log.info("webhook push %s@%s: %s", names, payload["after"][:12], results)
        return JSONResponse({"status": "accepted", "bundles": results}, status_code=202)

    @app.get("/repos", dependencies=[_user_dependency("GET")])
    def repos():
        with _session() as session:
            _registry(session)
            return {"repositories": registry.status(session)}

    @app.post("/repos/{name}/sync", dependencies=[_user_dependency("PUT")])
    def sync(name: str, request: Request, user: GetUserDep):
        same_origin(request)
        with _session() as session:
            return answer(refresh(name, registered(session, name), session, who=user.get_name()))

    @app.post("/repos", dependencies=[_registry_dependency(), _connection_dependency("POST")])
    async def add(request: Request, user: GetUserDep):
        body = await page_request(request)
        try:
            conf = registry.add_request(body)
        except ValueError as e:
            raise HTTPException(400, str(e)) from e
        name = conf["name"]
        with _session() as session:
            repos = _registry(session)
            if name in repos:
                raise HTTPException(409, "%s is registered already: sync, roll back or remove it" % name)
            entry = {"pin": conf["pin"]}
            ready = dag_ready(REGISTER_DAG, session)
            if ready:
                return answer(_none(name, entry, "not added; %s" % ready))
            if body.get("token"):
                # Kept in the repository's git connection, as airflow_dag_repo keeps it; the run reads it there.
                write_git_connection(session, name, body.get("username") or "x-access-token", body["token"])
                conf["credentials"] = True
            result = start_run(REGISTER_DAG, name, entry, session, conf, "add", user.get_name(),
                               "add of %s (%s)" % (name, conf["url"][:200]), "not added", action="add")
        return answer(result)

    @app.post("/repos/{name}/rollback", dependencies=[_registry_dependency()])
    async def rollback(name: str, request: Request, user: GetUserDep):
        body = await page_request(request)
        commit = body.get("commit") if isinstance(body, dict) else None
        with _session() as session:
            entry = registered(session, name)
            if not entry.get("pin", True):
                raise HTTPException(400, "%s follows its ref %s: there is no pinned commit to roll back"
                                    % (name, entry.get("ref")))
            if commit == entry.get("commit"):
                return answer(_none(name, entry, "pinned at this commit already"))
            try:
                registry.check_rollback(entry, name, commit)
            except ValueError as e:
                raise HTTPException(400, "commit: %s" % e) from e
            result = start_run(PROMOTE_DAG, name, entry, session, {"name": name, "commit": commit, "rollback": True},
                               "rollback", user.get_name(), "rollback of %s to %s" % (name, commit[:12]),
                               "not rolled back", action="rollback")
            return answer(result)

    @app.delete("/repos/{name}", dependencies=[_registry_dependency(), _connection_dependency("DELETE")])
    def remove(name: str, request: Request, user: GetUserDep):
        same_origin(request)
        with _session() as session:
            return answer(start_run(REMOVE_DAG, name, registered(session, name), session, {"name": name}, "remove",
                                    user.get_name(), "remove of %s" % name, "not removed", action="remove"))

    @app.get("/ui", response_class=HTMLResponse, dependencies=[_user_dependency("GET")])
    def page():
        from qubinode_airflow.repos.page import PAGE

        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    return app
