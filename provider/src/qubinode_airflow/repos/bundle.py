# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The git DAG bundles of the collection's airflow_dag_repo.

``GitDagBundleWithImportPaths``: a repository whose DAGs import from directories beside the DAG directory.
Airflow puts a bundle's path (its ``subdir``) after the standard library and Airflow on ``sys.path``; this
bundle then appends its import paths, in their order, in every process that initializes it: the
dag-processor (whose parsing processes are forked from it) and each task's runner, on core hosts and
Temporal workers.

``PinnedGitDagBundle``: a pinned repository, which serves the commit its pin file names. airflow_dag_repo
writes the pin (root's file, beside the bundle list) when a commit passed the validation; the
dag-processor reads it at each refresh of the bundle, so a new pin goes live without a restart. A pin
that cannot be read, or that someone other than root could have written, stops the bundle: it never falls
back to the branch, which holds commits nobody validated.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import PurePosixPath

from airflow.providers.git.bundles.git import GitDagBundle

MAX_IMPORT_PATHS = 10
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def checked_import_paths(value) -> list[str]:
    """Relative directories of the repository, checked again here: the bundle list is configuration, and a
    path must never leave the repository's checkout."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_IMPORT_PATHS:
        raise ValueError("import_paths must be a list of at most %d directories of the repository" % MAX_IMPORT_PATHS)
    out = []
    for item in value:
        parts = PurePosixPath(item).parts if isinstance(item, str) else ()
        if not parts or item.startswith("/") or any(p in (".", "..") or p.startswith("-") for p in parts) \
                or any(c in item for c in "*?[]\\:\n\r\0"):
            raise ValueError("import_paths holds %r, which is not a relative directory of the repository" % (item,))
        out.append("/".join(parts))
    return out


class GitDagBundleWithImportPaths(GitDagBundle):
    """Airflow's GitDagBundle, which also puts ``import_paths`` of the repository on ``sys.path``."""

    def __init__(self, *, import_paths: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.import_paths = checked_import_paths(import_paths or [])

    def import_dirs(self) -> list[str]:
        return [str(self.repo_path / path) for path in self.import_paths]

    def initialize(self) -> None:
        super().initialize()
        for path in self.import_dirs():
            if path not in sys.path:
                sys.path.append(path)


class PinError(RuntimeError):
    """The pin file cannot be trusted or read: the bundle serves nothing new."""


def read_pin(path: str) -> str:
    """The commit a pin file names. It must be a regular file of root's (not a link), that only root may
    write, in a directory that only root may write, holding one full SHA."""
    if not isinstance(path, str) or not os.path.isabs(path):
        raise PinError("pin_file must be an absolute path, not %r" % (path,))
    parent = os.lstat(os.path.dirname(path))
    if parent.st_uid != 0 or parent.st_mode & 0o022 or not stat.S_ISDIR(parent.st_mode):
        raise PinError("the directory of %s must be root's and writable by root only; run the dag_repos playbook "
                       "again" % path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise PinError("cannot read the pin %s (%s); run the dag_repos playbook again" % (path, e.strerror)) from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
            raise PinError("the pin %s must be a regular file of root's, writable by root only" % path)
        text = os.read(fd, 128).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if not SHA_RE.match(text):
        raise PinError("the pin %s does not hold a full commit SHA; run the dag_repos playbook again" % path)
    return text


class PinnedGitDagBundle(GitDagBundleWithImportPaths):
    """A pinned repository: ``tracking_ref`` is the commit of ``pin_file``, read again at each refresh."""

    def __init__(self, *, pin_file: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pin_file = pin_file
        # A task's runner checks out the version of its DAG run: the pin does not matter there (a worker
        # whose pin is not written yet still runs the tasks of the commit the dag-processor parsed).
        self.tracking_ref = self.version if self.version else read_pin(pin_file)

    def _clone_repo_if_required(self) -> None:
        super()._clone_repo_if_required()
        if not self.version:
            # The tracking checkout is made once; a pin newer than its last fetch must reach it before the
            # checkout of the pin (apache/airflow#71388).
            self.repo.remotes.origin.fetch(["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"])

    def refresh(self) -> None:
        if not self.version:
            self.tracking_ref = read_pin(self.pin_file)
        super().refresh()
