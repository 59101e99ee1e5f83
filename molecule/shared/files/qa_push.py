"""Push a new DAG to a git repository, announce it with a signed GitHub push event to the Airflow
webhook, and time until the API serves the new DAG. Runs on a test host with the system Python.

Reads {"secret": ..., "password": ...} (webhook secret, admin password) as JSON on stdin, so neither
is on a command line. Prints one JSON line: {"seconds": [...], "dag_ids": [...], "refused": {...}}.
"""

import argparse
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request


# The stack's CA, which the api-server's certificate is checked against.
CA = os.environ.get("QA_CA", "/etc/airflow/ca.crt")


def call(url, body=None, headers=None, method=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30, context=ssl.create_default_context(cafile=CA)) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", default="https://127.0.0.1:8080")
    ap.add_argument("--work", required=True, help="clone of the repository to commit in")
    ap.add_argument("--template", required=True, help="DAG file whose QA_DAG_ID each push replaces")
    ap.add_argument("--subdir", default="dags")
    ap.add_argument("--repo-url", required=True, help="the repository URL the push event names")
    ap.add_argument("--prefix", default="qa_pushed")
    ap.add_argument("--pushes", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--check-refusals", action="store_true")
    args = ap.parse_args()
    creds = json.load(sys.stdin)
    with open(args.template) as f:
        template = f.read()
    status, body = call(args.api + "/auth/token", json.dumps({"username": "admin", "password": creds["password"]}).encode(),
                        {"Content-Type": "application/json"})
    if status != 201:
        sys.exit("login failed: HTTP %s" % status)
    token = json.loads(body)["access_token"]

    def webhook(payload, secret=creds["secret"], signed=True):
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        if signed:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return call(args.api + "/qubinode/webhook", raw, headers)

    refused = {}
    if args.check_refusals:
        event = {"ref": "refs/heads/main", "after": "0" * 40, "repository": {"clone_url": args.repo_url}}
        refused["unsigned"] = webhook(event, signed=False)[0]
        refused["bad_signature"] = webhook(event, secret="not-the-secret")[0]
        refused["unknown_repo"] = webhook({"ref": "refs/heads/main", "after": "0" * 40,
                                           "repository": {"clone_url": "https://git.example.com/x/y.git"}})[0]

    seconds, dag_ids = [], []
    for n in range(args.pushes):
        dag_id = "%s_%d_%d" % (args.prefix, int(time.time()), n)
        with open(os.path.join(args.work, args.subdir, dag_id + ".py"), "w") as f:
            f.write(template.replace("QA_DAG_ID", dag_id))
        start = time.monotonic()
        subprocess.run("git add -A && git commit -qm %s && git push -q origin HEAD:main" % dag_id, shell=True,
                       cwd=args.work, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.work, capture_output=True, text=True,
                                check=True).stdout.strip()
        status, body = webhook({"ref": "refs/heads/main", "after": commit, "repository": {"clone_url": args.repo_url}})
        if status != 202:
            sys.exit("webhook answered HTTP %s: %s" % (status, body[:300]))
        while True:
            status = call("%s/api/v2/dags/%s" % (args.api, dag_id), headers={"Authorization": "Bearer " + token})[0]
            if status == 200:
                break
            if time.monotonic() - start > args.timeout:
                sys.exit("%s was not served within %ss of the push" % (dag_id, args.timeout))
            time.sleep(0.2)
        seconds.append(round(time.monotonic() - start, 2))
        dag_ids.append(dag_id)
    print(json.dumps({"seconds": seconds, "dag_ids": dag_ids, "refused": refused}))


if __name__ == "__main__":
    main()
