# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The git DAG bundle of a repository whose DAGs import from directories beside the DAG directory.

``airflow_dag_repo`` registers a repository with ``import_paths`` as this bundle. Airflow puts a bundle's
path (its ``subdir``) after the standard library and Airflow on ``sys.path``; this bundle then appends its
import paths, in their order, in every process that initializes it: the dag-processor (whose parsing
processes are forked from it) and each task's runner, on core hosts and Temporal workers.
"""

from __future__ import annotations

import sys
from pathlib import PurePosixPath

from airflow.providers.git.bundles.git import GitDagBundle

MAX_IMPORT_PATHS = 10


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
