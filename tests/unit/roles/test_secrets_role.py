"""The secrets role on the real localhost: generate once, keep, never print, never replace silently."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time

import pytest
import yaml
from cryptography.fernet import Fernet

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role writes a root-owned file")

NAMES = {
    "airflow_fernet_key",
    "airflow_jwt_secret",
    "airflow_api_secret_key",
    "airflow_admin_password",
    "airflow_db_password",
    "temporal_db_password",
    "airflow_webhook_secret",
    "airflow_tls_ca_key",
    "airflow_tls_ca_cert",
}

ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: qubinode.airflow.secrets
      secrets_store_path: {path}
      secrets_record_path: {path}.record/secrets-record.yml
      secrets_tls_dir: {path}.tls
      secrets_crypto_packages: []
"""
PLAY = ROLE_PLAY + """  tasks:
    - name: Use a secret the way the roles do
      ansible.builtin.copy:
        content: "{{{{ secrets_values.airflow_fernet_key }}}}"
        dest: {path}.used
        mode: "0600"
      no_log: true
"""


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store" / "secrets.yml"


@pytest.fixture(scope="module")
def generated(run_playbook_once, tmp_path_factory):
    """One first run of PLAY (store, record and the file a secret was used in), made once per module."""
    path = tmp_path_factory.mktemp("generated") / "store" / "secrets.yml"
    result = run_playbook_once(PLAY.format(path=path))
    assert result.rc == 0, result.output
    return path.parent


@pytest.fixture
def generated_store(generated, store):
    """The test's own copy of a generated store, at the path `store`, as a first run leaves it: the tests
    that begin where a first run ends need not run it each time."""
    shutil.copytree(generated, store.parent, symlinks=True)
    return store


def load(path):
    return yaml.safe_load(path.read_text())


def test_first_run_generates_every_secret_root_only(run_playbook, store):
    result = run_playbook(PLAY.format(path=store))
    assert result.rc == 0, result.output
    assert result.changed >= 1
    secrets = load(store)
    assert set(secrets) == NAMES
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    assert len(set(secrets.values())) == len(NAMES), "every secret is distinct"
    Fernet(secrets["airflow_fernet_key"].encode())  # a usable key, not just the right length
    assert (store.parent / "secrets.yml.used").read_text() == secrets["airflow_fernet_key"]


def test_second_run_keeps_secrets_and_changes_nothing(run_playbook, generated_store):
    store = generated_store
    before = store.read_bytes()
    again = run_playbook(ROLE_PLAY.format(path=store))
    assert again.rc == 0, again.output
    assert again.changed == 0
    assert store.read_bytes() == before


def test_supplied_values_win_and_are_kept(run_playbook, generated_store):
    store = generated_store
    generated = load(store)
    supplied = {name: f"from-the-vault-{n}" for n, name in
                enumerate(["airflow_admin_password", "airflow_webhook_secret", "airflow_db_password"])}
    result = run_playbook(PLAY.format(path=store), "-e", json.dumps(supplied))
    assert result.rc == 0, result.output
    after = load(store)
    assert {k: after[k] for k in supplied} == supplied
    assert {k: v for k, v in after.items() if k not in supplied} == \
        {k: v for k, v in generated.items() if k not in supplied}
    for name in supplied:
        assert record(store)["fingerprints"][name] != fingerprints(generated)[name], name


def test_supplied_fernet_key_on_a_new_stack_is_kept(run_playbook, store):
    key = Fernet.generate_key().decode()
    result = run_playbook(PLAY.format(path=store), "-e", f"airflow_fernet_key={key}")
    assert result.rc == 0, result.output
    assert load(store)["airflow_fernet_key"] == key
    assert run_playbook(PLAY.format(path=store), "-e", f"airflow_fernet_key={key}").changed == 0


def record(store):
    return load(store.parent / "secrets.yml.record" / "secrets-record.yml")


