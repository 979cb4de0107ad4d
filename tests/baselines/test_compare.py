import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from colorization.cli import main
from colorization.compare import compare, pick_images, summary_table
from colorization.gallery import gallery_figure
from colorization.metrics import METRIC_COLUMNS
from colorization.split import make_split, read_split

MODELS = ["perceptual", "koalarization"]


def test_compare_writes_table_per_image_scores_and_gallery(compare_split, trained_runs, tmp_path):
    out = tmp_path / "compare"
    result = compare(compare_split, trained_runs, out, n_rows=2, seed=0, device="cpu")

    heldout = [path.stem for path in read_split(compare_split).heldout]
    for name in MODELS:
        assert sorted(path.stem for path in (out / name).glob("*.png")) == sorted(heldout)
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["model"]) == MODELS
    assert (metrics["n_images"] == 3).all()
    for metric in METRIC_COLUMNS:
        assert (metrics[f"{metric}_ci_low"] <= metrics[metric]).all()
        assert (metrics[metric] <= metrics[f"{metric}_ci_high"]).all()
    per_image = pd.read_csv(out / "per_image.csv")
    assert list(per_image.columns) == ["model", "image", *METRIC_COLUMNS]
    assert len(per_image) == 2 * 3 and set(per_image["image"]) == set(heldout)

    assert len(result.gallery_images) == 2 and set(result.gallery_images) <= set(heldout)
    assert len(result.figure.axes) == 2 * (1 + len(MODELS) + 1)
    assert [ax.get_title() for ax in result.figure.axes[:4]] == ["grayscale", *MODELS, "ground truth"]
    assert "at random (seed 0)" in result.caption
    assert Image.open(out / "gallery.png").size[0] > 0
    assert (out / "gallery.pdf").read_bytes().startswith(b"%PDF")


def test_rerun_reuses_colorizations_and_picks_the_worst_rows(compare_split, trained_runs, tmp_path):
    out = tmp_path / "compare"
    compare(compare_split, trained_runs, out, device="cpu")
    written = {path: path.stat().st_mtime_ns for name in MODELS for path in (out / name).glob("*.png")}

    result = compare(compare_split, trained_runs, out, pick="worst", n_rows=6, device="cpu")
    assert {path: path.stat().st_mtime_ns for path in written} == written
    assert len(result.gallery_images) == 3  # only 3 held-out images
    assert len(result.figure.axes) == 3 * 4
    mean_psnr = result.per_image.groupby("image")["psnr"].mean()
    assert list(mean_psnr[result.gallery_images]) == sorted(mean_psnr)
    assert "lowest PSNR" in result.caption


def test_compare_refuses_colorizations_made_with_other_settings(compare_split, trained_runs, tmp_path):
    out = tmp_path / "compare"
    compare(compare_split, {"koalarization": trained_runs["koalarization"]}, out, device="cpu")
    with pytest.raises(ValueError, match="koalarization: holds colorizations"):
        compare(compare_split, {"koalarization": trained_runs["koalarization"]}, out, device="cpu", saturation=1.4)
    with pytest.raises(ValueError, match="run name 'metrics.csv'"):
        compare(compare_split, {"metrics.csv": trained_runs["koalarization"]}, out, device="cpu")


def test_compare_command(compare_split, trained_runs, tmp_path, capsys):
    out = tmp_path / "compare"
    runs = [f"--run={name}={trained_runs[name]}" for name in MODELS]
    argv = ["compare", "--split", str(compare_split), *runs, "--out", str(out), "--pick", "best", "--rows", "1"]
    assert main([*argv, "--device", "cpu"]) == 0
    assert list(pd.read_csv(out / "metrics.csv")["model"]) == MODELS
    assert (out / "gallery.png").is_file() and (out / "gallery.pdf").is_file()
    assert main(["compare", "--split", str(compare_split), "--run", f"x={tmp_path}", "--out", str(out)]) == 2
    assert "last.pt: no such checkpoint" in capsys.readouterr().err


