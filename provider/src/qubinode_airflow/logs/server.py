# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Airflow's log server (the task logs of this host, for the api-server) over HTTPS with this host's certificate.

Airflow's own entry point, ``airflow.utils.serve_logs.core``, serves plain HTTP only. This one serves the same
application (it checks the api-server's token for every file) on the same port, with TLS:

    python -m qubinode_airflow.logs.server --cert /etc/airflow/api.crt --key /etc/airflow/api.key
"""

from __future__ import annotations

import argparse
import ssl


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m qubinode_airflow.logs.server", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--cert", required=True, help="PEM certificate of this host")
    parser.add_argument("--key", required=True, help="PEM key of the certificate")
    parser.add_argument("--port", type=int, help="port (default: [logging] worker_log_server_port)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import uvicorn
    from airflow.configuration import conf

    # Refuse to start with files that cannot be served, before binding the port.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.cert, args.key)
    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        factory=True,
        host="",
        port=args.port or conf.getint("logging", "worker_log_server_port"),
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        log_level=conf.get("logging", "uvicorn_logging_level", fallback="info").lower(),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