def fingerprints(secrets):
    return {name: hashlib.sha256(f"qubinode.airflow secret\0{name}\0{value}".encode()).hexdigest()[:16]
            for name, value in secrets.items()}


def test_every_host_records_fingerprints_never_values(run_playbook, generated_store):
    store = generated_store
    path = store.parent / "secrets.yml.record" / "secrets-record.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert record(store) == {"store_host": "localhost", "fingerprints": fingerprints(load(store))}
    for value in load(store).values():
        assert value not in path.read_text()


def test_a_lost_store_stops_the_run_before_anything_changes(run_playbook, generated_store):
    """The store host rebuilt, or the file removed: a new Fernet key would make every stored connection
    unreadable. The run stops, names the fingerprint the host runs with and the fix, and changes nothing."""
    store = generated_store
    running = fingerprints(load(store))
    store.unlink()
    before = (store.parent / "secrets.yml.record" / "secrets-record.yml").read_bytes()
    result = run_playbook(PLAY.format(path=store))
    assert result.rc != 0
    for name in ("airflow_fernet_key", "airflow_jwt_secret", "airflow_webhook_secret"):
        assert f"{name}: localhost runs with the one of fingerprint {running[name]}" in result.output
    assert f"Restore {store} on localhost from a backup" in result.output
    assert "Nothing was changed" in result.output
    assert not store.exists()
    assert (store.parent / "secrets.yml.record" / "secrets-record.yml").read_bytes() == before


def test_a_moved_store_names_the_host_that_kept_it(run_playbook, generated_store):
    store = generated_store
    path = store.parent / "secrets.yml.record" / "secrets-record.yml"
    path.write_text(path.read_text().replace("store_host: localhost", "store_host: core-old"))
    store.unlink()
    result = run_playbook(PLAY.format(path=store))
    assert result.rc != 0
    assert "the hosts' records name core-old as the store host" in result.output
    assert "set secrets_store_host: core-old" in result.output


@pytest.mark.parametrize("name", ["airflow_fernet_key", "airflow_jwt_secret"])
def test_a_different_key_from_the_vault_is_refused(run_playbook, generated_store, name):
    """A Fernet key without the one it replaces, or a JWT secret while the store was lost."""
    store = generated_store
    if name == "airflow_jwt_secret":
        store.unlink()  # what the stack runs with is no longer known: replacing it would be silent
    before = store.read_bytes() if store.exists() else None
    other = Fernet.generate_key().decode() if name == "airflow_fernet_key" else "x" * 64
    result = run_playbook(PLAY.format(path=store), "-e", f"{name}={other}")
    assert result.rc != 0
    assert f"{name}: the supplied value (fingerprint {fingerprints({name: other})[name]})" in result.output
    assert other not in result.output
    assert (store.read_bytes() if store.exists() else None) == before


@pytest.mark.parametrize("path, said", [
    ("/etc/secrets.yml", "the directory of secrets_store_path ('/etc') is a directory the system shares"),
    ("/tmp/secrets.yml", "the directory of secrets_store_path ('/tmp') is a directory the system shares"),
    ("/var/lib/secrets.yml", "the directory of secrets_store_path ('/var/lib') is a directory the system shares"),
    ("relative.yml", "secrets_store_path (relative.yml) must be a normalized absolute path"),
    ("/etc/qubinode-airflow/../secrets.yml", "must be a normalized absolute path"),
])
def test_a_shared_directory_is_never_made_root_only(run_playbook, path, said):
    result = run_playbook(PLAY.replace("{path}.record/secrets-record.yml", "/nonexistent-qa/record.yml")
                          .format(path=path))
    assert result.rc != 0
    assert said in " ".join(result.output.split())
    assert stat.S_IMODE(os.stat("/etc").st_mode) == 0o755


def test_bad_fernet_key_fails_naming_the_variable_and_keeps_the_file(run_playbook, generated_store):
    store = generated_store
    before = store.read_bytes()
    result = run_playbook(PLAY.format(path=store), "-e", "airflow_fernet_key=not-a-key")
    assert result.rc != 0
    assert "airflow_fernet_key must be 44 characters" in result.output
    assert "not-a-key" not in result.output
    assert store.read_bytes() == before


