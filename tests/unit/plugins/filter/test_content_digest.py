"""content_digest: the copy of the collection on a host is compared by names and contents only."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qubinode.airflow.plugins.filter.content_digest import content_digest

FILES = [{"path": "/a/coll/provider/x.py", "checksum": "1"}, {"path": "/a/coll/galaxy.yml", "checksum": "2"}]


def moved(files, old, new):
    return [dict(f, path=f["path"].replace(old, new, 1)) for f in files]


def test_independent_of_location_and_order():
    digest = content_digest(FILES, "/a/coll")
    assert len(digest) == 64
    assert content_digest(list(reversed(FILES)), "/a/coll") == digest
    assert content_digest(moved(FILES, "/a/coll", "/b/other"), "/b/other") == digest
    # the role passes its root as role_path/../..
    assert content_digest(FILES, "/a/coll/roles/airflow/../..") == digest


@pytest.mark.parametrize("change", [
    lambda f: [dict(f[0], checksum="9"), f[1]],                          # a content
    lambda f: [dict(f[0], path="/a/coll/provider/y.py"), f[1]],          # a name
    lambda f: f[:1],                                                     # a file removed
    lambda f: f + [{"path": "/a/coll/provider/z.py", "checksum": "3"}],  # a file added
])
def test_any_change_changes_it(change):
    assert content_digest(change(FILES), "/a/coll") != content_digest(FILES, "/a/coll")


@pytest.mark.parametrize("files, says", [
    ([{"path": "/elsewhere/x", "checksum": "1"}], "not inside"),
    ([{"path": "/a/coll", "checksum": "1"}], "not inside"),
    ([{"path": "/a/coll/x"}], "checksum"),
    ("x", "expects a list"),
])
def test_bad_input(files, says):
    with pytest.raises(AnsibleFilterError, match=says):
        content_digest(files, "/a/coll")
