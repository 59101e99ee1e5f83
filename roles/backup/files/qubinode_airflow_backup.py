# Managed by Ansible (qubinode.airflow.backup). Run by qubinode-airflow-backup.service:
#   python3 -I backup.py /etc/qubinode-airflow/backup.json
"""Take one backup set of what this host holds, prune old sets and record the result.

A set is a directory named after its UTC time in the backup directory:
  <database>.dump      every PostgreSQL database of the server (pg_dump, custom format)
  temporal.sqlite      Temporal's standalone state (SQLite online backup API, as the Temporal user)
  secrets.yml.cms      the secrets store, encrypted to the site's certificate (CMS, AES-256-GCM)
  manifest.json        what the set holds, sizes and SHA-256 digests
A set is written under a hidden name and renamed when complete, so a listed set is whole.
The status file (readable by monitoring) says when the last run ended, how, and the last success.

Runs as root and touches only root-owned paths, never through a link: the service users' data is
read by the services' own users (postgres, temporal) and streamed to root over a pipe.
"""
import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time

CONFIG = "/etc/qubinode-airflow/backup.json"
SET_NAME = re.compile(r"^\d{8}T\d{6}Z$")

# Run by the Temporal user: copy the live SQLite database with SQLite's online backup API into a
# private temporary file, then stream it to stdout.
SQLITE_BACKUP = """
import os, shutil, sqlite3, sys, tempfile
with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "copy.sqlite")
    src = sqlite3.connect("file:" + sys.argv[1] + "?mode=rw", uri=True, timeout=60)
    dst = sqlite3.connect(copy)
    with dst:
        src.backup(dst)
    dst.close()
    src.close()
    with open(copy, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
"""


class BackupError(Exception):
    pass


