"""The backup role's command, run for real on this machine: the set's layout, the secrets store encrypted
to a certificate with openssl, SQLite's online backup, pruning and the status file, and the refusals
(a linked backup directory, a store that is not root's)."""

import datetime
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

COMMAND = Path(__file__).resolve().parents[3] / "roles" / "backup" / "files" / "qubinode_airflow_backup.py"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the command runs as root and checks root ownership")


def load():
    loader = importlib.machinery.SourceFileLoader("qubinode_airflow_backup", str(COMMAND))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-backup",
                    "-keyout", d / "key.pem", "-out", d / "cert.pem"], check=True, capture_output=True)
    return d


def config(tmp_path, site, **extra):
    store = tmp_path / "secrets.yml"
    store.write_text("airflow_fernet_key: a-fernet-key-value\nairflow_admin_password: an-admin-password\n")
    store.chmod(0o600)
    cfg = {"dir": str(tmp_path / "backups"), "keep_daily": 2, "keep_weekly": 1,
           "status_file": str(tmp_path / "status.json"), "postgresql": None, "sqlite": None,
           "secrets": {"path": str(store), "certificate": str(site / "cert.pem")}}
    cfg.update(extra)
    path = tmp_path / "backup.json"
    path.write_text(json.dumps(cfg))
    return path, cfg


def run(path):
    return subprocess.run(["python3", "-I", str(COMMAND), str(path)], capture_output=True, text=True, check=False)


def test_a_set_holds_the_store_encrypted_to_the_certificate_and_opens_with_its_key(tmp_path, site):
    path, cfg = config(tmp_path, site)
    proc = run(path)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(Path(cfg["status_file"]).read_text())
    assert status["result"] == "success" and status["last_success"] == status["ended"]
    assert oct(Path(cfg["status_file"]).stat().st_mode & 0o777) == "0o644"
    base = Path(cfg["dir"])
    assert oct(base.stat().st_mode & 0o777) == "0o700"
    sealed = base / status["set"] / "secrets.yml.cms"
    assert b"a-fernet-key-value" not in sealed.read_bytes()
    manifest = json.loads((base / status["set"] / "manifest.json").read_text())
    assert manifest["contents"] == {"secrets": "encrypted"}
    assert set(manifest["files"]) == {"secrets.yml.cms"}
    assert oct(sealed.stat().st_mode & 0o777) == "0o600"
    opened = subprocess.run(["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", sealed,
                             "-inkey", site / "key.pem"], capture_output=True, check=True)
    assert opened.stdout == Path(cfg["secrets"]["path"]).read_bytes()


def test_without_a_certificate_the_store_is_left_out_and_the_status_says_so(tmp_path, site):
    path, cfg = config(tmp_path, site)
    cfg["secrets"]["certificate"] = ""
    path.write_text(json.dumps(cfg))
    assert run(path).returncode == 0
    status = json.loads(Path(cfg["status_file"]).read_text())
    assert status["result"] == "success"
    assert "backup_secrets_certificate" in status["warning"]
    assert not list(Path(cfg["dir"]).glob("*/secrets.yml.cms"))


def test_sqlite_is_copied_online_by_its_owner(tmp_path, site, request):
    # The Temporal user's directory, where that user can reach it (pytest's own is root's only).
    data = Path(tempfile.mkdtemp(prefix="qa-temporal-"))
    request.addfinalizer(lambda: shutil.rmtree(data, ignore_errors=True))
    db = data / "temporal.db"
    live = sqlite3.connect(db)
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("CREATE TABLE executions (id INTEGER)")
    live.executemany("INSERT INTO executions VALUES (?)", [(i,) for i in range(50)])
    live.commit()
    # An open writer, as the running server is: the copy still holds every committed row.
    live.execute("BEGIN")
    live.execute("INSERT INTO executions VALUES (999)")
    os.chown(data, 65534, 65534)
    for f in data.iterdir():
        os.chown(f, 65534, 65534)
    nobody = subprocess.run(["id", "-nu", "65534"], capture_output=True, text=True, check=True).stdout.strip()
    path, cfg = config(tmp_path, site, sqlite={"path": str(db), "user": nobody})
    proc = run(path)
    live.rollback()
    assert proc.returncode == 0, proc.stderr
    status = json.loads(Path(cfg["status_file"]).read_text())
    copy = sqlite3.connect(Path(cfg["dir"]) / status["set"] / "temporal.sqlite")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT count(*) FROM executions").fetchone()[0] == 50


def test_pruning_keeps_the_newest_set_of_the_last_days_and_weeks(tmp_path):
    module = load()
    names = ["20261201T020000Z", "20261201T010000Z", "20261130T020000Z", "20261129T020000Z", "20261122T020000Z",
             "20261115T020000Z"]
    for n in names + [".partial-20261128T020000Z"]:
        (tmp_path / n).mkdir()
    (tmp_path / "not-a-set").mkdir()
    removed = module.prune(str(tmp_path), keep_daily=2, keep_weekly=2)
    # Days: 12-01 (its newest set) and 11-30; weeks: 2026-W49 (12-01) and W48 (11-29, the newest of that week).
    kept = ["20261129T020000Z", "20261130T020000Z", "20261201T020000Z", "not-a-set"]
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
    assert removed == [".partial-20261128T020000Z", "20261115T020000Z", "20261122T020000Z", "20261201T010000Z"]


def test_a_linked_backup_directory_is_refused_and_the_failure_recorded(tmp_path, site):
    path, cfg = config(tmp_path, site)
    target = tmp_path / "elsewhere"
    target.mkdir()
    Path(cfg["dir"]).symlink_to(target)
    previous = datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc).isoformat()
    Path(cfg["status_file"]).write_text(json.dumps({"last_success": previous}))
    proc = run(path)
    assert proc.returncode == 1
    status = json.loads(Path(cfg["status_file"]).read_text())
    assert status["result"] == "failed" and "not a root-owned directory" in status["error"]
    assert status["last_success"] == previous
    assert list(target.iterdir()) == []


def test_a_store_that_is_a_link_is_refused(tmp_path, site):
    path, cfg = config(tmp_path, site)
    real = Path(cfg["secrets"]["path"])
    moved = tmp_path / "real.yml"
    real.rename(moved)
    real.symlink_to(moved)
    proc = run(path)
    assert proc.returncode == 1
    assert "not a root-owned file" in json.loads(Path(cfg["status_file"]).read_text())["error"]
    assert not [p for p in Path(cfg["dir"]).iterdir() if not p.name.startswith(".")]
