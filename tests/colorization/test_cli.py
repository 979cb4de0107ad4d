import csv
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from PIL import Image

import colorization.compare
import colorization.models
import colorization.split
from colorization.cli import build_parser, main
from colorization.errors import ConfigError
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


def test_a_user_error_is_one_line_and_any_other_error_keeps_its_traceback(monkeypatch, tmp_path, capsys):
    argv = ["split", "--images", str(tmp_path), "--out", str(tmp_path / "split")]

    def refuse(*args, **kwargs):
        raise ConfigError("--holdout 3 is too many")

    monkeypatch.setattr(colorization.split, "make_split", refuse)
    assert main(argv) == 2
    assert capsys.readouterr().err == "error: --holdout 3 is too many\n"

    def bug(*args, **kwargs):
        raise ValueError("a bug, not the user's input")

    monkeypatch.setattr(colorization.split, "make_split", bug)
    with pytest.raises(ValueError, match="a bug, not the user's input"):
        main(argv)
    assert capsys.readouterr().err == ""


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


def test_compare_passes_named_runs_and_outputs_and_prints_the_recipes(monkeypatch, capsys):
    calls = []
    recipes = pd.DataFrame({"model": ["perceptual"], "source": ["runs/a/last.pt"], "changed_from_recipe": ["lr"]})

    def fake_compare(*args, **kwargs):
        calls.append((args, kwargs))
        return SimpleNamespace(recipes=recipes)

    monkeypatch.setattr(colorization.compare, "compare", fake_compare)
    status = main(
        ["compare", "--split", "s", "--run", "perceptual=runs/a", "--run", "koalarization=runs/b", "--out", "c",
         "--outputs", "ddcolor=elsewhere/ddcolor", "--pick", "worst", "--rows", "3", "--seed", "5"]
    )  # fmt: skip
    assert status == 0
    [(args, kwargs)] = calls
    assert args == (Path("s"), {"perceptual": Path("runs/a"), "koalarization": Path("runs/b")}, Path("c"))
    assert kwargs == dict(outputs={"ddcolor": Path("elsewhere/ddcolor")}, pick="worst", n_rows=3, seed=5,
                          device="auto", saturation=None)  # fmt: skip
    assert "changed_from_recipe" in capsys.readouterr().out

    for argv in (["--run", "a=x", "--run", "a=y"], []):
        with pytest.raises(SystemExit):
            main(["compare", "--split", "s", "--out", "c", *argv])
    assert "needs its own NAME" in capsys.readouterr().err


def test_a_model_from_any_module_trains_and_its_checkpoint_finds_it_again(monkeypatch, tmp_path):
    # A third-party model in a module of its own, joined with --model-module; colorizing its checkpoint later
    # needs no option: the checkpoint names the module.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_colorizer.py").write_text(
        "from torch import nn\n"
        "from colorization.models import Recipe, register_model\n"
        "@register_model('flat_brown', recipe=Recipe(source='test', loss='mse', optimizer='adam', "
        "schedule='1:1e-2', batch_size=4, image_size=32))\n"
        "class FlatBrown(nn.Module):\n"
        "    output_space = 'ab'\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 2, 1)\n"
        "    def forward(self, L):\n"
        "        return self.conv(L)\n"
    )
    monkeypatch.syspath_prepend(str(plugins))
    write_color_images(tmp_path / "images", 6)
    assert main(["split", "--images", str(tmp_path / "images"), "--out", str(tmp_path / "split"), "--holdout=2"]) == 0
    train_argv = ["train", "--model", "flat_brown", "--split", str(tmp_path / "split"), "--out", str(tmp_path / "run"),
                  "--workers", "0", "--max-steps", "2", "--no-progress"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown model 'flat_brown'.*--model-module"):
        main(["--traceback", *train_argv])
    assert main(["train", "--model-module", "my_colorizer", *train_argv[1:]]) == 0
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert checkpoint["model_module"] == "my_colorizer" and checkpoint["config"]["batch_size"] == 4

    monkeypatch.delitem(sys.modules, "my_colorizer")
    monkeypatch.delitem(colorization.models._builders, "flat_brown")
    out = tmp_path / "colorized"
    assert main(["colorize", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--split", str(tmp_path / "split"),
                 "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    assert len(list(out.glob("*.png"))) == 2 and "my_colorizer" in sys.modules

    # Resuming and a compare rerun (which colorizes nothing) find the model through the checkpoint too.
    monkeypatch.delitem(sys.modules, "my_colorizer")
    monkeypatch.delitem(colorization.models._builders, "flat_brown")
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--epochs", "3"]) == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 3
    compare_argv = ["compare", "--split", str(tmp_path / "split"), "--run", f"flat={tmp_path / 'run'}",
                    "--out", str(tmp_path / "compare"), "--device", "cpu"]  # fmt: skip
    assert main(compare_argv) == 0
    monkeypatch.delitem(sys.modules, "my_colorizer")
    monkeypatch.delitem(colorization.models._builders, "flat_brown")
    assert main(compare_argv) == 0


def test_a_model_module_that_does_not_exist_is_named(capsys):
    assert main(["train", "--model-module", "no_such_colorizer", "--model", "x", "--split", "s", "--out", "o"]) == 2
    assert "model module 'no_such_colorizer' cannot be imported" in capsys.readouterr().err


def test_plot_curves_from_the_log(tiny_run, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", "--run", str(tiny_run["run"]), "--out", str(out)]) == 0
    with Image.open(out) as figure:
        assert figure.size[0] > 400