def root_dir(path, create=False):
    """Make sure path is a root-owned 0700 directory, not a link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            raise BackupError(f"{path} does not exist")
        os.mkdir(path, 0o700)
        st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
        raise BackupError(f"{path} is not a root-owned directory (a link or another owner): refusing to use it")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)


def open_new(path):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb")


def as_user(user, argv):
    return ["runuser", "-u", user, "--"] + argv


def run_to_file(argv, path, what):
    with open_new(path) as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise BackupError(f"{what} failed (rc {proc.returncode}): {proc.stderr.decode(errors='replace').strip()[-400:]}")


def postgres_argv(cfg, argv):
    if cfg["runtime"] == "podman":
        return ["podman", "exec", "--user", "postgres", cfg["container"]] + argv
    return as_user("postgres", argv)


def back_up_postgresql(cfg, into):
    listing = subprocess.run(
        postgres_argv(cfg, ["psql", "-X", "-At", "-d", "postgres", "-c",
                            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1"]),
        capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        raise BackupError(f"listing the PostgreSQL databases failed: {listing.stderr.strip()[-400:]}")
    names = [n for n in listing.stdout.split() if n]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise BackupError(f"database name {name!r} is not one this backup handles (letters, digits, _)")
        run_to_file(postgres_argv(cfg, ["pg_dump", "--format=custom", "--dbname", name]),
                    os.path.join(into, f"{name}.dump"), f"pg_dump of {name}")
    return names


def count_dag_runs(cfg):
    """DAG runs in the metadata database (airflow), None when it cannot be read: a restore tells a set of a rebuilt,
    empty stack from one with history by it."""
    def query(sql):
        proc = subprocess.run(postgres_argv(cfg, ["psql", "-X", "-At", "-d", "airflow", "-c", sql]),
                              capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None
    table = query("SELECT to_regclass('public.dag_run') IS NOT NULL")
    if table != "t":
        return None if table is None else 0
    count = query("SELECT count(*) FROM dag_run")
    return int(count) if count and count.isdigit() else None


def back_up_sqlite(cfg, into):
    run_to_file(as_user(cfg["user"], ["python3", "-I", "-c", SQLITE_BACKUP, cfg["path"]]),
                os.path.join(into, "temporal.sqlite"), f"the SQLite backup of {cfg['path']}")


def back_up_secrets(cfg, into):
    st = os.lstat(cfg["path"])
    if not stat.S_ISREG(st.st_mode) or st.st_uid != 0:
        raise BackupError(f"{cfg['path']} is not a root-owned file: refusing to read it")
    out = os.path.join(into, "secrets.yml.cms")
    proc = subprocess.run(
        ["openssl", "cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "DER",
         "-recip", cfg["certificate"], "-in", cfg["path"], "-out", out],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(f"encrypting the secrets store failed: {proc.stderr.strip()[-400:]}")


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prune(base, keep_daily, keep_weekly):
    """Keep the newest set of each of the last keep_daily days and keep_weekly ISO weeks that have sets."""
    sets = sorted((n for n in os.listdir(base) if SET_NAME.match(n)), reverse=True)
    keep = set(sets[:1])
    days, weeks = [], []
    for name in sets:
        day = name[:8]
        week = datetime.datetime.strptime(day, "%Y%m%d").isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.append(day)
            keep.add(name)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.append(week)
            keep.add(name)
    removed = []
    for name in os.listdir(base):
        if (SET_NAME.match(name) and name not in keep) or name.startswith(".partial-"):
            path = os.path.join(base, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
                removed.append(name)
    return sorted(removed)


def write_status(path, status):
    tmp = f"{path}.tmp"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644), "w") as f:
        json.dump(status, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def previous_success(path):
    try:
        with open(path) as f:
            return json.load(f).get("last_success")
    except (OSError, ValueError):
        return None


def main():
    os.umask(0o077)
    with open(sys.argv[1] if len(sys.argv) > 1 else CONFIG) as f:
        cfg = json.load(f)
    started = time.time()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = now.strftime("%Y%m%dT%H%M%SZ")
    status = {"host": socket.getfqdn(), "started": now.isoformat(timespec="seconds"), "set": name,
              "last_success": previous_success(cfg["status_file"])}
    base = cfg["dir"]
    partial = os.path.join(base, f".partial-{name}")
    try:
        root_dir(base, create=True)
        os.mkdir(partial, 0o700)
        contents = {}
        if cfg.get("postgresql"):
            runs = count_dag_runs(cfg["postgresql"])
            contents["postgresql"] = back_up_postgresql(cfg["postgresql"], partial)
            if runs is not None and "airflow" in contents["postgresql"]:
                contents["airflow_dag_runs"] = runs
        if cfg.get("sqlite") and os.path.exists(cfg["sqlite"]["path"]):
            back_up_sqlite(cfg["sqlite"], partial)
            contents["temporal_sqlite"] = cfg["sqlite"]["path"]
        secrets = cfg.get("secrets")
        if secrets and os.path.lexists(secrets["path"]):
            if secrets.get("certificate"):
                back_up_secrets(secrets, partial)
                contents["secrets"] = "encrypted"
            else:
                contents["secrets"] = "not included: no site certificate (backup_secrets_certificate)"
        files = {}
        for entry in sorted(os.listdir(partial)):
            path = os.path.join(partial, entry)
            files[entry] = {"bytes": os.path.getsize(path), "sha256": digest(path)}
        manifest = {"set": name, "time": now.isoformat(timespec="seconds"), "host": status["host"],
                    "contents": contents, "files": files}
        with open_new(os.path.join(partial, "manifest.json")) as f:
            f.write(json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
        os.rename(partial, os.path.join(base, name))
        removed = prune(base, int(cfg["keep_daily"]), int(cfg["keep_weekly"]))
        ended = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        status.update(result="success", ended=ended, last_success=ended, contents=contents,
                      bytes=sum(f["bytes"] for f in files.values()), removed=removed,
                      seconds=round(time.time() - started, 1))
        if contents.get("secrets", "encrypted") != "encrypted":
            status["warning"] = f"secrets store {contents['secrets']}"
        rc = 0
    except (BackupError, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        status.update(result="failed", error=str(exc), seconds=round(time.time() - started, 1),
                      ended=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        print(f"backup failed: {exc}", file=sys.stderr)
        rc = 1
    write_status(cfg["status_file"], status)
    print(json.dumps(status, sort_keys=True))
    return rc


if __name__ == "__main__":
    sys.exit(main())
