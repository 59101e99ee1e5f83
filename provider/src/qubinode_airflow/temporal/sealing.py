# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Task attempts travel sealed: Temporal stores and shows only ciphertext.

An attempt carries Airflow's workload, including the token that lets its task process talk to the
Execution API. Temporal keeps every workflow input in its database and shows it in its UI, so the
executor and the workers encrypt their payloads (AES-256-GCM) with a key derived from Airflow's JWT
secret, which signs those very tokens. Anyone who can read Temporal but not that secret sees no token.

The keys come from the keyring file named by `[qubinode_temporal] sealing_keys` (a JSON Web Key Set of
`oct` keys, the one the roles write on every host), or else from `[api_auth] jwt_secret`. The first key
of the keyring seals; every key opens. During a rotation of the JWT secret the keyring holds the new
secret and the old one, so attempts sealed before the rotation still open; a rewritten keyring is read
again without a restart, so a worker keeps its running attempts across a rotation.

A payload is sealed for one workflow: its id is part of the associated data, so a sealed attempt copied
into another workflow does not open. The worker opens nothing unsealed; an attempt it cannot open fails
its workflow at once (the workflow sees `refused`), instead of a workflow task retried for ever.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from qubinode_airflow.temporal.codec import TaskAttempt

ENCODING = b"binary/qubinode-aes256gcm"
# Which key sealed a payload (a digest of the derived key, never the key): payloads sealed before
# this was recorded carry none and are tried with every key.
KEY_ID = "qubinode-key"
# Set on a payload sealed for one workflow (its id in the associated data).
BOUND = "qubinode-bound"
_INFO = b"qubinode-airflow temporal payloads v1"
_ID_INFO = b"qubinode-airflow temporal key id v1"
_NONCE = 12

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Key:
    id: bytes
    aead: object

    @classmethod
    def derive(cls, secret: bytes) -> _Key:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
        return cls(id=hashlib.sha256(_ID_INFO + key).hexdigest()[:16].encode("ascii"), aead=AESGCM(key))


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