def test_another_tools_outputs_join_the_comparison_and_the_recipes_are_shown(compare_split, trained_runs, tmp_path):
    # "ddcolor" stands for a tool this package cannot run: its .jpg outputs (ground truths with shifted colour)
    # are scored and drawn as they are.
    ddcolor = tmp_path / "ddcolor-outputs"
    ddcolor.mkdir()
    for truth in read_split(compare_split).heldout:
        pixels = np.asarray(Image.open(truth).convert("RGB")).astype(int)
        Image.fromarray(np.clip(pixels + [30, 0, -30], 0, 255).astype(np.uint8)).save(ddcolor / f"{truth.stem}.jpg")
    out = tmp_path / "compare"
    result = compare(compare_split, {"koalarization": trained_runs["koalarization"]}, out,
                     outputs={"ddcolor": ddcolor}, device="cpu")  # fmt: skip

    assert list(result.metrics["model"]) == ["koalarization", "ddcolor"]
    assert not (out / "ddcolor").exists()  # nothing colorized or copied for it
    ddcolor_psnr = result.per_image.query("model == 'ddcolor'")["psnr"]
    assert (ddcolor_psnr > 15).all() and (ddcolor_psnr < 40).all()  # its own pictures, not a blank or a copy
    assert [ax.get_title() for ax in result.figure.axes[:4]] == ["grayscale", "koalarization", "ddcolor",
                                                                  "ground truth"]  # fmt: skip

    recipes = pd.read_csv(out / "recipes.csv").set_index("model")
    koala = recipes.loc["koalarization"]
    # The fixture's tiny run keeps Koalarization's Adam and MSE, but not its batch, size or schedule.
    assert (koala["model_name"], koala["optimizer"], koala["loss"], koala["batch_size"]) == (
        "koalarization",
        "adam",
        "mse",
        4,
    )
    # Only what Koalarization reads counts: the fixture's --vgg-weights none does not.
    assert koala["changed_from_recipe"] == (
        '--batch-size, --image-size, learning rates, irv2_model="test_resnet", irv2_weights="none", width=0.125'
    )
    assert koala["epochs"] == 1
    assert recipes.loc["ddcolor", "changed_from_recipe"] == "unknown"
    assert recipes.loc["ddcolor", "source"] == f"outputs {ddcolor}"

    next(ddcolor.glob("*.jpg")).unlink()
    with pytest.raises(FileNotFoundError, match="1 of 3 predictions missing"):
        compare(compare_split, {}, tmp_path / "again", outputs={"ddcolor": ddcolor}, device="cpu")
    with pytest.raises(ValueError, match="either a run or a folder of outputs"):
        compare(compare_split, {"x": trained_runs["koalarization"]}, out, outputs={"x": ddcolor}, device="cpu")


def test_a_run_is_never_scored_on_images_it_trained_on(compare_split, trained_runs, tmp_path):
    # The same photos split with another seed: some of its held-out images are the runs' training images.
    root = read_split(compare_split).root
    make_split(root, tmp_path / "reshuffled", holdout=3, seed=4)
    with pytest.raises(ValueError, match="run perceptual was trained on the split .*whose training images include"):
        compare(tmp_path / "reshuffled", trained_runs, tmp_path / "compare", device="cpu")
    assert not (tmp_path / "compare" / "perceptual").exists()


