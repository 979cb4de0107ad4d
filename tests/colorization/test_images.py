import numpy as np
import pytest
import tifffile
from PIL import Image

from colorization.images import ImageError, find_images, is_image_file, load_image


def pixel(image, xy=(0, 0)):
    return np.asarray(image)[xy[1], xy[0]].tolist()


def test_rgb_png_loads_unchanged(make_images, tmp_path):
    (path,) = make_images(tmp_path, 1)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (48, 40)
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(path)))


@pytest.mark.parametrize("content", [b"", b"this is not an image", "truncated"])
def test_corrupt_file_raises_image_error_naming_it(make_images, tmp_path, content):
    (valid,) = make_images(tmp_path, 1)
    path = tmp_path / "broken.png"
    path.write_bytes(valid.read_bytes()[:200] if content == "truncated" else content)
    with pytest.raises(ImageError, match="broken.png: unreadable or corrupt"):
        load_image(path)


def test_missing_file_raises_image_error(tmp_path):
    with pytest.raises(ImageError, match="absent.jpg: no such file"):
        load_image(tmp_path / "absent.jpg")


def test_cmyk_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    image = load_image(path, allow_gray=False)
    assert image.mode == "RGB"
    red, green, blue = pixel(image, (8, 8))
    assert red > 240 and green < 15 and blue < 15


def test_grayscale_allowed_or_rejected(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (16, 16), 77).save(gray)
    assert pixel(load_image(gray)) == [77, 77, 77]
    with pytest.raises(ImageError, match="gray.png: grayscale"):
        load_image(gray, allow_gray=False)


def test_gray_photo_saved_as_rgb_counts_as_grayscale(tmp_path):
    path = tmp_path / "gray_rgb.png"
    Image.new("RGB", (16, 16), (90, 90, 90)).save(path)
    with pytest.raises(ImageError, match="grayscale"):
        load_image(path, allow_gray=False)


def test_16bit_grayscale_scaled_to_8bit(tmp_path):
    path = tmp_path / "deep.png"
    levels = np.array([[0, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(path)
    assert Image.open(path).mode.startswith("I")
    assert np.asarray(load_image(path))[0, :, 0].tolist() == [0, 128, 255]


def test_16bit_rgb_reduced_to_8bit(tmp_path):
    path = tmp_path / "deep_rgb.tif"
    tifffile.imwrite(path, np.tile(np.array([65535, 32896, 2570], dtype=np.uint16), (4, 4, 1)))
    assert pixel(load_image(path, allow_gray=False)) == [255, 128, 10]


@pytest.mark.parametrize(("mode", "colour", "expected"), [
    ("RGBA", (255, 0, 0, 0), [255, 255, 255]),
    ("RGBA", (255, 0, 0, 255), [255, 0, 0]),
    ("RGBA", (0, 0, 255, 128), [127, 127, 255]),
    ("LA", (0, 128), [127, 127, 127]),
])  # fmt: skip
def test_alpha_composited_on_white(tmp_path, mode, colour, expected):
    path = tmp_path / "alpha.png"
    Image.new(mode, (8, 8), colour).save(path)
    assert pixel(load_image(path)) == pytest.approx(expected, abs=1)


def test_palette_expanded_with_transparency_on_white(tmp_path):
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 200, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 1), 1)
    opaque, transparent = tmp_path / "palette.png", tmp_path / "palette_transparent.png"
    image.save(opaque)
    image.save(transparent, transparency=0)
    assert pixel(load_image(opaque)) == [0, 200, 0]
    assert pixel(load_image(opaque), (1, 1)) == [10, 20, 30]
    assert pixel(load_image(transparent)) == [255, 255, 255]
    assert pixel(load_image(transparent), (1, 1)) == [10, 20, 30]


def test_exif_orientation_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (40, 20), (200, 30, 30)).save(path, exif=exif)
    assert load_image(path).size == (20, 40)


def test_find_images_recursive_sorted_by_extension(tmp_path, make_images):
    make_images(tmp_path / "b", 2)
    make_images(tmp_path / "a" / "deep", 1, prefix="z")
    (tmp_path / "a" / "upper.JPG").write_bytes(b"not opened here")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.png").write_bytes(b"")
    (tmp_path / "._resource.png").write_bytes(b"")
    found = [path.relative_to(tmp_path).as_posix() for path in find_images(tmp_path)]
    assert found == ["a/deep/z00.png", "a/upper.JPG", "b/img00.png", "b/img01.png"]


@pytest.mark.parametrize("name, expected", [
    ("a.jpg", True), ("a.JPEG", True), ("a.png", True), ("a.webp", True), ("a.tif", True), ("a.bmp", True),
    ("metrics.csv", False), ("notes.txt", False), ("photo", False), ("._a.jpg", False), (".png", False),
])  # fmt: skip
def test_is_image_file_decides_by_name_only(name, expected):
    # Nothing is opened: the names do not exist.
    assert is_image_file(f"/nowhere/{name}") is expected


def test_find_images_rejects_missing_folder(tmp_path):
    with pytest.raises(NotADirectoryError, match="nowhere"):
        find_images(tmp_path / "nowhere")
