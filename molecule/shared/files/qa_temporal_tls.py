"""Connect to a Temporal frontend as four clients and print what each got, as one JSON line.

Usage: qa_temporal_tls.py ADDRESS NAMESPACE CA CERT KEY OTHER_CA. The clients: with the stack's CA and this
host's certificate ("stack"), with the CA but no certificate ("no_cert"), trusting another CA ("other_ca"),
and without TLS ("plain"). Each entry is "ok" or the error's first line.
"""

import asyncio
import json
import sys

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, TLSConfig


def read(path):
    with open(path, "rb") as f:
        return f.read()


async def attempt(address, namespace, tls):
    try:
        client = await asyncio.wait_for(Client.connect(address, namespace=namespace, tls=tls), 20)
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace), timeout=None)
        return "ok"
    except Exception as e:  # the SDK raises RuntimeError for transport failures
        return ("%s: %s" % (type(e).__name__, e)).splitlines()[0][:300]


async def main(address, namespace, ca, cert, key, other_ca):
    host = address.rsplit(":", 1)[0]
    clients = {
        "stack": TLSConfig(server_root_ca_cert=read(ca), domain=host, client_cert=read(cert), client_private_key=read(key)),
        "no_cert": TLSConfig(server_root_ca_cert=read(ca), domain=host),
        "other_ca": TLSConfig(server_root_ca_cert=read(other_ca), domain=host, client_cert=read(cert),
                              client_private_key=read(key)),
        "plain": False,
    }
    out = {}
    for name, tls in clients.items():
        out[name] = await attempt(address, namespace, tls)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
