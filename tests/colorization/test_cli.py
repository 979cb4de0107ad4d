import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import colorization.compare
from colorization.cli import build_parser, main
from colorization.metrics import METRIC_COLUMNS
from colorization.split import read_split
from colorization.train import LOG_COLUMNS
from tests.colorization.conftest import write_color_images

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args):
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "colorization", *map(str, args)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_split_train_colorize_evaluate_through_python_m_colorization(tmp_path):
    write_color_images(tmp_path / "images", 6, size=(44, 36))
    run_cli("split", "--images", tmp_path / "images", "--out", tmp_path / "split", "--holdout", 2)
    run_cli(
        "train", "--model", "perceptual", "--split", tmp_path / "split", "--out", tmp_path / "run",
        "--image-size", 32, "--batch-size", 4, "--workers", 0, "--max-steps", 2, "--lr", "1e-3",
        "--vgg-weights", "none", "--vgg-layers", "relu1_2", "--model-opt", "width=0.125", "--no-progress",
    )  # fmt: skip
    run_cli("colorize", "--checkpoint", tmp_path / "run" / "last.pt", "--split", tmp_path / "split",
            "--out", tmp_path / "pred", "--saturation", 1.4)  # fmt: skip
    printed = run_cli("evaluate", "--pred", tmp_path / "pred", "--split", tmp_path / "split")

    with (tmp_path / "run" / "log.csv").open() as file:
        assert next(csv.reader(file)) == list(LOG_COLUMNS)
    heldout = read_split(tmp_path / "split").heldout
    assert sorted(path.name for path in (tmp_path / "pred").glob("*.png")) == sorted(f"{p.stem}.png" for p in heldout)
    assert all(Image.open(path).size == (44, 36) for path in (tmp_path / "pred").glob("*.png"))
    # Beside the predictions, not among them: the folder is what create_study imports.
    assert not (tmp_path / "pred" / "metrics.csv").exists()
    with (tmp_path / "pred.metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["image", *METRIC_COLUMNS] and len(rows) == 2
    assert "mean" in printed and f"per-image metrics written to {tmp_path / 'pred.metrics.csv'}" in printed


def test_input_errors_print_one_line_and_exit_2(tiny_run, tmp_path, capsys):
    assert main(["evaluate", "--pred", str(tmp_path), "--split", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "missing" in error and error.count("\n") == 1

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a png")
    checkpoint = tiny_run["run"] / "last.pt"
    arguments = ["--checkpoint", str(checkpoint), "--images", str(tmp_path / "photos"), "--out", str(tmp_path / "out")]
    assert main(["colorize", *arguments]) == 2
    error = capsys.readouterr().err
    assert "broken.png" in error and "Traceback" not in error


def test_split_with_a_holdout_larger_than_the_folder_says_what_to_pass(tmp_path, capsys):
    write_color_images(tmp_path / "images", 12)
    assert main(["split", "--images", str(tmp_path / "images"), "--out", str(tmp_path / "split"),
                 "--holdout", "5000"]) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert error == (
        f"error: {(tmp_path / 'images').resolve()}: --holdout 5000 leaves no images to train on: the folder has 12 "
        "images, so pass a number from 1 to 11 (e.g. --holdout 1), or a fraction with --holdout-frac 0.1\n"
    )
    assert not (tmp_path / "split").exists()


def test_evaluate_writes_beside_the_predictions_or_where_asked(monkeypatch, tmp_path, capsys):
    import pandas as pd

    import colorization.metrics

    table = pd.DataFrame([{"image": "a", **{column: 1.0 for column in METRIC_COLUMNS}}])
    monkeypatch.setattr(colorization.metrics, "evaluate", lambda pred, split, subset: table)
    (tmp_path / "pred").mkdir()
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--split", str(tmp_path)]) == 0
    assert (tmp_path / "pred.metrics.csv").is_file() and list((tmp_path / "pred").iterdir()) == []
    assert f"per-image metrics written to {tmp_path / 'pred.metrics.csv'}" in capsys.readouterr().out
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--split", str(tmp_path),
                 "--csv", str(tmp_path / "elsewhere.csv")]) == 0  # fmt: skip
    assert (tmp_path / "elsewhere.csv").is_file()


def test_train_options_reach_the_config_and_only_given_ones_override_a_resume():
    parser = build_parser()
    args = parser.parse_args(
        ["train", "--out", "run", "--resume", "--epochs", "7", "--model-opt", "width=0.25", "activation=tanh",
         "down_layers=[4,6]", "batch_norm=false", "--vgg-layers", "relu1_2,relu3_3", "--vgg-layer-weights", "1,0.5"]
    )  # fmt: skip
    given = vars(args)
    expected = {"width": 0.25, "activation": "tanh", "down_layers": [4, 6], "batch_norm": False}
    assert dict(given["model_opts"]) == expected
    assert given["vgg_layers"] == ("relu1_2", "relu3_3") and given["vgg_layer_weights"] == (1.0, 0.5)
    assert "batch_size" not in given and "seed" not in given  # left to the run's stored settings


def test_train_without_model_or_split_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2 and "--model and --split" in capsys.readouterr().err


def test_compare_passes_named_runs(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(colorization.compare, "compare", lambda *args, **kwargs: calls.append((args, kwargs)))
    status = main(
        ["compare", "--split", "s", "--run", "perceptual=runs/a", "--run", "koalarization=runs/b", "--out", "c",
         "--pick", "worst", "--rows", "3", "--seed", "5"]
    )  # fmt: skip
    assert status == 0
    [(args, kwargs)] = calls
    assert args == (Path("s"), {"perceptual": Path("runs/a"), "koalarization": Path("runs/b")}, Path("c"))
    assert kwargs == dict(pick="worst", n_rows=3, seed=5, device="auto", saturation=None)


def test_plot_curves_from_the_log(tiny_run, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", "--run", str(tiny_run["run"]), "--out", str(out)]) == 0
    with Image.open(out) as figure:
        assert figure.size[0] > 400
