"""Deterministic train / held-out manifests, so every model trains and is tested on the same images.

SPLIT_DIR/split.json: {"root": absolute image folder, "seed": int, "train": [relative paths],
"heldout": [relative paths]} (POSIX paths, each list sorted). Files are chosen by extension only (no image is
opened, so splitting ImageNet takes seconds); corrupt ones are skipped later when loaded. An image's stem
names its scene, its colorized output and its stimulus, so stems must be unique across the whole split.
"""

import json
import random
from dataclasses import dataclass
from pathlib import Path

from colorization.images import IMAGE_EXTENSIONS, find_images

SPLIT_FILE = "split.json"
DEFAULT_HOLDOUT_FRAC = 0.1


@dataclass
class Split:
    root: Path
    train: list[Path]
    heldout: list[Path]


def make_split(images_dir, out_dir, *, holdout=None, holdout_frac=None, seed=0) -> Split:
    """Hold out `holdout` images, or a `holdout_frac` fraction (default 0.1), chosen by `seed`; write split.json.

    The same files and seed always give the same split. An existing split.json with different content is
    never overwritten: models compared on different splits would not be comparable.
    """
    root = Path(images_dir).resolve()
    relative = [path.relative_to(root).as_posix() for path in find_images(root)]
    if len(relative) < 2:
        # Name the extensions: photos in another format (.heic, .gif) are otherwise silently not counted.
        raise ValueError(
            f"{root}: found {len(relative)} image(s) ({', '.join(sorted(IMAGE_EXTENSIONS))}); a split needs at least 2"
        )
    _check_unique_stems(root, relative)
    count = _holdout_count(root, len(relative), holdout, holdout_frac)

    chosen = set(random.Random(seed).sample(relative, count))
    manifest = {
        "root": str(root),
        "seed": seed,
        "train": [path for path in relative if path not in chosen],
        "heldout": [path for path in relative if path in chosen],
    }
    split_file = Path(out_dir) / SPLIT_FILE
    if split_file.exists() and json.loads(split_file.read_text()) != manifest:
        raise FileExistsError(f"{split_file}: a different split already exists; delete it to make a new one")
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps(manifest, indent=1) + "\n")
    return _from_manifest(manifest)


def read_split(split_dir) -> Split:
    """The split saved in split_dir (or in the split.json path given)."""
    split_file = Path(split_dir)
    if split_file.is_dir():
        split_file = split_file / SPLIT_FILE
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: no split here; make one with `python -m colorization split`")
    try:
        manifest = json.loads(split_file.read_text())
        split = _from_manifest(manifest)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{split_file}: not a valid split manifest ({error!r})") from None
    if not split.root.is_dir():
        raise FileNotFoundError(f"{split_file}: its image folder {split.root} does not exist (moved?)")
    return split


def _from_manifest(manifest: dict) -> Split:
    root = Path(manifest["root"])
    return Split(
        root=root,
        train=[root / path for path in manifest["train"]],
        heldout=[root / path for path in manifest["heldout"]],
    )


def _check_unique_stems(root: Path, relative: list[str]) -> None:
    first_by_stem = {}
    for path in relative:
        stem = Path(path).stem
        if stem in first_by_stem:
            raise ValueError(
                f"{root}: {first_by_stem[stem]} and {path} share the stem {stem!r}; stems name scenes and "
                f"output files, so rename one of them"
            )
        first_by_stem[stem] = path


def _fraction_count(total: int, fraction: float) -> int:
    """Images held out by a fraction: at least one, and at least one left to train on."""
    return min(max(1, round(fraction * total)), total - 1)


def _holdout_count(root: Path, total: int, holdout, holdout_frac) -> int:
    if holdout is not None and holdout_frac is not None:
        raise ValueError("give either holdout (a count) or holdout_frac (a fraction), not both")
    if holdout is None:
        fraction = DEFAULT_HOLDOUT_FRAC if holdout_frac is None else float(holdout_frac)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"holdout_frac must be between 0 and 1 (exclusive), got {fraction}")
        return _fraction_count(total, fraction)
    if not 1 <= holdout <= total - 1:
        # A count copied from a guide (the README's 5000) fails on a small folder: say what fits this one.
        problem = "leaves no images to train on" if holdout >= total else "holds out no image"
        raise ValueError(
            f"{root}: --holdout {holdout} {problem}: the folder has {total} images, so pass a number from 1 to "
            f"{total - 1} (e.g. --holdout {_fraction_count(total, DEFAULT_HOLDOUT_FRAC)}), or a fraction "
            f"with --holdout-frac {DEFAULT_HOLDOUT_FRAC}"
        )
    return int(holdout)
