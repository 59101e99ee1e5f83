"""Announce a merge request to the Airflow webhook as a signed GitHub pull_request event and wait for the
review run it starts. Runs on a test host with the system Python.

Reads {"secret": ..., "password": ...} (webhook secret, admin password) as JSON on stdin, so neither is
on a command line. Prints one JSON line: {"action": ..., "dag_run_id": ..., "state": ...}.
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
import urllib.parse

from qa_push import call


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", default="https://127.0.0.1:8080")
    ap.add_argument("--repo-url", required=True)
    ap.add_argument("--full-name", required=True)
    ap.add_argument("--number", type=int, required=True)
    ap.add_argument("--head", required=True)
    ap.add_argument("--base", default="main")
    ap.add_argument("--timeout", type=int, default=420)
    args = ap.parse_args()
    creds = json.load(sys.stdin)
    event = {"action": "opened", "number": args.number,
             "repository": {"clone_url": args.repo_url, "full_name": args.full_name},
             "pull_request": {"number": args.number, "head": {"sha": args.head}, "base": {"ref": args.base}}}
    raw = json.dumps(event).encode()
    status, body = call(args.api + "/qubinode/webhook", raw, {
        "Content-Type": "application/json", "X-GitHub-Event": "pull_request",
        "X-Hub-Signature-256": "sha256=" + hmac.new(creds["secret"].encode(), raw, hashlib.sha256).hexdigest()})
    if status != 202:
        sys.exit("webhook answered HTTP %s: %s" % (status, body[:300]))
    (result,) = json.loads(body)["bundles"]
    if result["action"] != "review":
        sys.exit("the merge request did not start a review: %s" % result)
    status, body = call(args.api + "/auth/token", json.dumps({"username": "admin", "password": creds["password"]}).encode(),
                        {"Content-Type": "application/json"})
    token = json.loads(body)["access_token"]
    path = "%s/api/v2/dags/%s/dagRuns/%s" % (args.api, result["dag_id"], urllib.parse.quote(result["dag_run_id"]))
    start = time.monotonic()
    while True:
        status, body = call(path, headers={"Authorization": "Bearer " + token})
        state = json.loads(body)["state"] if status == 200 else None
        if state in ("success", "failed"):
            break
        if time.monotonic() - start > args.timeout:
            sys.exit("the review run %s did not end within %ss" % (result["dag_run_id"], args.timeout))
        time.sleep(1)
    print(json.dumps({"action": result["action"], "dag_run_id": result["dag_run_id"], "state": state,
                      "seconds": round(time.monotonic() - start, 2)}))


if __name__ == "__main__":
    main()
