# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Task attempts travel sealed: Temporal stores and shows only ciphertext.

An attempt carries Airflow's workload, including the token that lets its task process talk to the
Execution API. Temporal keeps every workflow input in its database and shows it in its UI, so the
executor and the workers encrypt their payloads (AES-256-GCM) with a key derived from Airflow's
`[api_auth] jwt_secret`, which every host that runs the executor or a worker already holds and
which signs those very tokens. Anyone who can read Temporal but not that secret sees no token.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/qubinode-aes256gcm"
_INFO = b"qubinode-airflow temporal payloads v1"
_NONCE = 12


class SealedPayloads(PayloadCodec):
    def __init__(self, secret: str):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        if not secret:
            raise ValueError("[api_auth] jwt_secret is empty: the Temporal engine seals task attempts with a key "
                             "derived from it; set it (the qubinode.airflow roles do) on the scheduler and every worker")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode("utf-8"))
        self._aead = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        sealed = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            data = nonce + self._aead.encrypt(nonce, payload.SerializeToString(), ENCODING)
            sealed.append(Payload(metadata={"encoding": ENCODING}, data=data))
        return sealed

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        from cryptography.exceptions import InvalidTag

        opened = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                opened.append(payload)  # not sealed by us (e.g. Temporal's own failure details)
                continue
            try:
                plain = self._aead.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], ENCODING)
            except InvalidTag:
                raise ValueError("a sealed task attempt does not open with this host's [api_auth] jwt_secret: every "
                                 "scheduler and worker needs the same secret") from None
            inner = Payload()
            inner.ParseFromString(plain)
            opened.append(inner)
        return opened


def data_converter(secret: str) -> DataConverter:
    return dataclasses.replace(DataConverter.default, payload_codec=SealedPayloads(secret))


def data_converter_from_airflow() -> DataConverter:
    from airflow.configuration import conf

    return data_converter(conf.get("api_auth", "jwt_secret", fallback=""))
