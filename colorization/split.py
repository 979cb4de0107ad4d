"""Deterministic train / held-out manifests, so every model trains and is tested on the same images.

SPLIT_DIR/split.json: {"root": absolute image folder, "seed": int, "train": [relative paths],
"heldout": [relative paths]} (POSIX paths, each list sorted), plus "group_by" when images were grouped. Files
are chosen by extension only (no image is opened, so splitting ImageNet takes seconds); corrupt ones are
skipped later when loaded. An image's stem names its scene, its colorized output and its stimulus, so stems
must be unique across the whole split.

Grouping: several files may come from one photo (crops, frames of one video, shots of one scene). Holding
out some of them and training on the others lets a model see the held-out scene, so its held-out scores and
the Turing test built on them would flatter it. `group_by` is a regular expression matched against each stem;
files whose stems give the same first group (the whole match if the pattern has no group) are held out or
kept together, and the hold-out size then counts groups. Stems it does not match form a group each.
"""

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from colorization.errors import ConfigError, ImageError
from colorization.images import IMAGE_EXTENSIONS, DuplicateStemError, by_stem, find_images, first_few

SPLIT_FILE = "split.json"
DEFAULT_HOLDOUT_FRAC = 0.1


@dataclass
class Split:
    root: Path
    train: list[Path]
    heldout: list[Path]
    groups: int | None = None  # with group_by: how many groups (photos) the images formed


def make_split(images_dir, out_dir, *, holdout=None, holdout_frac=None, seed=0, group_by=None) -> Split:
    """Hold out `holdout` images, or a `holdout_frac` fraction (default 0.1), chosen by `seed`; write split.json.

    With group_by (a regular expression, see the module docstring) the counts are of groups, and every group
    lies wholly on one side. The same files, seed and group_by always give the same split. An existing
    split.json with different content is never overwritten: models compared on different splits would not be
    comparable.
    """
    root = Path(images_dir).resolve()
    relative = [path.relative_to(root).as_posix() for path in find_images(root)]
    if len(relative) < 2:
        # Name the extensions: photos in another format (.heic, .gif) are otherwise silently not counted.
        raise ConfigError(
            f"{root}: found {len(relative)} image(s) ({', '.join(sorted(IMAGE_EXTENSIONS))}); a split needs at least 2"
        )
    _check_unique_stems(root, relative)
    groups = _groups(root, relative, group_by)
    count = _holdout_count(root, len(groups), holdout, holdout_frac, unit="groups" if group_by else "images")

    chosen = {path for key in random.Random(seed).sample(sorted(groups), count) for path in groups[key]}
    manifest = {
        "root": str(root),
        "seed": seed,
        "train": [path for path in relative if path not in chosen],
        "heldout": [path for path in relative if path in chosen],
    }
    if group_by:
        manifest["group_by"] = group_by
    split_file = Path(out_dir) / SPLIT_FILE
    if split_file.exists() and json.loads(split_file.read_text()) != manifest:
        raise FileExistsError(f"{split_file}: a different split already exists; delete it to make a new one")
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text(json.dumps(manifest, indent=1) + "\n")
    split = _from_manifest(manifest)
    split.groups = len(groups) if group_by else None
    return split


def read_split(split_dir) -> Split:
    """The split saved in split_dir (or in the split.json path given)."""
    split_file = _split_file(split_dir)
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: no split here; make one with `python -m colorization split`")
    try:
        manifest = json.loads(split_file.read_text())
        split = _from_manifest(manifest)
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{split_file}: not a valid split manifest ({error!r})") from None
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
    try:
        by_stem(relative)
    except DuplicateStemError as error:
        raise ImageError(f"{root}: {error}; stems name scenes and output files, so rename one of them") from None


