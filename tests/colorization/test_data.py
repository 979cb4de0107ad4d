import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from colorization.data import (
    ColorizationDataset,
    SkippedImageWarning,
    collate_skip_none,
    eval_transform,
    has_images,
    train_transform,
)
from colorization.lab import lab_norm_to_rgb


def test_eval_transform_is_deterministic_center_crop():
    image = Image.new("RGB", (60, 30), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 8, 30))  # a red left edge, cut away by the center crop
    out = eval_transform(image, 16)
    assert out.size == (16, 16)
    assert eval_transform(image, 16).tobytes() == out.tobytes()
    assert out.getpixel((0, 8)) == (0, 0, 255)


def test_train_transform_crops_randomly_and_flips():
    image = Image.linear_gradient("L").rotate(90).resize((64, 32)).convert("RGB")  # varies along x
    torch.manual_seed(0)
    crops = {train_transform(image, 16).tobytes() for _ in range(20)}
    assert all(len(crop) == 16 * 16 * 3 for crop in crops)
    assert len(crops) > 2
    flat = Image.new("RGB", (16, 16))
    flat.paste((255, 0, 0), (0, 0, 8, 16))
    left_pixels = {train_transform(flat, 16).getpixel((0, 0)) for _ in range(20)}
    assert left_pixels == {(255, 0, 0), (0, 0, 0)}


def test_dataset_items(make_images, tmp_path):
    paths = make_images(tmp_path, 3)
    dataset = ColorizationDataset(paths, image_size=32, train=False)
    item = dataset[1]
    assert item["L"].shape == (1, 32, 32) and item["ab"].shape == (2, 32, 32) and item["rgb"].shape == (3, 32, 32)
    assert item["index"] == 1
    assert 0 <= item["L"].min() and item["L"].max() <= 1
    assert item["ab"].abs().max() < 1
    rebuilt = lab_norm_to_rgb(item["L"][None], item["ab"][None])[0]
    assert torch.allclose(rebuilt, item["rgb"], atol=1e-4)


def test_corrupt_and_grayscale_files_skipped_counted_never_fatal(make_images, tmp_path):
    paths = make_images(tmp_path, 4)
    corrupt, gray = tmp_path / "corrupt.jpg", tmp_path / "gray.png"
    corrupt.write_bytes(b"garbage")
    Image.new("L", (40, 40), 100).save(gray)
    dataset = ColorizationDataset([paths[0], corrupt, paths[1], gray, paths[2], paths[3]], image_size=32, train=True)

    with pytest.warns(SkippedImageWarning) as warned:
        batches = list(DataLoader(dataset, batch_size=2, collate_fn=collate_skip_none))
    messages = " ".join(str(warning.message) for warning in warned)
    assert "corrupt.jpg: unreadable" in messages and "gray.png: grayscale" in messages
    assert dataset.skipped == 2
    assert [batch["L"].shape[0] for batch in batches] == [1, 1, 2]
    assert sum(int(batch["skipped"]) for batch in batches) == 2
    assert torch.cat([batch["index"] for batch in batches]).tolist() == [0, 2, 4, 5]


def test_batch_of_only_skipped_items_keeps_only_their_count():
    batch = collate_skip_none([None, None])
    assert not has_images(batch) and int(batch["skipped"]) == 2
