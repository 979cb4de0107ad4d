import json

import pytest

from colorization.split import make_split, read_split


def names(paths):
    return sorted(path.name for path in paths)


def test_split_is_deterministic_and_disjoint(image_dir, tmp_path):
    first = make_split(image_dir, tmp_path / "one", holdout=3, seed=7)
    second = make_split(image_dir, tmp_path / "two", holdout=3, seed=7)
    assert first == second
    assert not set(first.train) & set(first.heldout)
    assert sorted(first.train + first.heldout) == sorted(path.resolve() for path in image_dir.rglob("*.png"))
    assert all(path.is_absolute() for path in first.train + first.heldout)


def test_seed_changes_the_heldout_set(image_dir, tmp_path):
    heldout_sets = {
        tuple(names(make_split(image_dir, tmp_path / str(seed), holdout=3, seed=seed).heldout)) for seed in range(5)
    }
    assert len(heldout_sets) > 1


def test_holdout_count_and_fraction(image_dir, tmp_path):
    assert len(make_split(image_dir, tmp_path / "n", holdout=4).heldout) == 4
    by_fraction = make_split(image_dir, tmp_path / "f", holdout_frac=0.2)
    assert (len(by_fraction.train), len(by_fraction.heldout)) == (8, 2)
    assert len(make_split(image_dir, tmp_path / "default").heldout) == 1  # 10% of 10


@pytest.mark.parametrize("options", [{"holdout": 10}, {"holdout": 0}, {"holdout_frac": 1.0},
                                     {"holdout": 2, "holdout_frac": 0.2}])  # fmt: skip
def test_impossible_holdout_rejected(image_dir, tmp_path, options):
    with pytest.raises(ValueError, match="holdout"):
        make_split(image_dir, tmp_path / "split", **options)


@pytest.mark.parametrize("holdout, problem", [
    (5000, "leaves no images to train on"), (10, "leaves no images to train on"), (0, "holds out no image"),
])  # fmt: skip
def test_a_holdout_count_that_does_not_fit_says_how_many_images_and_what_to_pass(image_dir, tmp_path, holdout, problem):
    with pytest.raises(ValueError) as error:
        make_split(image_dir, tmp_path / "split", holdout=holdout)
    assert str(error.value) == (
        f"{image_dir.resolve()}: --holdout {holdout} {problem}: the folder has 10 images, so pass a number from 1 "
        "to 9 (e.g. --holdout 1), or a fraction with --holdout-frac 0.1"
    )


def test_too_few_images_names_the_extensions_looked_for(tmp_path, make_images):
    make_images(tmp_path / "one", 1)
    (tmp_path / "one" / "photo.heic").write_bytes(b"not counted")
    with pytest.raises(ValueError, match=r"found 1 image\(s\) \(.bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp\)"):
        make_split(tmp_path / "one", tmp_path / "split")


def test_manifest_on_disk_and_read_back(image_dir, split_dir):
    manifest = json.loads((split_dir / "split.json").read_text())
    assert manifest["root"] == str(image_dir.resolve()) and manifest["seed"] == 0
    assert len(manifest["train"]) == 7 and len(manifest["heldout"]) == 3
    assert "nested/sub00.png" in manifest["train"] + manifest["heldout"]
    split = read_split(split_dir)
    assert split.root == image_dir.resolve()
    assert [path.relative_to(split.root).as_posix() for path in split.heldout] == manifest["heldout"]
    assert read_split(split_dir / "split.json") == split


def test_duplicate_stems_rejected_naming_both_files(image_dir, make_images, tmp_path):
    make_images(image_dir / "other", 1)  # other/img00.png clashes with img00.png
    with pytest.raises(ValueError, match=r"img00\.png and other/img00\.png share the stem 'img00'"):
        make_split(image_dir, tmp_path / "split")


def test_corrupt_files_are_not_opened_at_split_time(image_dir, tmp_path):
    (image_dir / "broken.jpg").write_bytes(b"garbage")
    split = make_split(image_dir, tmp_path / "split", holdout=2)
    assert "broken.jpg" in names(split.train + split.heldout)


