import pytest
import torch

from benchmarks.colorization_throughput import synthetic_batch
from colorization.checkpoint import BEST_NAME, LAST_NAME, load_checkpoint
from colorization.config import TrainConfig
from colorization.errors import ConfigError
from colorization.models import Recipe
from colorization.split import make_split
from colorization.train import LOG_COLUMNS, config_for_resume, train
from tests.colorization.conftest import TINY_TRAINING, read_log, write_color_images


@pytest.fixture
def eight_image_split(tmp_path):
    """8 training and 2 held-out 48x40 colour images."""
    write_color_images(tmp_path / "images", 10, seed=3)
    make_split(tmp_path / "images", tmp_path / "split", holdout=2, seed=0)
    return tmp_path / "split"


def test_short_run_overfits_eight_images_and_writes_checkpoints_and_log(eight_image_split, tmp_path):
    # 30 steps of one full batch (8 images) each, with the paper's loss on a random-weight VGG's relu1_2.
    # Measured: the loss of the last 3 steps is about 3.3x below the first 3; the test asks for 2x.
    run = tmp_path / "run"
    options = dict(TINY_TRAINING, batch_size=8, vgg_layers=("relu1_2",))
    result = train(TrainConfig(model="perceptual", split=eight_image_split, out=run, epochs=30, lr=1e-3, **options))

    assert result.step == 30 and len(result.losses) == 30
    assert sum(result.losses[:3]) / sum(result.losses[-3:]) > 2.0

    log = read_log(run)
    assert list(log[0]) == list(LOG_COLUMNS)
    assert [int(row["epoch"]) for row in log] == list(range(1, 31))
    assert all(float(row["images_per_s"]) > 0 for row in log)
    heldout = [float(row["heldout_loss"]) for row in log]

    last, best = load_checkpoint(run / LAST_NAME), load_checkpoint(run / BEST_NAME)
    assert last["model_name"] == "perceptual" and last["model_kwargs"] == {"width": 0.125}
    assert (last["epoch"], last["batch_in_epoch"], last["step"]) == (30, 0, 30)
    assert last["config"]["image_size"] == 32 and last["config"]["vgg_layers"] == ("relu1_2",)
    assert set(last["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert best["best_loss"] == pytest.approx(min(heldout)) == last["best_loss"]
    assert best["step"] == 1 + heldout.index(min(heldout))
    assert not list(run.glob("*.tmp"))


def test_resume_continues_exactly_like_the_uninterrupted_run(eight_image_split, tmp_path):
    # 8 images in batches of 3: 3 steps per epoch, the last one of 2 images. The interrupted run stops in
    # the middle of epoch 2, so the resumed one must skip the first batch of that epoch's shuffled order.
    # The uninterrupted run loads its data in 2 worker processes, the others in the main process: the
    # augmentation must not depend on that either.
    options = dict(TINY_TRAINING, batch_size=3, loss="mse", schedule="2:1e-3,1:3e-4")
    whole_options = dict(options, workers=2)
    whole = train(TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "whole", **whole_options))
    assert whole.step == 9

    cut = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "cut", max_steps=4, **options)
    first = train(cut)
    assert first.losses == pytest.approx(whole.losses[:4], abs=1e-6)
    stopped = load_checkpoint(tmp_path / "cut" / LAST_NAME)
    assert (stopped["epoch"], stopped["batch_in_epoch"], stopped["step"]) == (1, 1, 4)

    resumed = train(config_for_resume(tmp_path / "cut", progress=False))
    assert resumed.step == 9
    assert resumed.losses == pytest.approx(whole.losses[4:], abs=1e-6)
    final_whole = load_checkpoint(tmp_path / "whole" / LAST_NAME)["model_state"]
    final_resumed = load_checkpoint(tmp_path / "cut" / LAST_NAME)["model_state"]
    assert all(torch.allclose(final_whole[key].float(), final_resumed[key].float(), atol=1e-6) for key in final_whole)

    log = read_log(tmp_path / "cut")
    assert [(row["epoch"], row["step"]) for row in log] == [("1", "3"), ("2", "4"), ("2", "6"), ("3", "9")]
    assert [float(row["lr"]) for row in log] == [1e-3, 1e-3, 1e-3, 3e-4]


def test_a_new_run_refuses_to_overwrite_an_existing_one(tiny_run):
    with pytest.raises(ConfigError, match="--resume"):
        train(TrainConfig(model="perceptual", split=tiny_run["split"], out=tiny_run["run"], **TINY_TRAINING))


def test_resume_without_a_checkpoint_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="last.pt"):
        config_for_resume(tmp_path / "nothing")


