# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Is the Temporal frontend reachable from this host, and does the namespace exist?

    python -m qubinode_airflow.temporal.check ADDRESS NAMESPACE [TLS_CA [TLS_CERT TLS_KEY]]

Prints one JSON line {"ok": bool, "message": str}; exit 0 when ok. The airflow_engine
module runs it with the Airflow virtualenv before it switches a host to Temporal.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys


async def check(address: str, namespace: str, timeout: float = 10.0, ca: str = "", cert: str = "",
                key: str = "") -> tuple[bool, str]:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    from qubinode_airflow.temporal.tls import tls_config

    try:
        tls = tls_config(address, ca, cert, key)
    except OSError as e:
        return False, "cannot read this host's Temporal TLS files (%s): run the airflow role on this host" % e
    try:
        client = await asyncio.wait_for(Client.connect(address, namespace=namespace, tls=tls), timeout)
    except Exception as e:
        return False, ("Temporal at %s is not reachable from this host (%s): check temporal_address and that the "
                       "qubinode.airflow.temporal role has run" % (address, str(e).splitlines()[0] if str(e) else type(e).__name__))
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace), timeout=None)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return False, ("namespace %r does not exist on Temporal at %s: create it (the qubinode.airflow.temporal "
                           "role does, see temporal_namespace) or set temporal_namespace" % (namespace, address))
        return False, "Temporal at %s answered %s: %s" % (address, e.status.name, e.message)
    return True, "namespace %r on %s is ready" % (namespace, address)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3, 5):
        print(__doc__, file=sys.stderr)
        return 2
    ok, message = asyncio.run(check(args[0], args[1], 10.0, *args[2:]))
    print(json.dumps({"ok": ok, "message": message}))
    return 0 if ok else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's Rust runtime still has threads at this point, and finalizing the interpreter under them
    # can crash (seen: SIGSEGV, rc 139, on a loaded worker host). The answer is out; nothing is left to
    # clean up.
    os._exit(code)
