"""What a person at the terminal sees: the progress bar, Ctrl-C, and the order of the argument checks."""

import os
import re
import signal

import pytest

import colorization.backbones
import colorization.train
from colorization.checkpoint import LAST_NAME, load_checkpoint
from colorization.cli import main
from colorization.config import TrainConfig
from colorization.split import make_split
from colorization.train import TrainingStopped, train
from tests.colorization.conftest import TINY_TRAINING, write_color_images


@pytest.fixture
def ten_image_split(tmp_path):
    """8 training and 2 held-out images: 2 steps per epoch in batches of 4."""
    write_color_images(tmp_path / "images", 10, seed=5)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    return tmp_path / "split"


def train_arguments(split, out, *extra):
    return ["train", "--model", "perceptual", "--split", str(split), "--out", str(out), "--image-size", "32",
            "--batch-size", "4", "--workers", "0", "--lr", "1e-3", "--vgg-weights", "none", "--loss", "mse",
            "--model-opt", "width=0.125", "--no-progress", *extra]  # fmt: skip


def last_bar(stderr: str) -> str:
    """The bar as it was last drawn (tqdm redraws in place with carriage returns)."""
    return re.split(r"[\r\n]+", stderr.strip())[-1]


def test_the_bar_counts_steps_up_to_max_steps_across_epochs_and_ends_full(ten_image_split, tmp_path, capsys):
    # 5 steps are 2.5 epochs of the 100-epoch schedule: the bar must count steps, not one epoch's batches.
    options = dict(TINY_TRAINING, loss="mse", progress=True)
    train(TrainConfig(model="perceptual", split=ten_image_split, out=tmp_path / "run", max_steps=5, lr=1e-3, **options))
    bar = last_bar(capsys.readouterr().err)
    assert "100%" in bar and " 5/5 " in bar and bar.startswith("epoch 3/100"), bar

    # A resumed run starts its bar where the checkpoint stopped and ends at its own --max-steps.
    train(colorization.train.config_for_resume(tmp_path / "run", max_steps=8))
    stderr = capsys.readouterr().err
    assert " 5/8 " in stderr
    assert "100%" in last_bar(stderr) and " 8/8 " in last_bar(stderr)


def test_without_max_steps_the_bar_counts_the_whole_schedule(ten_image_split, tmp_path, capsys):
    options = dict(TINY_TRAINING, loss="mse", progress=True)
    train(TrainConfig(model="perceptual", split=ten_image_split, out=tmp_path / "run", epochs=3, lr=1e-3, **options))
    bar = last_bar(capsys.readouterr().err)
    assert "100%" in bar and " 6/6 " in bar and bar.startswith("epoch 3/3"), bar


def interrupt_during_steps(monkeypatch, *steps_and_presses):
    """Make the training step numbered `step` (from 1) press Ctrl-C `presses` times, as a terminal would."""
    presses_at = dict(steps_and_presses)
    real_step, done = colorization.train.train_step, []

    def step_with_ctrl_c(*args):
        done.append(1)
        for _ in range(presses_at.get(len(done), 0)):
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args)

    monkeypatch.setattr(colorization.train, "train_step", step_with_ctrl_c)


def stopped_by_ctrl_c(monkeypatch, capfd, split, run, presses):
    """Train run to 6 steps with Ctrl-C pressed as interrupt_during_steps(presses) says; its stderr, once the
    command has exited with 130 and printed no traceback."""
    interrupt_during_steps(monkeypatch, presses)
    with pytest.raises(SystemExit) as exit_info:
        main(train_arguments(split, run, "--max-steps", "6"))
    assert exit_info.value.code == 130
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr
    return stderr