def test_check_mode_writes_nothing(run_playbook, store):
    result = run_playbook(PLAY.format(path=store), "--check")
    assert result.rc == 0, result.output
    assert result.changed >= 1, "check mode tells that the file would be written"
    assert not store.exists()


def test_no_secret_in_output_even_at_vvv(run_playbook, store):
    result = run_playbook(PLAY.format(path=store), verbose=True)
    assert result.rc == 0, result.output
    second = run_playbook(PLAY.format(path=store), "--diff", verbose=True)
    assert second.rc == 0, second.output
    for name, value in load(store).items():
        assert value not in result.output, f"{name} printed on first run"
        assert value not in second.output, f"{name} printed on second run"


@pytest.mark.parametrize("record, said", [
    ("relative/record.yml", "secrets_record_path (relative/record.yml) must be a normalized absolute path"),
    ("/etc/qubinode-airflow/../record.yml", "must be a normalized absolute path"),
    ("/etc/record.yml", "the directory of secrets_record_path ('/etc') is a directory the system shares"),
])
def test_the_record_path_is_checked_like_the_store_path(run_playbook, store, record, said):
    result = run_playbook(PLAY.replace("{path}.record/secrets-record.yml", record).format(path=store))
    assert result.rc != 0
    assert said in " ".join(result.output.split())
    assert not store.exists()


# Two plays in one run, as site.yml has: the rotation happens once and both plays apply the same value.
ROTATE_ONE_PLAY = ROLE_PLAY + """      secrets_rotate: {rotate}
  tasks:
    - name: What the {label} play applies
      ansible.builtin.copy:
        content: "{{{{ secrets_values | to_json }}}}"
        dest: {path}.{label}
        mode: "0600"
      no_log: true
"""
ROTATE_PLAY = ROTATE_ONE_PLAY.replace("{label}", "first") + ROTATE_ONE_PLAY.replace("{label}", "second")