def test_resume_overrides_one_model_option_and_keeps_the_others(tiny_run):
    config = config_for_resume(tiny_run["run"], model_opts={"activation": "relu"}, batch_size=2)
    assert config.model_opts == {"width": 0.125, "activation": "relu"}
    assert (config.batch_size, config.image_size, config.resume) == (2, 32, True)


def test_schedule_gives_the_learning_rate_of_every_epoch(tmp_path):
    def lrs(**options):
        return TrainConfig(model="perceptual", split=tmp_path, out=tmp_path, **options).resolve().lr_by_epoch()

    assert lrs(schedule="2:1e-3,1:1e-4") == [1e-3, 1e-3, 1e-4]
    assert lrs(schedule="2:1e-3,1:1e-4", epochs=5) == [1e-3, 1e-3, 1e-4, 1e-4, 1e-4]
    assert lrs(schedule="2:1e-3,1:1e-4", epochs=1) == [1e-3]
    assert lrs(schedule="2:1e-3,1:1e-4", lr=0.5) == [0.5] * 3
    assert len(lrs()) == 100  # the paper's 30 + 35 + 35 epochs
    for bad in ("30", "x:1e-3", "0:1e-3", "30:1e-3,,35:1e-4"):
        with pytest.raises(ConfigError, match="schedule"):
            lrs(schedule=bad)


def test_unreadable_training_images_are_skipped_and_counted_in_the_log(tmp_path):
    write_color_images(tmp_path / "images", 6, seed=1)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    split = make_split(tmp_path / "images", tmp_path / "split", holdout=1, seed=0)
    assert any(path.name == "broken.png" for path in split.train), "the split does not open images"

    with pytest.warns(UserWarning, match="broken.png"):
        train(
            TrainConfig(
                model="perceptual",
                split=tmp_path / "split",
                out=tmp_path / "run",
                epochs=2,
                lr=1e-3,
                **dict(TINY_TRAINING, batch_size=2, loss="mse"),
            )
        )

    assert [int(row["skipped_images"]) for row in read_log(tmp_path / "run")] == [1, 1]


def test_each_model_trains_with_its_own_recipe_unless_told_otherwise(eight_image_split, tmp_path):
    paper = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "p").resolve()
    assert (paper.optimizer, paper.schedule, paper.batch_size, paper.image_size, paper.loss) == (
        "rmsprop",
        "30:1e-3,35:1e-4,35:1e-8",
        16,
        256,
        "perceptual",
    )
    koala = TrainConfig(model="koalarization", split=eight_image_split, out=tmp_path / "k").resolve()
    assert (koala.optimizer, koala.lr_by_epoch()[0], koala.batch_size, koala.image_size, koala.loss) == (
        "adam",
        1e-3,
        100,
        224,
        "mse",
    )
    assert paper.changed_from_recipe() == [] and koala.changed_from_recipe() == []

    changed = TrainConfig(
        model="koalarization", split=eight_image_split, out=tmp_path / "c", batch_size=8, lr=1e-4
    ).resolve()
    assert changed.optimizer == "adam" and changed.changed_from_recipe() == ["--batch-size", "learning rates"]
    # Every way of changing the rates counts, and equal rates written differently do not.
    for options in ({"epochs": 10}, {"schedule": "50:1e-3,50:1e-4"}, {"lr": 1e-3, "epochs": 99}):
        config = TrainConfig(model="koalarization", split=eight_image_split, out=tmp_path / "d", **options).resolve()
        assert config.changed_from_recipe() == ["learning rates"], options
    same = TrainConfig(model="koalarization", split=eight_image_split, out=tmp_path / "e", schedule="60:0.001,40:1e-3",
                       lr=None, micro_batch_size=10).resolve()  # fmt: skip
    assert same.changed_from_recipe() == []
    # Beyond the recipe: the model's own options and the perceptual loss's settings.
    altered = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "f", vgg_layers=("relu1_2",),
                          vgg_weights="none", model_opts={"width": 0.25, "batch_norm": True}).resolve()  # fmt: skip
    assert altered.changed_from_recipe() == ["width=0.25", "--vgg-layers", "--vgg-weights"]
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        TrainConfig(model="nope", split=eight_image_split, out=tmp_path / "n").resolve()


