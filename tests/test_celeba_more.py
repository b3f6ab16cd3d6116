"""data_sources/celeba_more.py on a small git repository made here: CelebA numbers kept, identity prefixes checked
against CelebA's labels, a number already present left alone, every file checked against the manifest."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("celeba_more", REPO / "data_sources" / "celeba_more.py")
celeba_more = importlib.util.module_from_spec(spec)
spec.loader.exec_module(celeba_more)


def git_repo(folder: Path, files: dict[str, bytes]) -> str:
    """A repository holding ``files`` in one commit; returns the commit."""
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    run = lambda *args: subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "-q")
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "photos")
    return run("rev-parse", "HEAD").stdout.strip()


def test_photos_keep_their_numbers_and_labels_are_checked(tmp_path):
    labels = {"000101.jpg": "7", "000102.jpg": "7", "000103.jpg": "9"}
    commit = git_repo(tmp_path / "repo", {"samples/7_000101.jpg": b"a", "samples/7_000102.jpg": b"b",
                                          "samples/000103.jpg": b"c", "samples.csv": b"not a photo",
                                          "samples/readme.txt": b"x"})
    dest = tmp_path / "celeba" / "img_more"
    dest.mkdir(parents=True)
    (dest / "000102.jpg").write_bytes(b"kept")
    assert celeba_more.extract(tmp_path / "repo" / ".git", commit, "samples", dest, labels) == 2
    assert sorted(p.name for p in dest.iterdir()) == ["000101.jpg", "000102.jpg", "000103.jpg"]
    assert (dest / "000101.jpg").read_bytes() == b"a" and (dest / "000102.jpg").read_bytes() == b"kept"
    wrong = git_repo(tmp_path / "wrong", {"samples/9_000101.jpg": b"a"})
    with pytest.raises(SystemExit, match="CelebA labels 000101.jpg as 7, not 9"):
        celeba_more.extract(tmp_path / "wrong" / ".git", wrong, "samples", tmp_path / "other", labels)


def test_the_manifest_names_every_source_folder_and_nothing_else():
    folders = {line.split()[1].split("/")[0] for line in celeba_more.MANIFEST.read_text().splitlines()}
    assert folders == {target for *_, target in celeba_more.SOURCES}
    assert len({commit for _, commit, *_ in celeba_more.SOURCES}) == len(celeba_more.SOURCES)


def test_a_folder_without_labels_is_one_sentence(tmp_path, capsys):
    assert celeba_more.main([str(tmp_path), str(tmp_path)]) == 2
    assert "has no identity_CelebA.txt" in capsys.readouterr().out
