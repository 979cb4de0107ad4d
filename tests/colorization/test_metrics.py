import math
import shutil

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from colorization.metrics import (
    METRIC_COLUMNS,
    ab_auc,
    ab_distances,
    colourfulness,
    default_metrics_path,
    evaluate,
    format_table,
    image_metrics,
    psnr,
    ssim,
    summarize,
)
from colorization.split import read_split


def uniform(rgb, size=(16, 24)):
    return np.full((*size, 3), rgb, dtype=np.uint8)


def test_psnr_of_identical_images_is_infinite_and_of_a_known_error_exact():
    image = np.random.default_rng(0).integers(0, 246, size=(20, 30, 3), dtype=np.uint8)
    assert psnr(image, image) == math.inf
    # Every value off by 10: MSE = 100, PSNR = 10 log10(255^2 / 100).
    assert psnr(image + 10, image) == pytest.approx(10 * math.log10(255**2 / 100))


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    image = np.random.default_rng(1).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(255 - image, image) < 0.5
    assert ssim(image[:5, :5], image[:5, :5]) == pytest.approx(1.0)  # smaller than the 7x7 window


def test_ab_error_and_auc_of_constructed_colours():
    gray, warm = uniform((120, 120, 120)), uniform((130, 120, 110))
    distance = np.linalg.norm(rgb2lab(warm[:1, :1])[0, 0, 1:] - rgb2lab(gray[:1, :1])[0, 0, 1:])

    assert ab_distances(gray, gray).max() == 0
    assert ab_auc(ab_distances(gray, gray)) == 1.0
    scores = image_metrics(warm, gray)
    assert scores["ab_error"] == pytest.approx(distance)
    # Every pixel is off by `distance`: the cumulative curve is 0 below it and 1 above.
    assert scores["auc"] == pytest.approx(1 - distance / 150, abs=1 / 150)
    far = ab_distances(uniform((255, 0, 255)), uniform((0, 255, 0)))
    assert far.min() > 150 and ab_auc(far) == 0.0


def test_colourfulness_is_hasler_suesstrunk_without_absolute_values():
    assert colourfulness(uniform((90, 90, 90))) == 0
    # Pure red: rg = 255, yb = 127.5, no spread: 0.3 * sqrt(255^2 + 127.5^2).
    assert colourfulness(uniform((255, 0, 0))) == pytest.approx(0.3 * math.hypot(255, 127.5))
    # Half red, half green: rg = +-255 (mean 0, std 255), yb = 127.5. With |rg| the mean term would be
    # 0.3 * hypot(255, 127.5) instead of 0.3 * 127.5.
    red_green = np.concatenate([uniform((255, 0, 0)), uniform((0, 255, 0))])
    assert colourfulness(red_green) == pytest.approx(255 + 0.3 * 127.5)


def test_mismatched_sizes_are_an_error():
    with pytest.raises(ValueError, match="24x16.*30x16"):
        image_metrics(uniform((1, 2, 3)), uniform((1, 2, 3), size=(16, 30)))


def test_evaluate_scores_every_heldout_image_and_names_problems(split_dir, tmp_path):
    heldout = read_split(split_dir).heldout
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(heldout[0], pred / f"{heldout[0].stem}.png")  # a perfect prediction
    for path in heldout[1:]:
        Image.open(path).convert("L").convert("RGB").save(pred / f"{path.stem}.png")  # colour lost

    per_image = evaluate(pred, split_dir)
    assert list(per_image.columns) == ["image", *METRIC_COLUMNS]
    assert list(per_image["image"]) == [path.stem for path in heldout]
    perfect, grayed = per_image.iloc[0], per_image.iloc[1]
    assert perfect["psnr"] == math.inf and perfect["auc"] == 1.0 and perfect["ab_error"] == 0
    assert grayed["colourfulness"] == pytest.approx(0, abs=1e-9) and grayed["ab_error"] > 1

    means = summarize(per_image)
    assert means["psnr"] == pytest.approx(per_image["psnr"].iloc[1:].mean())
    assert means["auc"] == pytest.approx(per_image["auc"].mean())
    table = format_table(per_image)
    assert table.splitlines()[-2].split()[0] == "mean" and "(1 image(s) identical" in table

    (pred / f"{heldout[1].stem}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"pred: 1 of 3 predictions missing .*: {heldout[1].stem} "):
        evaluate(pred, split_dir)
    Image.new("RGB", (5, 7)).save(pred / f"{heldout[1].stem}.png")
    with pytest.raises(ValueError, match=f"{heldout[1].stem}.png.*5x7"):
        evaluate(pred, split_dir)


def test_evaluate_checks_the_folder_and_every_prediction_before_scoring(split_dir, tmp_path, monkeypatch):
    with pytest.raises(NotADirectoryError, match="predictoins: no such folder of predictions"):
        evaluate(tmp_path / "predictoins", split_dir)
    (tmp_path / "pred").mkdir()
    # A half-finished colorize is reported in full and at once: nothing is loaded before.
    monkeypatch.setattr("colorization.metrics.load_image", lambda path: pytest.fail(f"loaded {path}"))
    names = ", ".join(path.stem for path in read_split(split_dir).heldout)
    with pytest.raises(FileNotFoundError, match=f"3 of 3 predictions missing for the split's heldout images: {names}"):
        evaluate(tmp_path / "pred", split_dir)


def test_default_metrics_path_is_beside_the_predictions(tmp_path, monkeypatch):
    assert default_metrics_path(tmp_path / "pred") == tmp_path / "pred.metrics.csv"
    (tmp_path / "pred" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "pred" / "sub")
    # "." and ".." have no name of their own to add the suffix to.
    assert default_metrics_path(".") == tmp_path.resolve() / "pred" / "sub.metrics.csv"
    assert default_metrics_path("..") == tmp_path.resolve() / "pred.metrics.csv"