def test_different_existing_split_is_not_overwritten(image_dir, split_dir):
    make_split(image_dir, split_dir, holdout=3, seed=0)  # the same split again is fine
    with pytest.raises(FileExistsError, match="split.json: a different split already exists"):
        make_split(image_dir, split_dir, holdout=3, seed=1)


def test_read_split_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no split here"):
        read_split(tmp_path)
    (tmp_path / "split.json").write_text("{not json")
    with pytest.raises(ValueError, match="split.json: not a valid split manifest"):
        read_split(tmp_path)


def test_group_by_keeps_every_crop_of_a_photo_on_one_side(tmp_path, make_images):
    for photo in ("cat", "dog", "owl", "bee", "elk", "yak"):
        make_images(tmp_path / "crops", 4, prefix=f"{photo}-", seed=len(photo))
    make_images(tmp_path / "crops", 2, prefix="single", seed=9)  # single00, single01: no "-NN", a group each
    split = make_split(tmp_path / "crops", tmp_path / "split", holdout=3, seed=1, group_by=r"^(.+)-\d+$")

    def photo(path):
        return path.stem.rsplit("-", 1)[0]

    held, trained = {photo(path) for path in split.heldout}, {photo(path) for path in split.train}
    assert not held & trained and len(held) == 3 and len(held | trained) == 8
    assert json.loads((tmp_path / "split" / "split.json").read_text())["group_by"] == r"^(.+)-\d+$"
    # Without grouping, the same folder splits crops of one photo between the two sides.
    ungrouped = make_split(tmp_path / "crops", tmp_path / "ungrouped", holdout_frac=0.5, seed=1)
    assert {photo(path) for path in ungrouped.heldout} & {photo(path) for path in ungrouped.train}


def test_group_by_errors_say_what_is_wrong(tmp_path, make_images):
    make_images(tmp_path / "crops", 4, prefix="cat-")
    with pytest.raises(ValueError, match="not a regular expression"):
        make_split(tmp_path / "crops", tmp_path / "a", group_by="(")
    with pytest.raises(ValueError, match="puts all 4 images in one group \\('cat'\\)"):
        make_split(tmp_path / "crops", tmp_path / "b", group_by=r"^(.+)-\d+$")
    make_images(tmp_path / "crops", 4, prefix="dog-")
    with pytest.raises(ValueError, match="the folder has 2 groups"):
        make_split(tmp_path / "crops", tmp_path / "c", holdout=2, group_by=r"^(.+)-\d+$")


def test_runs_trained_on_another_split_are_refused_where_they_saw_held_out_images(image_dir, tmp_path):
    from colorization.split import check_trained_apart

    ours = make_split(image_dir, tmp_path / "ours", holdout=3, seed=0)
    other = make_split(image_dir, tmp_path / "other", holdout=3, seed=5)
    seen = sorted({path.stem for path in other.train} & {path.stem for path in ours.heldout})
    assert seen  # seed 5 trains on some of the images seed 0 holds out

    check_trained_apart(tmp_path / "ours", {"a": {"split": str(tmp_path / "ours")}, "released": {"split": None}})
    with pytest.raises(ValueError, match=f"run b was trained on the split .*other, whose training images include "
                                         f"{len(seen)} of the 3 held out .*{seen[0]}"):  # fmt: skip
        check_trained_apart(tmp_path / "ours", {"b": {"split": str(tmp_path / "other")}})
    with pytest.raises(ValueError, match="run c was trained on the split .*gone.*cannot be read"):
        check_trained_apart(tmp_path / "ours", {"c": {"split": str(tmp_path / "gone")}})


def test_group_by_that_groups_nothing_is_an_error_not_a_silent_leak(tmp_path, make_images):
    for photo in ("cat", "dog", "owl"):
        make_images(tmp_path / "crops", 3, prefix=f"{photo}-")
    with pytest.raises(ValueError, match="matches none of the 9 file stems"):
        make_split(tmp_path / "crops", tmp_path / "a", group_by=r"(.+)_\d+$")
    with pytest.raises(ValueError, match="puts every image in a group of its own"):
        make_split(tmp_path / "crops", tmp_path / "b", group_by=r".+-\d+$")
    assert make_split(tmp_path / "crops", tmp_path / "c", holdout=1, group_by=r"(.+)-\d+$").groups == 3
