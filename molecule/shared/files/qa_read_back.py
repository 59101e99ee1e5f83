"""Read connections, variables and pools back with the official apache-airflow-client.

Usage: qa_read_back.py KIND ID [ID ...]; the API password comes from the stack's root-only secrets
file on this host (never through Ansible, whose -vvv output would show a task environment).
Prints {id: object or null} as JSON: an independent reader of what the modules wrote.
"""

import json
import os
import ssl
import sys
import urllib.request

from airflow_client import client
from airflow_client.client.exceptions import NotFoundException

URL = os.environ.get("AIRFLOW_API_URL", "https://127.0.0.1:8080")
# The stack's CA, which the api-server's certificate is checked against.
CA = os.environ.get("QA_CA", "/etc/airflow/ca.crt")
SECRETS = "/etc/qubinode-airflow/secrets.yml"


def password():
    with open(SECRETS) as f:
        for line in f:
            if line.startswith("airflow_admin_password:"):
                return line.split(":", 1)[1].strip().strip("'\"")
    raise SystemExit("no airflow_admin_password in %s" % SECRETS)


def token():
    body = json.dumps({"username": "admin", "password": password()}).encode()
    req = urllib.request.Request(URL + "/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30, context=ssl.create_default_context(cafile=CA)) as resp:
        return json.load(resp)["access_token"]


def main(kind, ids):
    conf = client.Configuration(host=URL, access_token=token())
    conf.ssl_ca_cert = CA
    out = {}
    with client.ApiClient(conf) as api:
        getter = {
            "connections": client.ConnectionApi(api).get_connection,
            "variables": client.VariableApi(api).get_variable,
            "pools": client.PoolApi(api).get_pool,
        }[kind]
        for ident in ids:
            try:
                out[ident] = getter(ident).to_dict()
            except NotFoundException:
                out[ident] = None
    json.dump(out, sys.stdout, default=str, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
