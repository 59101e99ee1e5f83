# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""How this host's Temporal clients (the executor, the workers, the engine check) connect: plain gRPC to a
frontend on loopback, or TLS with the stack's CA and this host's certificate (the frontend requires one)."""

from __future__ import annotations


def tls_config(address: str, ca: str = "", cert: str = "", key: str = ""):
    """The `tls` argument of temporalio's Client.connect: False without a CA, else a TLSConfig that checks the
    frontend's certificate against the CA, for the host name of the address, and presents the client's."""
    if not ca:
        return False
    from temporalio.client import TLSConfig

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    host = address.rsplit(":", 1)[0].strip("[]")
    return TLSConfig(server_root_ca_cert=read(ca), domain=host,
                     client_cert=read(cert) if cert else None, client_private_key=read(key) if key else None)


def settings_tls(settings):
    """tls_config of a Settings."""
    return tls_config(settings.address, settings.tls_ca, settings.tls_cert, settings.tls_key)