class SealedPayloads(PayloadCodec, WithSerializationContext):
    """Seals with the first of `secrets`, opens with any of them. `strict` (the worker): unsealed payloads
    are refused, and a workflow's input that does not open becomes a refused attempt."""

    source = "[api_auth] jwt_secret"
    workflow_id = None
    opens_input = False

    def __init__(self, *secrets: str | bytes, strict: bool = False):
        self.strict = strict
        self._use(secrets)

    def with_context(self, context: SerializationContext) -> SealedPayloads:
        """The same keys, sealing for (and opening only what was sealed for) the context's workflow."""
        bound = copy.copy(self)
        bound.workflow_id = getattr(context, "workflow_id", None)
        bound.opens_input = isinstance(context, WorkflowSerializationContext)
        return bound

    def _associated(self, bound: bool) -> bytes:
        return ENCODING + b"\0" + self.workflow_id.encode("utf-8") if bound else ENCODING

    def _use(self, secrets: Sequence[str | bytes]) -> None:
        if not secrets or not all(secrets):
            raise ValueError("%s is empty: the Temporal engine seals task attempts with a key derived from the "
                             "JWT secret; set it (the qubinode.airflow roles do) on the scheduler and every worker"
                             % self.source)
        keys = [_Key.derive(_as_bytes(secret)) for secret in secrets]
        self._keys = keys
        self._by_id = {key.id: key for key in keys}

    def refresh(self) -> None:
        """Read the keys again if their source changed (fixed keys never do): one stat per call."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.refresh()
        key = self._keys[0]
        bound = self.workflow_id is not None
        metadata = {"encoding": ENCODING, KEY_ID: key.id, **({BOUND: b"workflow"} if bound else {})}
        sealed = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            data = nonce + key.aead.encrypt(nonce, payload.SerializeToString(), self._associated(bound))
            sealed.append(Payload(metadata=metadata, data=data))
        return sealed

    def _candidates(self, payload: Payload) -> list[_Key]:
        key_id = payload.metadata.get(KEY_ID)
        if key_id is None:
            return self._keys
        return [self._by_id[key_id]] if key_id in self._by_id else []

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        from cryptography.exceptions import InvalidTag

        self.refresh()  # a keyring rewritten by a rotation, or by the end of its window
        opened = []
        for payload in payloads:
            try:
                opened.append(self._open(payload, InvalidTag))
            except ValueError as e:
                if not (self.strict and self.opens_input):
                    raise
                # A workflow's input the worker cannot open: the workflow gets a refused attempt and fails
                # at once (a decoding error would fail its workflow task, which Temporal retries for ever).
                refused = TaskAttempt(workload="", summary="", heartbeat_timeout=1, task_timeout=1, max_attempts=1,
                                      refused=str(e))
                opened.append(Payload(metadata={"encoding": b"json/plain"},
                                      data=json.dumps(dataclasses.asdict(refused)).encode("utf-8")))
        return opened

    def _open(self, payload: Payload, invalid) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self.strict:
                raise ValueError("an unsealed payload came for workflow %s: this worker runs only task attempts "
                                 "sealed by the scheduler" % self.workflow_id)
            return payload  # not sealed by us (e.g. Temporal's own failure details)
        bound = BOUND in payload.metadata
        if self.workflow_id is not None and not bound:
            raise ValueError("a sealed payload of workflow %s was not sealed for that workflow (sealed by an "
                             "older version, or copied from another workflow)" % self.workflow_id)
        if bound and self.workflow_id is None:
            raise ValueError("a payload sealed for one workflow cannot be opened without its workflow id")
        for key in self._candidates(payload):
            try:
                plain = key.aead.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], self._associated(bound))
            except invalid:
                continue
            inner = Payload()
            inner.ParseFromString(plain)
            return inner
        raise ValueError("a sealed task attempt does not open with the keys of %s on this host for workflow %s: "
                         "the scheduler and every worker need the same JWT secret, an attempt sealed before a "
                         "rotation needs the previous one until it ends, and an attempt opens only in the "
                         "workflow it was sealed for" % (self.source, self.workflow_id))


class KeyringPayloads(SealedPayloads):
    """The keys of a keyring file (a JSON Web Key Set of `oct` keys), read again when the file changes."""

    def __init__(self, path: str, strict: bool = False):
        self.strict = strict
        self.path = path
        self.source = "the keyring %s ([qubinode_temporal] sealing_keys)" % path
        self._stamp = None
        self._load(self._stat())

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise ValueError("%s cannot be read: %s" % (self.source, e.strerror)) from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self, stamp) -> None:
        try:
            with open(self.path, "rb") as f:
                keyset = json.load(f)
            secrets = [base64.urlsafe_b64decode(key["k"] + "=" * (-len(key["k"]) % 4))
                       for key in keyset["keys"] if key.get("kty") == "oct"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError("%s is not a JSON Web Key Set of oct keys: %s" % (self.source, e)) from None
        self._use(secrets)
        self._stamp = stamp

    def refresh(self) -> None:
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                self._load(stamp)
                log.info("read the keyring %s again: %d keys", self.path, len(self._keys))
        except ValueError as e:
            # Keep sealing and opening with the keys already read: a half-written file is not a reason
            # to stop running attempts.
            log.warning("%s; keeping the %d keys read before", e, len(self._keys))


def data_converter(secret: str | None = None, keyring: str | None = None, strict: bool = False) -> DataConverter:
    codec = KeyringPayloads(keyring, strict=strict) if keyring else SealedPayloads(secret or "", strict=strict)
    return dataclasses.replace(DataConverter.default, payload_codec=codec)


def data_converter_from_airflow(strict: bool = False) -> DataConverter:
    """`strict` for the worker: see SealedPayloads."""
    from airflow.configuration import conf

    keyring = conf.get("qubinode_temporal", "sealing_keys", fallback="")
    if keyring:
        return data_converter(keyring=keyring, strict=strict)
    return data_converter(conf.get("api_auth", "jwt_secret", fallback=""), strict=strict)
