"""Wheels built here for tests that run pip for real, with no index."""

from __future__ import annotations

import zipfile


def make_wheel(where, name, version, requires=()):
    """A minimal pure-Python wheel of `name` that declares `requires`."""
    dist = "%s-%s" % (name.replace("-", "_"), version)
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
        name, version, "".join("Requires-Dist: %s\n" % r for r in requires))
    files = {"%s/__init__.py" % name.replace("-", "_"): "",
             "%s.dist-info/METADATA" % dist: meta,
             "%s.dist-info/WHEEL" % dist: "Wheel-Version: 1.0\nGenerator: qa\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files["%s.dist-info/RECORD" % dist] = "".join("%s,,\n" % f for f in list(files) + ["%s.dist-info/RECORD" % dist])
    with zipfile.ZipFile(where / ("%s-py3-none-any.whl" % dist), "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
