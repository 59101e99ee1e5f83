"""The temporal role's upgrade copies the server's state into a root-only directory and puts it back on a
rollback. Its two shell steps, taken from roles/temporal/tasks/upgrade.yml, run here for real as root against a
data directory owned by another user, as on a Temporal host: a link planted there must not make root read or
write anything through it."""

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

UPGRADE = Path(__file__).resolve().parents[3] / "roles" / "temporal" / "tasks" / "upgrade.yml"
OWNER = "nobody"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the steps run as root and switch to the data's owner")


def step(name):
    """The shell of the upgrade's task `name` (in the block or its rescue) and the files it handles."""
    tasks = yaml.safe_load(UPGRADE.read_text())
    block = next(t for t in tasks if "block" in t)
    task = next(t for t in block["block"] + block["rescue"] if t["name"] == name)
    return task["ansible.builtin.shell"]["cmd"], block["vars"]["_temporal_state_files"]


COPY_STEP = "Copy the server's state while it is stopped"
RESTORE_STEP = "Restore the server's state from the copy taken before the upgrade"


def run(name, copy, data):
    cmd, files = step(name)
    env = dict(os.environ, COPY=str(copy), DATA=str(data), OWNER=OWNER, FILES=" ".join(files))
    return subprocess.run(["/bin/sh", "-c", cmd], env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def host():
    """A Temporal host's layout: a data directory of the server's user (0750), a root-only backup directory, a
    root-only file a planted link could aim at."""
    base = Path(tempfile.mkdtemp(prefix="qa-temporal-upgrade-"))
    base.chmod(0o711)  # the owner reaches its own directory inside, and nothing else
    user = pwd.getpwnam(OWNER)
    data = base / "data"
    data.mkdir(mode=0o750)
    os.chown(data, user.pw_uid, user.pw_gid)
    backups = base / "backups"
    backups.mkdir(mode=0o700)
    secret = base / "root-only"
    secret.write_text("root-only-secret-5150\n")
    secret.chmod(0o600)
    yield data, backups, secret, user
    shutil.rmtree(base)


def as_owner(user, path, content):
    path.write_bytes(content)
    os.chown(path, user.pw_uid, user.pw_gid)


def test_the_copy_holds_the_database_and_its_log_root_only(host):
    data, backups, unused, user = host
    as_owner(user, data / "temporal.db", b"database pages")
    as_owner(user, data / "temporal.db-wal", b"log frames")
    as_owner(user, data / "temporal.db-shm", b"index")
    copy = backups / "temporal-before-venv-1.9.1-20261205T000000Z"
    proc = run(COPY_STEP, copy, data)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in copy.iterdir()) == ["temporal.db", "temporal.db-wal"]
    assert (copy / "temporal.db").read_bytes() == b"database pages"
    assert (copy / "temporal.db-wal").read_bytes() == b"log frames"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
    for f in copy.iterdir():
        assert f.stat().st_uid == 0 and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert not Path(str(copy) + ".part").exists()


def test_a_link_planted_in_the_data_directory_stops_the_copy_and_reads_nothing(host):
    data, backups, secret, user = host
    as_owner(user, data / "temporal.db", b"database pages")
    os.symlink(secret, data / "temporal.db-wal")
    os.lchown(data / "temporal.db-wal", user.pw_uid, user.pw_gid)
    copy = backups / "temporal-before-venv-1.9.1-20261205T000000Z"
    proc = run(COPY_STEP, copy, data)
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr
    # no copy, no partial one, and the secret nowhere under the backups
    assert list(backups.iterdir()) == []


def test_the_rollback_writes_as_the_owner_and_never_through_a_planted_link(host):
    data, backups, secret, user = host
    copy = backups / "temporal-before-venv-1.9.1-20261205T000000Z"
    copy.mkdir(mode=0o700)
    (copy / "temporal.db").write_bytes(b"pages before the upgrade")
    (copy / "temporal.db-wal").write_bytes(b"frames before the upgrade")
    # What the failed version left: its own log index, and a link where the database goes.
    as_owner(user, data / "temporal.db-shm", b"index of the failed version")
    os.symlink(secret, data / "temporal.db")
    os.lchown(data / "temporal.db", user.pw_uid, user.pw_gid)
    proc = run(RESTORE_STEP, copy, data)
    assert proc.returncode == 0, proc.stderr
    assert secret.read_text() == "root-only-secret-5150\n"
    assert sorted(p.name for p in data.iterdir()) == ["temporal.db", "temporal.db-wal"]
    for name, content in (("temporal.db", b"pages before the upgrade"), ("temporal.db-wal", b"frames before the upgrade")):
        f = data / name
        assert not f.is_symlink() and f.read_bytes() == content
        assert f.stat().st_uid == user.pw_uid and stat.S_IMODE(f.stat().st_mode) == 0o600
