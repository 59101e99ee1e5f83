"""The keyring the roles write during a rotation of the JWT secret, read by Airflow's own token code:
tokens of the new and of the old secret verify by their kid, others do not."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest
from airflow.api_fastapi.auth.tokens import JWKS, JWTGenerator, JWTValidator


def kid(secret):
    return hashlib.sha256(f"qubinode.airflow secret\0airflow_jwt_secret\0{secret}".encode()).hexdigest()[:16]


def keyring(path, *secrets):
    # The format of the airflow role's jwt-keys.json.j2.
    keys = [{"kty": "oct", "alg": "HS512", "kid": kid(secret),
             "k": base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")} for secret in secrets]
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


def token(secret, key_id=None):
    return JWTGenerator(secret_key=secret, kid=key_id or kid(secret), valid_for=60, audience="urn:test", issuer=None,
                        algorithm="HS512").generate({"sub": "admin"})


def validator(url):
    return JWTValidator(jwks=JWKS(url=url), audience="urn:test", issuer=None, algorithm=["GUESS"], leeway=0)


def test_tokens_of_the_new_and_the_old_secret_verify_during_the_window(tmp_path):
    new, old = "n" * 64, "old/secret+with=base64-unsafe?chars" * 2
    during = validator(keyring(tmp_path / "keys.json", new, old))
    assert during.validated_claims(token(new))["sub"] == "admin"
    assert during.validated_claims(token(old))["sub"] == "admin"


def test_after_the_window_a_token_of_the_old_secret_is_refused(tmp_path):
    new, old = "n" * 64, "o" * 64
    after = validator(keyring(tmp_path / "keys.json", new))
    assert after.validated_claims(token(new))["sub"] == "admin"
    with pytest.raises(jwt.InvalidTokenError):
        after.validated_claims(token(old))


def test_a_token_that_names_a_kid_of_the_keyring_but_another_secret_is_refused(tmp_path):
    new = "n" * 64
    during = validator(keyring(tmp_path / "keys.json", new))
    with pytest.raises(jwt.InvalidSignatureError):
        during.validated_claims(token("forged" * 11, key_id=kid(new)))
