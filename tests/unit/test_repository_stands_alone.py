"""A clone on its own is enough: nothing in the repository points at files outside it."""

from __future__ import annotations

import subprocess

from tests.support.env_names import ROOT

# A design document kept outside the repository, and the sibling folder of shared scripts;
# spelled in pieces so that this file does not name them itself.
OUTSIDE = ("DES" + "IGN", "../" + "shared")


def test_no_file_refers_to_anything_outside_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    offenders = []
    for name in listed:
        path = ROOT / name
        if not path.is_file() or path.suffix in (".binpb", ".png"):
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}: {word}" for word in OUTSIDE if word in text]
    assert offenders == []


def test_make_starts_the_services_with_the_project_s_own_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/services.sh postgres redis rabbitmq" in makefile
    assert (ROOT / "scripts/services.sh").stat().st_mode & 0o111