def _groups(root: Path, relative: list[str], group_by) -> dict[str, list[str]]:
    """{group key: its relative paths}; without group_by every image is its own group."""
    if not group_by:
        return {path: [path] for path in relative}
    try:
        pattern = re.compile(group_by)
    except re.error as error:
        raise ConfigError(f"--group-by {group_by!r} is not a regular expression: {error}") from None
    groups: dict[str, list[str]] = {}
    matched = 0
    for path in relative:
        stem = Path(path).stem
        match = pattern.search(stem)
        matched += match is not None
        key = (match.group(1) if pattern.groups else match.group(0)) if match else stem
        groups.setdefault(key, []).append(path)
    # A pattern that groups nothing would split crops of one photo apart, the very leak it is there to stop.
    if not matched:
        raise ConfigError(
            f"{root}: --group-by {group_by!r} matches none of the {len(relative)} file stems "
            f"(e.g. {first_few([Path(path).stem for path in relative], shown=3)})"
        )
    if len(groups) == len(relative):
        raise ConfigError(
            f"{root}: --group-by {group_by!r} puts every image in a group of its own; its first group ( ) must "
            "capture the part the files of one photo share, e.g. '(.+)-\\d+$' for PHOTO-01, PHOTO-02"
        )
    if len(groups) < 2:
        raise ConfigError(
            f"{root}: --group-by {group_by!r} puts all {len(relative)} images in one group ({next(iter(groups))!r}); "
            "a split needs at least 2 groups"
        )
    return groups


def _fraction_count(total: int, fraction: float) -> int:
    """Images held out by a fraction: at least one, and at least one left to train on."""
    return min(max(1, round(fraction * total)), total - 1)


def _holdout_count(root: Path, total: int, holdout, holdout_frac, unit: str = "images") -> int:
    if holdout is not None and holdout_frac is not None:
        raise ConfigError("give either holdout (a count) or holdout_frac (a fraction), not both")
    if holdout is None:
        fraction = DEFAULT_HOLDOUT_FRAC if holdout_frac is None else float(holdout_frac)
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"holdout_frac must be between 0 and 1 (exclusive), got {fraction}")
        return _fraction_count(total, fraction)
    if not 1 <= holdout <= total - 1:
        # A count copied from a guide (docs/training.md's 5000) fails on a small folder: say what fits this one.
        problem = "leaves no images to train on" if holdout >= total else "holds out no image"
        raise ConfigError(
            f"{root}: --holdout {holdout} {problem}: the folder has {total} {unit}, so pass a number from 1 to "
            f"{total - 1} (e.g. --holdout {_fraction_count(total, DEFAULT_HOLDOUT_FRAC)}), or a fraction "
            f"with --holdout-frac {DEFAULT_HOLDOUT_FRAC}"
        )
    return int(holdout)


def check_trained_apart(split_dir, runs: dict) -> None:
    """Refuse to score or show runs on held-out images they may have trained on.

    runs: {name: the config dict its checkpoint stores}. A run trained on this very split is fine. A run
    trained on another split is fine when none of that split's training images (by stem, which names the
    scene) is held out here; otherwise, or when its split cannot be read to check, ConfigError naming the run.
    A run whose config names no split (released weights converted into a checkpoint) is not checked.
    """
    split_file = _split_file(split_dir).resolve()
    heldout = {path.stem for path in read_split(split_dir).heldout}
    for name, config in runs.items():
        trained_on = config.get("split")
        if not trained_on or _split_file(trained_on).resolve() == split_file:
            continue
        try:
            trained = {path.stem for path in read_split(trained_on).train}
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"run {name} was trained on the split {trained_on}, not {split_dir}, and that split cannot be read "
                f"to check that none of its training images is held out here ({error})"
            ) from None
        leaked = sorted(trained & heldout)
        if leaked:
            raise ConfigError(
                f"run {name} was trained on the split {trained_on}, whose training images include {len(leaked)} of "
                f"the {len(heldout)} held out in {split_dir}: {first_few(leaked)}; its scores and stimuli would come "
                "from images it has seen. Use the split it was trained on"
            )


def _split_file(split_dir) -> Path:
    path = Path(split_dir)
    return path / SPLIT_FILE if path.is_dir() else path