def test_rotation_replaces_the_named_secrets_once_per_run(run_playbook, generated_store):
    store = generated_store
    before = load(store)
    rotate = ["airflow_admin_password", "airflow_db_password"]
    result = run_playbook(ROTATE_PLAY.format(path=store, rotate=rotate))
    assert result.rc == 0, result.output
    after = load(store)
    for name in NAMES:
        assert (after[name] != before[name]) == (name in rotate), name
    first = yaml.safe_load((store.parent / "secrets.yml.first").read_text())
    second = yaml.safe_load((store.parent / "secrets.yml.second").read_text())
    assert first == second == after
    assert load(store.parent / "secrets.yml.previous") == before, "the store as it was stays until the rotation ends"
    assert stat.S_IMODE((store.parent / "secrets.yml.previous").stat().st_mode) == 0o600
    record = load(store.parent / "secrets.yml.record" / "secrets-record.yml")
    assert not any(after[name] in str(record) for name in NAMES)
    assert run_playbook(PLAY.format(path=store)).changed == 0
    # The end of the rotation removes the copy of the store, which a converge before it keeps.
    assert (store.parent / "secrets.yml.previous").exists()
    ended = run_playbook(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: qubinode.airflow.secrets
        tasks_from: finish.yml
      vars:
        secrets_store_path: {store}
""")
    assert ended.rc == 0, ended.output
    assert not (store.parent / "secrets.yml.previous").exists()
    assert load(store) == after


def test_rotation_in_check_mode_writes_nothing(run_playbook, generated_store):
    store = generated_store
    before = store.read_bytes()
    rotate = ["airflow_webhook_secret", "airflow_fernet_key", "airflow_jwt_secret"]
    result = run_playbook(ROTATE_PLAY.format(path=store, rotate=rotate), "--check")
    assert result.rc == 0, result.output
    assert result.changed >= 1
    assert store.read_bytes() == before
    assert not (store.parent / "secrets.yml.previous").exists()


def test_a_supplied_secret_is_rotated_where_it_is_supplied(run_playbook, generated_store):
    store = generated_store
    before = store.read_bytes()
    result = run_playbook(ROTATE_PLAY.format(path=store, rotate=["airflow_admin_password"]),
                          "-e", "airflow_admin_password=from-the-vault-42")
    assert result.rc != 0
    assert "airflow_admin_password: supplied as a variable" in result.output
    assert store.read_bytes() == before


@pytest.mark.parametrize("name", ["airflow_api_secret_keys", "no_such_secret"])
def test_only_the_rotatable_secrets_are_accepted(run_playbook, generated_store, name):
    store = generated_store
    before = store.read_bytes()
    result = run_playbook(ROTATE_PLAY.format(path=store, rotate=[name]))
    assert result.rc != 0
    assert "secrets_rotate" in result.output and name in result.output
    assert store.read_bytes() == before


# The airflow role runs the commit entry point once the database's data uses the new key.
COMMIT_PLAY = ROLE_PLAY + """  tasks:
    - name: The data is re-encrypted, the rotation ends
      ansible.builtin.include_role:
        name: qubinode.airflow.secrets
        tasks_from: commit.yml
      vars:
        secrets_store_path: {path}
    - name: What the services run with afterwards
      ansible.builtin.copy:
        content: "{{{{ secrets_values | to_json }}}}"
        dest: {path}.after
        mode: "0600"
      no_log: true
"""


def test_a_fernet_rotation_keeps_the_old_key_until_the_data_is_re_encrypted(run_playbook, generated_store):
    store = generated_store
    old = load(store)["airflow_fernet_key"]
    result = run_playbook(ROTATE_PLAY.format(path=store, rotate=["airflow_fernet_key"]))
    assert result.rc == 0, result.output
    during = load(store)
    new = during["airflow_fernet_key"]
    assert new != old and Fernet(new.encode())
    assert during["airflow_fernet_key_previous"] == old
    applied = yaml.safe_load((store.parent / "secrets.yml.second").read_text())
    assert (applied["airflow_fernet_key"], applied["airflow_fernet_key_previous"]) == (new, old)
    record = load(store.parent / "secrets.yml.record" / "secrets-record.yml")
    assert record["fingerprints"]["airflow_fernet_key"] == fingerprints({"airflow_fernet_key": new})["airflow_fernet_key"]
    assert old not in result.output and new not in result.output
    # Interrupted before the data was re-encrypted: the next run goes on with both keys.
    again = run_playbook(ROLE_PLAY.format(path=store))
    assert again.rc == 0, again.output
    assert again.changed == 0
    assert load(store) == during
    ended = run_playbook(COMMIT_PLAY.format(path=store))
    assert ended.rc == 0, ended.output
    after = load(store)
    assert "airflow_fernet_key_previous" not in after and after["airflow_fernet_key"] == new
    assert "airflow_fernet_key_previous" not in yaml.safe_load((store.parent / "secrets.yml.after").read_text())
    assert run_playbook(ROLE_PLAY.format(path=store)).changed == 0


def test_a_supplied_fernet_key_rotates_as_new_comma_old(run_playbook, generated_store):
    store = generated_store
    old = load(store)["airflow_fernet_key"]
    new = Fernet.generate_key().decode()
    result = run_playbook(COMMIT_PLAY.format(path=store), "-e", f"airflow_fernet_key={new},{old}")
    assert result.rc == 0, result.output
    applied = yaml.safe_load((store.parent / "secrets.yml.after").read_text())
    assert (applied["airflow_fernet_key"], applied["airflow_fernet_key_previous"]) == (new, old), \
        "keys the vault lists stay for as long as it lists them"
    assert old not in result.output and new not in result.output
    # The vault drops the old key once the converge has re-encrypted the data.
    alone = run_playbook(PLAY.format(path=store), "-e", f"airflow_fernet_key={new}")
    assert alone.rc == 0, alone.output
    assert load(store)["airflow_fernet_key"] == new and "airflow_fernet_key_previous" not in load(store)


def test_a_new_key_list_without_the_running_key_is_refused(run_playbook, generated_store):
    store = generated_store
    before = store.read_bytes()
    new, other = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    result = run_playbook(PLAY.format(path=store), "-e", f"airflow_fernet_key={new},{other}")
    assert result.rc != 0
    assert "airflow_fernet_key: the supplied value" in result.output
    assert 'supply the new key followed by the one the stack runs with (\\"new,old\\")' in result.output \
        or "followed by the one the stack runs with" in result.output
    assert new not in result.output and other not in result.output
    assert store.read_bytes() == before


def test_every_key_of_a_fernet_list_is_checked(run_playbook, generated_store):
    store = generated_store
    before = store.read_bytes()
    result = run_playbook(PLAY.format(path=store), "-e", f"airflow_fernet_key={Fernet.generate_key().decode()},not-a-key")
    assert result.rc != 0
    assert "airflow_fernet_key must be 44 characters" in result.output and "not-a-key" not in result.output
    assert store.read_bytes() == before


def test_a_jwt_rotation_keeps_the_old_secret_for_the_window(run_playbook, generated_store):
    store = generated_store
    old = load(store)["airflow_jwt_secret"]
    started = int(time.time())
    result = run_playbook(ROTATE_PLAY.format(path=store, rotate=["airflow_jwt_secret"]), verbose=True)
    assert result.rc == 0, result.output
    during = load(store)
    new = during["airflow_jwt_secret"]
    assert new != old and during["airflow_jwt_secret_previous"] == [old]
    assert started <= during["airflow_jwt_secret_rotated"] <= time.time()
    applied = yaml.safe_load((store.parent / "secrets.yml.second").read_text())
    assert (applied["airflow_jwt_secret"], applied["airflow_jwt_secret_previous"]) == (new, [old])
    assert record(store)["fingerprints"]["airflow_jwt_secret"] == fingerprints({"airflow_jwt_secret": new})["airflow_jwt_secret"]
    assert old not in result.output and new not in result.output
    # Within the window a converge keeps both and changes nothing.
    again = run_playbook(ROLE_PLAY.format(path=store))
    assert (again.rc, again.changed) == (0, 0), again.output
    assert load(store) == during
    # The window has passed: check mode says so and changes nothing, the converge drops the old secret.
    during["airflow_jwt_secret_rotated"] -= 86400
    store.write_text(yaml.safe_dump(during))
    checked = run_playbook(ROLE_PLAY.format(path=store), "--check")
    assert checked.rc == 0 and checked.changed >= 1, checked.output
    assert load(store) == during
    ended = run_playbook(ROLE_PLAY.format(path=store))
    assert ended.rc == 0, ended.output
    after = load(store)
    assert after["airflow_jwt_secret"] == new
    assert "airflow_jwt_secret_previous" not in after and "airflow_jwt_secret_rotated" not in after
    assert run_playbook(ROLE_PLAY.format(path=store)).changed == 0


def test_a_changed_supplied_jwt_secret_opens_a_window(run_playbook, store):
    assert run_playbook(PLAY.format(path=store), "-e", "airflow_jwt_secret=" + "a" * 64).rc == 0
    result = run_playbook(PLAY.format(path=store), "-e", "airflow_jwt_secret=" + "b" * 64)
    assert result.rc == 0, result.output
    assert load(store)["airflow_jwt_secret_previous"] == ["a" * 64]
    assert "a" * 64 not in result.output and "b" * 64 not in result.output
    leaked = run_playbook(PLAY.format(path=store), "-e", "airflow_jwt_secret=" + "c" * 64, "-e", "secrets_jwt_window=0")
    assert leaked.rc == 0, leaked.output
    assert load(store)["airflow_jwt_secret"] == "c" * 64 and "airflow_jwt_secret_previous" not in load(store)


def test_hosts_of_a_later_play_may_still_run_with_what_the_run_replaced(run_playbook, generated_store):
    """site.yml converges the core hosts first: the workers' play still finds their records of the old
    secrets, although the Fernet rotation has completed and the JWT secret had no window."""
    store = generated_store
    path = store.parent / "secrets.yml.record" / "secrets-record.yml"
    old_record = path.read_text()
    rotate = ["airflow_fernet_key", "airflow_jwt_secret"]
    first = ROLE_PLAY + f"""      secrets_rotate: {rotate}
  tasks:
    - ansible.builtin.include_role:
        name: qubinode.airflow.secrets
        tasks_from: commit.yml
      vars:
        secrets_store_path: {store}
    - name: A host the run has not reached yet
      ansible.builtin.copy:
        content: {json.dumps(old_record)}
        dest: {path}
        mode: "0600"
"""
    second = ROLE_PLAY.format(path=store) + f"""      secrets_rotate: {rotate}
  tasks:
    - name: What the second play applies
      ansible.builtin.copy:
        content: "{{{{ secrets_values | to_json }}}}"
        dest: {store}.second
        mode: "0600"
      no_log: true
"""
    old_jwt = load(store)["airflow_jwt_secret"]
    result = run_playbook(first.format(path=store) + second, "-e", "secrets_jwt_window=0")
    assert result.rc == 0, result.output
    after = load(store)
    assert "airflow_fernet_key_previous" not in after
    # A leaked JWT secret (secrets_jwt_window=0) rotates with no window.
    assert after["airflow_jwt_secret"] != old_jwt and "airflow_jwt_secret_previous" not in after
    assert "airflow_jwt_secret_previous" not in yaml.safe_load((store.parent / "secrets.yml.second").read_text())
    # A later run is not that run: the host must have converged with the new secrets by then.
    path.write_text(old_record)
    late = run_playbook(ROLE_PLAY.format(path=store), "-e", "secrets_jwt_window=0")
    assert late.rc != 0 and "airflow_fernet_key: the stored value" in late.output


def _tls(store):
    return store.parent / "secrets.yml.tls"


def _cert(path):
    from cryptography import x509
    return x509.load_pem_x509_certificate(path.read_bytes())


def _signed_by(cert, ca):
    from cryptography.hazmat.primitives.asymmetric import ec
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    return cert.issuer == ca.subject


def test_the_host_has_a_key_of_its_own_and_a_certificate_of_the_stack_ca(generated_store):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    secrets = load(generated_store)
    tls = _tls(generated_store)
    ca = x509.load_pem_x509_certificate(secrets["airflow_tls_ca_cert"].encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (tls / "ca.crt").read_text() == secrets["airflow_tls_ca_cert"]
    cert = _cert(tls / "host.crt")
    assert _signed_by(cert, ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(a) for a in names.get_values_for_type(x509.IPAddress)]
    key = serialization.load_pem_private_key((tls / "host.key").read_bytes(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert stat.S_IMODE((tls / "host.key").stat().st_mode) == 0o600
    # The CA's key stays in the store: no file of the host's holds it.
    ca_key = secrets["airflow_tls_ca_key"]
    assert all(ca_key not in f.read_text() for f in tls.iterdir())


def test_a_certificate_due_for_renewal_is_signed_again_once(run_playbook, generated_store):
    tls = _tls(generated_store)
    before = _cert(tls / "host.crt")
    key = (tls / "host.key").read_bytes()
    due = run_playbook(ROLE_PLAY.format(path=generated_store), "-e", "secrets_tls_renew_days=400")
    assert due.rc == 0, due.output
    assert due.changed == 1, "only the certificate is written"
    renewed = _cert(tls / "host.crt")
    assert renewed.serial_number != before.serial_number
    assert (tls / "host.key").read_bytes() == key, "a renewal keeps the host's key"
    again = run_playbook(ROLE_PLAY.format(path=generated_store))
    assert again.rc == 0, again.output
    assert again.changed == 0
    assert _cert(tls / "host.crt").serial_number == renewed.serial_number


def test_half_a_site_ca_is_refused_before_anything_changes(run_playbook, store):
    result = run_playbook(PLAY.format(path=store), "-e", "airflow_tls_ca_cert=not-alone")
    assert result.rc != 0
    assert "airflow_tls_ca_cert and airflow_tls_ca_key come together" in result.output
    assert not store.exists()
    assert not _tls(store).exists()


def test_the_site_ca_signs_the_host_certificate(run_playbook, store):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qa site CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(key, hashes.SHA256()))
    supplied = {
        "airflow_tls_ca_cert": ca.public_bytes(serialization.Encoding.PEM).decode(),
        "airflow_tls_ca_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode(),
    }
    result = run_playbook(PLAY.format(path=store), "-e", json.dumps(supplied))
    assert result.rc == 0, result.output
    assert _signed_by(_cert(_tls(store) / "host.crt"), ca)
    assert supplied["airflow_tls_ca_key"].strip().splitlines()[1] not in result.output


def _site_pki(names=("localhost",), days=90):
    """A site CA and a certificate of this host it signed, with its key: PEM strings (ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem(obj):
        if hasattr(obj, "private_bytes"):
            return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return obj.public_bytes(serialization.Encoding.PEM).decode()

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, host_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qa site issuing CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "host")]))
            .issuer_name(ca_name).public_key(host_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(ca_key, hashes.SHA256()))
    return pem(ca), pem(cert), pem(host_key)


