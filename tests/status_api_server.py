"""A local HTTP server that implements the documented contract of the commit status APIs that merge-request
checks post to, for the provider's tests and the molecule scenarios:

- GitHub: ``POST /repos/{owner}/{repo}/statuses/{sha}``, a JSON body with ``state`` (error, failure,
  pending, success; required), ``target_url``, ``description`` and ``context``; the token in
  ``Authorization: Bearer <token>`` (or ``token <token>``); 201 with the status, 401 without a valid
  token, 422 for a missing or unknown state.
- GitLab (under ``/api/v4``): ``POST /projects/{id or URL-encoded path}/statuses/{sha}``, the fields
  ``state`` (pending, running, success, failed, canceled, skipped; required), ``name``, ``description``
  and ``target_url`` as query or form parameters; the token in ``PRIVATE-TOKEN``; 201, 401 or 400.

Each accepted status is kept (and appended as a JSON line to --record). Run as a script on a test host:
``python3 status_api_server.py --port P --token-file F --record FILE`` (the token is read from a file,
never given on the command line).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GITHUB_STATES = {"error", "failure", "pending", "success"}
GITLAB_STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}
GITHUB_PATH = re.compile(r"^/repos/([^/]+)/([^/]+)/statuses/([0-9a-f]{40})$")
GITLAB_PATH = re.compile(r"^/api/v4/projects/([^/]+)/statuses/([0-9a-f]{40})$")


class Handler(BaseHTTPRequestHandler):
    server_version = "qa-status-api"

    def log_message(self, *args):  # quiet: the tests read the recorded statuses
        pass

    def answer(self, code, body):
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):  # noqa: N802 (the http.server API)
        split = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        github, gitlab = GITHUB_PATH.match(split.path), GITLAB_PATH.match(split.path)
        token = self.server.token
        if github:
            auth = self.headers.get("Authorization", "")
            if auth not in ("Bearer " + token, "token " + token):
                return self.answer(401, {"message": "Bad credentials"})
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self.answer(400, {"message": "Problems parsing JSON"})
            if not isinstance(body, dict) or body.get("state") not in GITHUB_STATES:
                return self.answer(422, {"message": "Validation Failed", "errors": [{"field": "state"}]})
            status = dict(kind="github", repository="%s/%s" % github.group(1, 2), sha=github.group(3),
                          state=body["state"], context=body.get("context", "default"),
                          description=body.get("description"), target_url=body.get("target_url"))
        elif gitlab:
            if self.headers.get("PRIVATE-TOKEN") != token:
                return self.answer(401, {"message": "401 Unauthorized"})
            fields = dict(urllib.parse.parse_qsl(split.query))
            if self.headers.get("Content-Type", "").startswith("application/json"):
                fields.update(json.loads(raw or b"{}"))
            else:
                fields.update(urllib.parse.parse_qsl(raw.decode()))
            if fields.get("state") not in GITLAB_STATES:
                return self.answer(400, {"message": "state does not have a valid value"})
            status = dict(kind="gitlab", repository=urllib.parse.unquote(gitlab.group(1)), sha=gitlab.group(2),
                          state=fields["state"], context=fields.get("name", "default"),
                          description=fields.get("description"), target_url=fields.get("target_url"))
        else:
            return self.answer(404, {"message": "Not Found"})
        with self.server.lock:
            self.server.statuses.append(status)
            if self.server.record:
                with open(self.server.record, "a") as f:
                    f.write(json.dumps(status) + "\n")
        return self.answer(201, dict(status, id=len(self.server.statuses)))


def make_server(token, port=0, record=None):
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.token, server.record, server.statuses, server.lock = token, record, [], threading.Lock()
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--record", required=True)
    args = ap.parse_args()
    with open(args.token_file) as f:
        token = f.read().strip()
    make_server(token, args.port, args.record).serve_forever()


if __name__ == "__main__":
    main()
