"""redact_secrets: no secret in a message that quotes a failed command's output."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qubinode.airflow.plugins.filter.redact_secrets import redact_secrets

SECRETS = {
    "airflow_db_password": "p4ss/w+rd:with@odd%chars",
    "airflow_fernet_key": "k" * 43 + "=",
    "airflow_fernet_key_previous": "a" * 43 + "=," + "b" * 43 + "=",
    "airflow_jwt_secret_previous": ["j" * 64],
    "short": "abc",
}


def test_a_database_url_in_a_traceback_loses_its_password():
    url = "postgresql+psycopg2://airflow:%s@db:5432/airflow" % quote(SECRETS["airflow_db_password"], safe="")
    said = redact_secrets("OperationalError: could not connect to %s (password %s)"
                          % (url, SECRETS["airflow_db_password"]), SECRETS)
    assert said == ("OperationalError: could not connect to postgresql+psycopg2://airflow:<airflow_db_password>"
                    "@db:5432/airflow (password <airflow_db_password>)")


@pytest.mark.parametrize("value", ["k" * 43 + "=", "a" * 43 + "=", "b" * 43 + "=", "j" * 64])
def test_every_key_of_a_rotation_and_of_a_list_is_replaced(value):
    said = redact_secrets("before %s after" % value, SECRETS)
    assert value not in said
    assert said.startswith("before <airflow_") and said.endswith("> after")


def test_short_values_and_other_text_are_left_alone():
    assert redact_secrets("abc def: nothing secret", SECRETS) == "abc def: nothing secret"


def test_the_secrets_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="redact_secrets expects the secrets as a dict"):
        redact_secrets("x", ["p4ss"])
