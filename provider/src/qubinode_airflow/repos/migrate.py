# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""A patch that moves a repository of Airflow 2 DAGs to Airflow 3, for its authors to review and commit.

    airflow dag-repos migration-patch PATH [--output FILE]

ruff's Airflow 3 rules (AIR301 and AIR302: removed; AIR311 and AIR312: deprecated) are applied with their
fixes to a copy of the repository; the patch holds what they changed, and its header lists the findings
ruff cannot fix, each with its rule and where it is. ruff reads the files and runs none of them. The
repository itself is never written to, and links in it are left out of the copy (a fix must not write
through a link to a file outside it).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RULES = ("AIR301", "AIR302", "AIR311", "AIR312")


def _ruff() -> str:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        raise RuntimeError("ruff is not installed in this Python environment: pip install ruff") from None
    return find_ruff_bin()


def _copy(root: Path, dest: Path) -> list[str]:
    """Copy the tree without .git and without links; return the links left out (relative paths)."""
    links: list[str] = []

    def ignore(directory, names):
        skipped = []
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                links.append(os.path.relpath(path, root))
                skipped.append(name)
            elif name == ".git":
                skipped.append(name)
        return skipped

    shutil.copytree(root, dest, symlinks=True, ignore=ignore)
    return sorted(links)


def _diff(rel: str, before: bytes, after: bytes) -> str:
    out = []
    lines = difflib.unified_diff(before.decode("utf-8", "surrogateescape").splitlines(keepends=True),
                                 after.decode("utf-8", "surrogateescape").splitlines(keepends=True),
                                 "a/" + rel, "b/" + rel)
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


@dataclasses.dataclass
class Migration:
    patch: str
    changed: list[str]
    """The files ruff's fixes change (relative paths)."""
    remaining: list[dict]
    """ruff's findings it could not fix, as its JSON output gives them (file names relative)."""
    links: list[str]
    """Links of the repository, left out."""


def migration_patch(root: str | os.PathLike) -> Migration:
    """What ruff's Airflow 3 fixes change in the repository at `root`, and what they leave to do."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ValueError("%s is not a directory: give the path of a checkout of the repository" % root)
    with tempfile.TemporaryDirectory(prefix="qubinode-migrate-") as tmp:
        copy = Path(tmp) / "repo"
        links = _copy(root, copy)
        before = {path.relative_to(copy).as_posix(): path.read_bytes()
                  for path in sorted(copy.rglob("*")) if path.is_file()}
        proc = subprocess.run([_ruff(), "check", "--isolated", "--no-cache", "--exit-zero", "--fix", "--unsafe-fixes",
                               "--select", ",".join(RULES), "--output-format", "json", "--", "."],
                              cwd=copy, capture_output=True, text=True, timeout=600, check=False)
        try:
            remaining = json.loads(proc.stdout or "[]")
        except ValueError:
            raise RuntimeError("ruff failed (rc %d): %s" % (proc.returncode, proc.stderr.strip()[-2000:])) from None
        for finding in remaining:
            finding["filename"] = Path(finding["filename"]).resolve().relative_to(copy.resolve()).as_posix()
        changed = [rel for rel, data in before.items() if (copy / rel).read_bytes() != data]
        patch = "".join(_diff(rel, before[rel], (copy / rel).read_bytes()) for rel in changed)
    return Migration(patch=patch, changed=changed, remaining=remaining, links=links)


def render(name: str, migration: Migration) -> str:
    """The patch with a header that says what it is and what it leaves to do (git apply skips the header)."""
    lines = ["Airflow 3 migration patch for %s (ruff rules %s)." % (name, ", ".join(RULES)),
             "Review it, apply it with \"git apply\" (or \"patch -p1\") in the repository, and commit it.",
             "",
             "ruff's fixes change %d file(s), below." % len(migration.changed)]
    if migration.remaining:
        lines += ["", "Findings ruff cannot fix (change these by hand):"]
        for f in sorted(migration.remaining,
                        key=lambda f: (f["filename"], f["location"]["row"], f["location"]["column"])):
            lines.append("  %s:%d:%d %s %s%s" % (f["filename"], f["location"]["row"], f["location"]["column"],
                                                 f["code"], f["message"], " (%s)" % f["url"] if f.get("url") else ""))
    if migration.links:
        lines += ["", "Links left out (not followed):"] + ["  %s" % link for link in migration.links]
    return "\n".join(lines) + "\n\n" + migration.patch


def main(path: str, output: str | None = None) -> int:
    try:
        migration = migration_patch(path)
    except (ValueError, RuntimeError) as e:
        print("migration-patch: %s" % e, file=sys.stderr)
        return 2
    text = render(os.path.basename(os.path.abspath(path)), migration)
    if output:
        with open(output, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print("migration-patch: %d file(s) changed, %d finding(s) to fix by hand%s" % (
        len(migration.changed), len(migration.remaining), ", written to %s" % output if output else ""),
        file=sys.stderr)
    return 0