def test_evaluate_command_scores_named_output_folders(compare_split, tmp_path, capsys):
    folders = {}
    for name, shift in (("good", 5), ("bad", 60)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        for truth in read_split(compare_split).heldout:
            pixels = np.asarray(Image.open(truth).convert("RGB")).astype(int)
            Image.fromarray(np.clip(pixels + shift, 0, 255).astype(np.uint8)).save(folders[name] / f"{truth.stem}.png")
    argv = ["evaluate", "--split", str(compare_split), *(f"--outputs={name}={path}" for name, path in folders.items())]
    assert main(argv) == 0
    assert "good (" in capsys.readouterr().out
    good, bad = (pd.read_csv(tmp_path / f"{name}.metrics.csv") for name in ("good", "bad"))
    assert (good["psnr"] > bad["psnr"]).all()


def test_summary_table_bootstraps_a_seeded_interval_around_each_mean():
    rng = np.random.default_rng(0)
    per_image = pd.DataFrame({"model": ["a"] * 40 + ["b"] * 40, "image": [f"i{k}" for k in range(40)] * 2})
    for metric in METRIC_COLUMNS:
        per_image[metric] = rng.normal(10, 2, size=80)
    per_image.loc[0, "psnr"] = math.inf

    table = summary_table(per_image, seed=3)
    assert list(table["model"]) == ["a", "b"]
    assert table.loc[0, "psnr_inf_count"] == 1
    assert table.loc[0, "psnr"] == pytest.approx(per_image["psnr"][1:40].mean())
    assert table.loc[1, "ssim"] == pytest.approx(per_image["ssim"][40:].mean())
    width = table["ssim_ci_high"] - table["ssim_ci_low"]
    # A 95% interval of a mean of 40 values with sd 2 is about 2 * 1.96 * 2 / sqrt(40) = 1.24 wide.
    assert ((width > 0.8) & (width < 1.8)).all()
    assert summary_table(per_image, seed=3).equals(table)


def test_summary_table_leaves_the_interval_of_a_single_image_undefined():
    per_image = pd.DataFrame([{"model": "a", "image": "x", **{metric: 1.0 for metric in METRIC_COLUMNS}}])
    row = summary_table(per_image, seed=0).iloc[0]
    assert row["psnr"] == 1.0 and math.isnan(row["psnr_ci_low"]) and math.isnan(row["psnr_ci_high"])


def test_pick_images():
    stems = [f"s{k:02d}" for k in range(20)]
    per_image = pd.DataFrame(
        {
            "model": ["a"] * 20 + ["b"] * 20,
            "image": stems * 2,
            "psnr": [float(k) for k in range(20)] + [float(20 - k) for k in range(19)] + [math.inf],
        }
    )
    chosen = pick_images(per_image, stems, "random", 5, seed=1)
    assert chosen == pick_images(per_image, stems, "random", 5, seed=1)
    assert len(set(chosen)) == 5 and chosen == sorted(chosen)
    assert chosen != pick_images(per_image, stems, "random", 5, seed=2)
    # Mean PSNR is 10 for s00..s18 (ties kept in split order) and inf for s19.
    assert pick_images(per_image, stems, "worst", 2, seed=0) == ["s00", "s01"]
    assert pick_images(per_image, stems, "best", 2, seed=0) == ["s19", "s00"]


def test_gallery_figure_lays_out_rows_and_caption():
    gray = Image.new("L", (20, 16), 90)
    colour = np.zeros((16, 20, 3), dtype=np.uint8)
    rows = [
        {"title": f"row{k}", "images": [gray, colour, colour], "labels": ["grayscale", "m", "ground truth"]}
        for k in range(3)
    ]
    figure = gallery_figure(rows, "Rows: chosen at random (seed 4).")
    assert len(figure.axes) == 9
    assert [ax.get_title() for ax in figure.axes[:3]] == ["grayscale", "m", "ground truth"]
    assert all(ax.get_title() == "" for ax in figure.axes[3:])  # same columns: labelled once
    assert [figure.axes[k].get_ylabel() for k in (0, 3, 6)] == ["row0", "row1", "row2"]
    assert figure.get_supxlabel() == "Rows: chosen at random (seed 4)."
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        gallery_figure([{"title": "r", "images": [gray, gray], "labels": ["x"]}], "c")


def test_gallery_module_does_not_import_torch():
    code = "import sys, colorization.gallery; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
