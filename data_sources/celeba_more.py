"""Bring more CelebA photos beside the assembled slices, from public git snapshots, and check every file.

    python data_sources/celeba_more.py DEST GITDIR [GITDIR ...]

DEST is a CelebA folder (``<data root>/faces/celeba``, where ``assemble.sh`` put ``identity_CelebA.txt``); each
GITDIR is a snapshot (bare or not) of one repository below, found by its name. The photos keep CelebA's own
numbers, so ``identity_CelebA.txt`` labels them; each source goes into its own folder under DEST, and a number
that an earlier folder already holds is read from there (``arcdemo.faces.data.celeba_files``). Every extracted file
is checked against ``celeba_more.sha256``. The images are CelebA's (non-commercial research only): never commit them.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
from pathlib import Path

MANIFEST = Path(__file__).with_name("celeba_more.sha256")
# repository, the commit whose tree holds the photos, the folder in that tree, the folder under DEST
SOURCES = (
    # 6,300 in-the-wild photos of 299 people (20-30 each), as img_celeba/ of the official release
    ("matush97/faceRecognition", "e7ba6c0951ace22b43ef32fc903a7dae1babe55d", "Celeb", "img_celeba"),
    # 46,715 aligned 178x218 crops named <identity>_<number>.jpg, five of every person with at least five (a
    # snapshot without files over 4 MiB makes git print "invalid object" for its celeba_identity_samples.csv: harmless)
    ("ShaharKSegal/CelebA_Samples", "2a68dac53f1a175a4716f615d7f096c8a6122482", "celeba_identity_samples",
     "img_celeba_samples"),
    # 6,000 aligned crops of 200 people, one folder each under train/validation/test
    ("Nikhil4902/CelebA_Dataset", "22ed0908a96e6bf3fe626700a628d0ad26d8dd0b", "Datasets", "img_celeba_sets"),
)
PHOTO = re.compile(r"^(?:(\d+)_)?(\d{6}\.jpg)$")  # CelebA's number, after an optional "<identity>_"


def git_dir(path: Path) -> Path:
    """The git directory of a snapshot, bare or with a work tree."""
    inner = subprocess.run(["git", "-C", str(path), "rev-parse", "--absolute-git-dir"], capture_output=True, text=True)
    return Path(inner.stdout.strip()) if inner.returncode == 0 else path


def extract(gitdir: Path, commit: str, folder: str, dest: Path, labels: dict[str, str]) -> int:
    """Write the CelebA photos under ``folder`` at ``commit`` into ``dest`` as ``NNNNNN.jpg``; returns how many.
    A photo whose name carries an identity must carry CelebA's own for that number."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "--git-dir", str(gitdir), "archive", commit, f"{folder}/"],
                               stdout=subprocess.PIPE)
    count = 0
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        for member in tar:
            match = PHOTO.match(Path(member.name).name)
            if not member.isfile() or not match:
                continue
            identity, name = match.groups()
            if identity is not None and labels.get(name) != identity:
                raise SystemExit(f"{member.name}: CelebA labels {name} as {labels.get(name)}, not {identity}")
            if not (dest / name).exists():
                (dest / name).write_bytes(tar.extractfile(member).read())
                count += 1
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} {folder} failed in {gitdir}")
    return count


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2])
        return 2
    dest, gitdirs = Path(argv[0]), [Path(a) for a in argv[1:]]
    if not (dest / "identity_CelebA.txt").is_file():
        print(f"{dest} has no identity_CelebA.txt: run shared/data/faces/celeba/assemble.sh into it first")
        return 2
    expected = dict(line.split()[::-1] for line in MANIFEST.read_text().splitlines() if line.strip())
    labels = dict(line.split() for line in (dest / "identity_CelebA.txt").read_text().splitlines() if line.strip())
    for repo, commit, folder, target in SOURCES:
        names = {repo.replace("/", "+"), repo.split("/")[1]}  # a fetched snapshot's folder, or a clone's
        match = [g for g in gitdirs if names & set(g.resolve().parts)]
        if not match:
            print(f"skipped {repo}: no snapshot of it given")
            continue
        count = extract(git_dir(match[0]), commit, folder, dest / target, labels)
        print(f"{repo} @ {commit[:12]}: {count} photos into {target}/")
    bad = [path for path, digest in expected.items() if (dest / path).exists()
           and hashlib.sha256((dest / path).read_bytes()).hexdigest() != digest]
    extra = [p for f in {t for *_, t in SOURCES} for p in (dest / f).glob("*.jpg")
             if str(p.relative_to(dest)) not in expected]
    present = sum((dest / path).exists() for path in expected)
    if bad or extra:
        print(f"{len(bad)} files differ from the manifest, {len(extra)} are not in it: {(bad + extra)[:5]}")
        return 1
    print(f"{present} of {len(expected)} photos checked in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