def test_ctrl_c_finishes_the_step_saves_it_and_prints_one_line_on_how_to_resume(
    ten_image_split, tmp_path, monkeypatch, capfd
):
    run = tmp_path / "run"
    # What the test runner started with: Python's handler, or SIG_IGN under a shell that ran it in the background.
    before = signal.getsignal(signal.SIGINT)
    stderr = stopped_by_ctrl_c(monkeypatch, capfd, ten_image_split, run, (3, 1))
    [resume_line] = [line for line in stderr.splitlines() if "--resume" in line]
    assert resume_line == (f"stopped at step 3, saved in {run / LAST_NAME}; continue with: "
                           f"python -m colorization train --resume --out {run} --max-steps 6")  # fmt: skip
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    # The step in progress was finished, not cut: the checkpoint holds it, mid-epoch, with the held-out
    # evaluation left out.
    stopped = load_checkpoint(run / LAST_NAME)
    assert (stopped["epoch"], stopped["batch_in_epoch"], stopped["step"]) == (1, 1, 3)

    # The printed command continues it exactly as an uninterrupted run goes.
    monkeypatch.undo()
    assert main(train_arguments(ten_image_split, run, "--resume", "--max-steps", "6")) == 0
    assert main(train_arguments(ten_image_split, tmp_path / "whole", "--max-steps", "6")) == 0
    resumed, whole = load_checkpoint(run / LAST_NAME), load_checkpoint(tmp_path / "whole" / LAST_NAME)
    assert resumed["step"] == whole["step"] == 6
    for key, value in whole["model_state"].items():
        assert (resumed["model_state"][key].float() - value.float()).abs().max() < 1e-6, key


def test_a_second_ctrl_c_stops_at_once_and_names_the_last_checkpoint(ten_image_split, tmp_path, monkeypatch, capfd):
    run = tmp_path / "run"
    stderr = stopped_by_ctrl_c(monkeypatch, capfd, ten_image_split, run, (1, 2))
    assert not (run / LAST_NAME).exists()
    assert f"interrupted before the first checkpoint ({run / LAST_NAME}): nothing to resume" in stderr

    # After an epoch (2 steps) last.pt exists: stopping at once in step 3 points at it.
    stderr = stopped_by_ctrl_c(monkeypatch, capfd, ten_image_split, tmp_path / "run2", (3, 2))
    assert f"interrupted; {tmp_path / 'run2' / LAST_NAME} holds step 2; continue with: " in stderr


def test_train_raises_training_stopped_for_code_that_calls_it(ten_image_split, tmp_path, monkeypatch):
    interrupt_during_steps(monkeypatch, (2, 1))
    config = TrainConfig(model="perceptual", split=ten_image_split, out=tmp_path / "run", epochs=5, lr=1e-3,
                         **dict(TINY_TRAINING, loss="mse"))  # fmt: skip
    # A KeyboardInterrupt: a caller that knows nothing of it (manage.py demo) stops as on any Ctrl-C.
    with pytest.raises(KeyboardInterrupt) as stopped:
        train(config)
    assert isinstance(stopped.value, TrainingStopped) and stopped.value.step == 2
    assert load_checkpoint(tmp_path / "run" / LAST_NAME)["step"] == 2


@pytest.fixture
def no_downloads(monkeypatch):
    def download():
        raise AssertionError("a pretrained network was fetched before the arguments were checked")

    monkeypatch.setattr(colorization.backbones, "imagenet_vgg16", download)


def test_a_missing_split_is_reported_before_any_download(tmp_path, capsys, no_downloads):
    # The VGG16 weights default to "imagenet"; --batch-size 0 is wrong too, but paths come first.
    arguments = ["train", "--model", "perceptual", "--split", str(tmp_path / "nonexistent"),
                 "--out", str(tmp_path / "run"), "--batch-size", "0"]  # fmt: skip
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert (
        error == f"error: split {tmp_path / 'nonexistent'} does not exist; make one with "
        "`python -m colorization split`\n"
    )

    arguments[arguments.index("--split") + 1] = str(tmp_path)
    assert main(arguments) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err


def test_paths_in_the_split_and_weight_files_are_checked_before_any_download(
    ten_image_split, tmp_path, capsys, no_downloads
):
    missing = tmp_path / "vgg16.pt"
    assert main(["train", "--model", "perceptual", "--split", str(ten_image_split), "--out", str(tmp_path / "run"),
                 "--vgg-weights", str(missing)]) == 2  # fmt: skip
    assert f"--vgg-weights {missing}: no such file" in capsys.readouterr().err

    # A split folder without split.json, and a split whose photos were moved, fail before the networks exist.
    (tmp_path / "empty").mkdir()
    out = ["--out", str(tmp_path / "r")]
    assert main(["train", "--model", "perceptual", "--split", str(tmp_path / "empty"), *out]) == 2
    assert "no split here" in capsys.readouterr().err
    (tmp_path / "images").rename(tmp_path / "moved")
    assert main(["train", "--model", "perceptual", "--split", str(ten_image_split), *out]) == 2
    assert "does not exist (moved?)" in capsys.readouterr().err