def test_recipe_optimizer_options_stay_with_their_optimizer(eight_image_split, tmp_path, monkeypatch):
    published = Recipe(
        source="test", loss="mse", optimizer="adam", schedule="1:1e-3", batch_size=4, image_size=32,
        optimizer_options={"betas": [0.9, 0.99], "weight_decay": 1e-3},
    )  # fmt: skip
    monkeypatch.setattr("colorization.config.recipe", lambda name: published)
    same = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "a").resolve()
    assert same.optimizer_options == {"betas": [0.9, 0.99], "weight_decay": 1e-3}
    other = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "b", optimizer="rmsprop").resolve()
    assert other.optimizer_options == {}  # Adam's betas would be an error for RMSprop
    # An option given replaces the recipe's one of that name only; betas written as a tuple are no change.
    partial = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "c",
                          optimizer_options={"weight_decay": 0.0}).resolve()  # fmt: skip
    assert partial.optimizer_options == {"betas": [0.9, 0.99], "weight_decay": 0.0}
    assert partial.changed_from_recipe() == ["--optimizer-opt"]
    as_tuple = TrainConfig(model="perceptual", split=eight_image_split, out=tmp_path / "d",
                           optimizer_options={"betas": (0.9, 0.99)}).resolve()  # fmt: skip
    assert as_tuple.changed_from_recipe() == []


def test_recipe_settings_are_stored_in_the_checkpoint(tiny_run):
    stored = load_checkpoint(tiny_run["run"] / LAST_NAME)
    assert stored["model_module"] == "colorization.models.transform_net"
    config = stored["config"]
    assert (config["optimizer"], config["loss"], config["optimizer_options"]) == ("rmsprop", "perceptual", {})
    assert config["schedule"] == "30:1e-3,35:1e-4,35:1e-8" and config["micro_batch_size"] is None


def test_micro_batches_accumulate_to_the_same_step_as_the_whole_batch():
    # Without batch norm a batch's gradient is the size-weighted mean of its chunks' gradients, so a step over
    # 8 images in chunks of 3 (3 + 3 + 2: uneven on purpose) must equal the whole-batch step. Plain SGD makes
    # the weight change the gradient itself (RMSprop's division by sqrt(v) would magnify rounding in tiny ones).
    from colorization.losses import build_loss
    from colorization.models import create_model
    from colorization.train import train_step

    batch = synthetic_batch(8, 16)
    steps = {}
    for micro_batch_size in (None, 3):
        torch.manual_seed(0)
        model = create_model("perceptual", width=0.125, batch_norm=False)
        before = [parameter.detach().clone() for parameter in model.parameters()]
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        loss = train_step(model, build_loss("mse"), optimizer, batch, torch.device("cpu"), micro_batch_size)
        steps[micro_batch_size] = loss, [old - new.detach() for old, new in zip(before, model.parameters())]
    (whole_loss, whole_step), (chunked_loss, chunked_step) = steps[None], steps[3]
    assert chunked_loss == pytest.approx(whole_loss, rel=1e-6)
    assert any(change.abs().max() > 0 for change in whole_step)
    for whole_change, chunked_change in zip(whole_step, chunked_step):
        torch.testing.assert_close(chunked_change, whole_change, rtol=1e-4, atol=1e-7)


def test_resume_refuses_another_optimizer_whose_state_it_would_not_use(tiny_run):
    # The restored optimizer state carries the run's own betas and weight decay: a change would be recorded
    # in the run but never applied.
    with pytest.raises(ConfigError, match="--resume keeps the run's optimizer"):
        config_for_resume(tiny_run["run"], optimizer="adam")
    with pytest.raises(ConfigError, match="--resume keeps the run's optimizer"):
        config_for_resume(tiny_run["run"], optimizer_options={"weight_decay": 1e-3})
    assert config_for_resume(tiny_run["run"], optimizer="rmsprop").optimizer == "rmsprop"  # the same is fine


def test_settings_the_model_or_optimizer_cannot_take_fail_before_the_run_starts(eight_image_split, tmp_path):
    tiny = dict(TINY_TRAINING, max_steps=1)
    cases = [
        (dict(optimizer_options={"weight_decy": 1e-4}), "--optimizer-opt .*weight_decy.* for RMSprop"),
        (dict(optimizer="adam", optimizer_options={"betas": 0.9}), "--optimizer-opt .* for Adam"),
        (dict(loss="mse", model="eccv16", model_opts={"width": 0.125}), "--loss mse takes ab or rgb outputs, and "
                                                                           "the eccv16 model's are 'ab_bins'"),
    ]  # fmt: skip
    for index, (options, message) in enumerate(cases):
        config = TrainConfig(**{"model": "perceptual", "split": eight_image_split, "out": tmp_path / str(index),
                                **tiny, **options})  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            train(config)
        assert not (tmp_path / str(index)).exists()


def test_resume_refuses_another_model(tiny_run):
    with pytest.raises(ConfigError, match="--resume continues the run's perceptual model"):
        config_for_resume(tiny_run["run"], model="koalarization")