def test_a_site_certificate_of_the_host_is_served_and_its_ca_trusted(run_playbook, generated_store):
    ca, cert, key = _site_pki()
    supplied = json.dumps({"secrets_tls_cert": cert, "secrets_tls_key": key, "secrets_tls_site_ca": ca})
    result = run_playbook(ROLE_PLAY.format(path=generated_store), "-e", supplied, "-vvv")
    assert result.rc == 0, result.output
    tls = _tls(generated_store)
    assert (tls / "host.crt").read_text().strip() == cert.strip()
    assert (tls / "host.key").read_text().strip() == key.strip()
    assert stat.S_IMODE((tls / "host.key").stat().st_mode) == 0o600
    trusted = (tls / "ca.crt").read_text()
    assert ca.strip() in trusted and load(generated_store)["airflow_tls_ca_cert"].strip() in trusted
    assert key.strip().splitlines()[1] not in result.output
    again = run_playbook(ROLE_PLAY.format(path=generated_store), "-e", supplied)
    assert again.rc == 0 and again.changed == 0, again.output


@pytest.mark.parametrize("case, said", [
    ("other key", "its key (secrets_tls_key) is not the key of the certificate"),
    ("other names", "it does not name localhost"),
    ("no site CA", "secrets_tls_site_ca must hold the site's CA certificates"),
    ("other CA", "is none of secrets_tls_site_ca"),
    ("expired", "it is not valid now"),
])
def test_a_site_certificate_that_does_not_fit_is_refused_before_anything_changes(run_playbook, store, case, said):
    ca, cert, key = _site_pki(names=("elsewhere.example.com",) if case == "other names" else ("localhost",),
                              days=-1 if case == "expired" else 90)
    supplied = {"secrets_tls_cert": cert, "secrets_tls_key": key, "secrets_tls_site_ca": ca}
    if case == "other key":
        supplied["secrets_tls_key"] = _site_pki()[2]
    elif case == "no site CA":
        supplied["secrets_tls_site_ca"] = ""
    elif case == "other CA":
        supplied["secrets_tls_site_ca"] = _other_ca()
    result = run_playbook(ROLE_PLAY.format(path=store), "-e", json.dumps(supplied))
    assert result.rc != 0 and said in result.output, result.output
    assert "Nothing was changed" in result.output
    assert not store.exists() and not _tls(store).exists()
    assert supplied["secrets_tls_key"].strip().splitlines()[1] not in result.output


def _other_ca():
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another site CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
