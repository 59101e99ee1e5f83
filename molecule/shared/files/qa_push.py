"""Push a new DAG to a git repository, announce it with a signed GitHub push event to the Airflow
webhook, and time until the API serves the new DAG. Runs on a test host with the system Python.

With --promote the repository is pinned: each push must start a run of the promote DAG, which validates
and pins the commit; with --bad-last the last push carries a DAG that does not parse, and its run must fail
while the commit pinned before keeps serving.

Reads {"secret": ..., "password": ...} (webhook secret, admin password) as JSON on stdin, so neither
is on a command line. Prints one JSON line: {"seconds": [...], "dag_ids": [...], "refused": {...},
"promoted": [...], "bad": {...}, "phases": [...]}.
"""

import argparse
import datetime
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
    ap.add_argument("--bundle", default="qa_side", help="the bundle name of the repository")
    ap.add_argument("--pushes", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--check-refusals", action="store_true")
    ap.add_argument("--promote", action="store_true", help="the repository is pinned: pushes run the promote DAG")
    ap.add_argument("--bad-last", action="store_true", help="the last push carries a DAG that does not parse")
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

    def get(path):
        status, body = call(args.api + path, headers={"Authorization": "Bearer " + token})
        return status, json.loads(body) if status == 200 else body

    def pinned_commit(name):
        return {r["name"]: r for r in get("/qubinode/repos")[1]["repositories"]}[name]["pinned_commit"]

    def run_end(result):
        """The promote DAG run the webhook started: its end state and the log of its validation task."""
        path = "/api/v2/dags/%s/dagRuns/%s" % (result["dag_id"], result["dag_run_id"])
        while True:
            status, run = get(path)
            if status == 200 and run["state"] in ("success", "failed"):
                break
            if time.monotonic() - start > args.timeout:
                sys.exit("the run %s did not end within %ss of the push" % (result["dag_run_id"], args.timeout))
            time.sleep(0.2)
        status, log = get(path + "/taskInstances/validate_and_pin/logs/1?full_content=true")
        text = json.dumps(log) if status == 200 else ""
        status, ti = get(path + "/taskInstances/validate_and_pin")
        if status == 200:
            # Where the time went, in seconds from the push: run queued, task started, task ended, run ended.
            marks = (run.get("queued_at"), ti.get("start_date"), ti.get("end_date"), run.get("end_date"))
            phases.append([round(stamp(t) - wall, 2) for t in marks])
        return run["state"], text

    def stamp(text):
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else float("nan")

    seconds, dag_ids, promoted, bad, phases = [], [], [], {}, []
    for n in range(args.pushes):
        last_bad = args.bad_last and n == args.pushes - 1
        dag_id = "%s_%d_%d" % (args.prefix, int(time.time()), n)
        with open(os.path.join(args.work, args.subdir, dag_id + ".py"), "w") as f:
            f.write(template.replace("QA_DAG_ID", dag_id) + ("\ndef broken(:\n" if last_bad else ""))
        before = pinned_commit(args.bundle) if args.promote else None
        start, wall = time.monotonic(), time.time()
        subprocess.run("git add -A && git commit -qm %s && git push -q origin HEAD:main" % dag_id, shell=True,
                       cwd=args.work, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.work, capture_output=True, text=True,
                                check=True).stdout.strip()
        status, body = webhook({"ref": "refs/heads/main", "after": commit, "repository": {"clone_url": args.repo_url}})
        if status != 202:
            sys.exit("webhook answered HTTP %s: %s" % (status, body[:300]))
        if args.promote:
            (result,) = json.loads(body)["bundles"]
            if result["action"] != "validate":
                sys.exit("the push to a pinned repository did not start a validation: %s" % result)
            state, log = run_end(result)
            if last_bad:
                bad = {"state": state, "pinned_before": before, "pinned_after": pinned_commit(args.bundle),
                       "served": get("/api/v2/dags/%s" % dag_id)[0], "says_refused": "refused" in log,
                       "says_still_serving": ("still serving %s" % before[:12]) in log, "commit": commit}
                continue
            if state != "success" or pinned_commit(args.bundle) != commit:
                sys.exit("the valid push %s was not pinned (run %s): %s" % (commit[:12], state, log[-2000:]))
            promoted.append(commit)
        while True:
            status = call("%s/api/v2/dags/%s" % (args.api, dag_id), headers={"Authorization": "Bearer " + token})[0]
            if status == 200:
                break
            if time.monotonic() - start > args.timeout:
                sys.exit("%s was not served within %ss of the push" % (dag_id, args.timeout))
            time.sleep(0.2)
        seconds.append(round(time.monotonic() - start, 2))
        dag_ids.append(dag_id)
    print(json.dumps({"seconds": seconds, "dag_ids": dag_ids, "refused": refused, "promoted": promoted, "bad": bad,
                      "phases": phases}))


if __name__ == "__main__":
    main()
