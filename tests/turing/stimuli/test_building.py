import io
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from PIL import Image
from skimage import color

from colorization import inference
from colorization.config import TrainConfig
from colorization.data import eval_transform
from colorization.images import load_image
from colorization.split import make_split, read_split
from colorization.train import train
from tests.colorization.conftest import write_color_images
from turing.models import Study
from turing.stimuli.audit import audit_study
from turing.stimuli.building import draw_scenes
from turing.stimuli.normalize import normalize_image
from turing.vocabulary import REAL

pytestmark = pytest.mark.django_db

STIMULUS_SIZE = 24
# The two runs train at different sizes, so the real crops must follow the larger one.
RUNS = {
    "perceptual": dict(image_size=32, vgg_weights="none", model_opts={"width": 0.125}),
    "koalarization": dict(
        image_size=24, model_opts={"irv2_weights": "none", "width": 0.125, "irv2_model": "test_resnet"}
    ),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A split of 11 non-square photos (8 held out: enough for a practice scene, the five catch scenes of one
    attention check and a scored one) and one 1-step run per model (in one torch thread, as every test:
    tests/conftest.py)."""
    root = tmp_path_factory.mktemp("build_study")
    write_color_images(root / "photos", 8, size=(48, 40))
    write_color_images(root / "photos", 3, size=(37, 53), prefix="tall", seed=1)
    make_split(root / "photos", root / "split", holdout=8, seed=0)
    for name, options in RUNS.items():
        train(
            TrainConfig(
                model=name,
                split=root / "split",
                out=root / "runs" / name,
                max_steps=1,
                batch_size=3,
                workers=0,
                lr=1e-3,
                progress=False,
                device="cpu",
                **options,
            )
        )
    return {"split": root / "split", "runs": {name: root / "runs" / name for name in RUNS}}


def build(trained, slug="built", **options):
    call_command(
        "build_study",
        slug,
        split=str(trained["split"]),
        run=[f"{name}={path}" for name, path in trained["runs"].items()],
        title="Built from runs",
        size=STIMULUS_SIZE,
        device="cpu",
        **options,
    )
    return Study.objects.get(slug=slug)


def test_builds_an_audited_study_from_random_held_out_scenes(trained, capsys):
    study = build(trained, n_scenes=7, seed=3, control_fraction=0.25, trials=3, practice=1, catch_trials=1)

    split = read_split(trained["split"])
    chosen = draw_scenes(split.heldout, 7, 3)
    assert sorted(study.stimuli.values_list("scene", flat=True).distinct()) == sorted(p.stem for p in chosen)
    assert study.model_names == ["koalarization", "perceptual"]
    # The practice scene and the five catch scenes of the one attention check are reserved from the drawn ones;
    # a catch scene keeps one stimulus.
    pools = Counter(study.stimuli.values_list("pool", flat=True))
    assert pools == {"scored": 3, "practice": 3, "catch": 5}
    assert audit_study(study) == []
    assert "audit passed: 11 stimuli" in capsys.readouterr().out
    assert (study.seed, study.control_fraction, study.trials_per_participant) == (3, 0.25, 3)
    assert (study.practice_trials, study.catch_trials) == (1, 1)

    manifest = study.manifest
    assert manifest["seed"] == 3 and manifest["n_scenes"] == 7 and manifest["crop_size"] == 32
    assert manifest["scenes"] == [path.stem for path in chosen]
    assert "drawn at random from the held-out set (8 images) with seed 3" in manifest["description"]
    assert {name: run["model_name"] for name, run in manifest["runs"].items()} == {
        "perceptual": "perceptual",
        "koalarization": "koalarization",
    }
    assert manifest["runs"]["koalarization"]["config"]["image_size"] == 24
    assert manifest["runs"]["perceptual"]["checkpoint"].endswith("perceptual/last.pt")


def test_real_stimuli_are_cropped_as_the_models_saw_them(trained, tmp_path):
    study = build(trained, n_scenes=2, seed=1, practice=0)

    real = study.stimuli.filter(source=REAL).first()
    photo = next(path for path in read_split(trained["split"]).heldout if path.stem == real.scene)
    # What build_study should have shown: the model input crop at the larger training size, normalized.
    eval_transform(load_image(photo), 32).save(tmp_path / "crop.png")
    expected = Image.open(io.BytesIO(normalize_image(tmp_path / "crop.png", STIMULUS_SIZE)))
    with real.image.open("rb") as file:
        stored = Image.open(file)
        stored.load()
    assert np.array_equal(np.asarray(stored), np.asarray(expected))


def test_the_same_seed_draws_the_same_scenes(trained):
    first = build(trained, slug="first", n_scenes=3, seed=5, practice=1)
    second = build(trained, slug="second", n_scenes=3, seed=5, practice=1)

    assert first.manifest["scenes"] == second.manifest["scenes"]
    assert first.manifest["import"]["practice_scenes"] == second.manifest["import"]["practice_scenes"]


def test_each_checkpoint_is_loaded_once(trained, monkeypatch):
    # Loading is the slow part of a checkpoint (Koalarization builds Inception-ResNet-v2): once per run, for the
    # manifest and the colorizing alike.
    loads, builds = Counter(), Counter()
    load_model, create_model = inference.load_model, inference.create_model

    def counting_load(path, *args, **kwargs):
        loads[Path(path).parent.name] += 1
        return load_model(path, *args, **kwargs)

    def counting_create(name, **kwargs):
        builds[name] += 1
        return create_model(name, **kwargs)

    monkeypatch.setattr(inference, "load_model", counting_load)
    monkeypatch.setattr(inference, "create_model", counting_create)
    study = build(trained, slug="once", n_scenes=2, seed=1, practice=0)

    assert loads == builds == {"perceptual": 1, "koalarization": 1}
    assert study.stimuli.filter(source="koalarization").count() == study.stimuli.filter(source=REAL).count() == 2
    assert study.manifest["runs"]["perceptual"]["step"] == 1


def test_draws_are_random_subsets_of_the_held_out_set():
    heldout = [f"photo{index}" for index in range(50)]

    draws = {tuple(draw_scenes(heldout, 5, seed)) for seed in range(20)}

    assert len(draws) == 20
    assert all(set(draw) <= set(heldout) and len(set(draw)) == 5 for draw in draws)
    assert draw_scenes(heldout, 5, 7) == draw_scenes(heldout, 5, 7)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(n_scenes=9), "the split holds out 8 images; --n-scenes 9 asks for more"),
        (dict(n_scenes=0), "--n-scenes must be at least 1, got 0"),
        (dict(checkpoint="best", run=["perceptual=/nowhere"]), "/nowhere: no such run folder or checkpoint file"),
        # Paths come first: a typo in a path is reported as such even when a count is also wrong.
        (dict(n_scenes=9, run=["perceptual=/nowhere/perceptul"]), "/nowhere/perceptul: no such run folder"),
        (dict(n_scenes=9, split="/nowhere/split"), "/nowhere/split: no split here"),
        (dict(run=["perceptual=a", "perceptual=b"]), "--run names a model more than once: perceptual"),
        (dict(run=["real=a"]), "model name 'real' is reserved"),
        (dict(run=[]), "give at least one --run NAME=RUN_DIR or --outputs NAME=DIR"),
        (dict(outputs=["perceptual=/nowhere"]), "perceptual: each name is either a --run or an --outputs folder"),
        (dict(outputs=["ddcolor=/nowhere/ddcolor"]), "--outputs /nowhere/ddcolor: no such folder"),
        (dict(outputs=["ddcolor=/tmp"], saturation=["ddcolor=1.4"]), "--saturation names ddcolor, which no --run"),
        (dict(saturation=["perceptul=1.4"]), "--saturation names perceptul, which no --run names"),
        (dict(saturation=["perceptual=0"]), "the factor must be above 0 and at most 4"),
        (dict(saturation=["perceptual=lots"]), "--saturation perceptual=lots: could not convert"),
    ],
)
def test_bad_requests_fail_before_any_work(trained, options, message):
    options = {
        "run": [f"{name}={path}" for name, path in trained["runs"].items()],
        "n_scenes": 2,
        "split": str(trained["split"]),
        **options,
    }

    with pytest.raises(CommandError, match=message):
        call_command("build_study", "bad", title="Bad", **options)
    assert not Study.objects.filter(slug="bad").exists()


def test_runs_trained_on_other_images_of_the_held_out_set_are_refused(trained, tmp_path):
    root = read_split(trained["split"]).root
    make_split(root, tmp_path / "reshuffled", holdout=6, seed=9)
    with pytest.raises(CommandError, match="run .* was trained on the split .*whose training images include"):
        call_command("build_study", "leaky", split=str(tmp_path / "reshuffled"), title="t", n_scenes=2, practice=0,
                     run=[f"{name}={path}" for name, path in trained["runs"].items()])  # fmt: skip
    assert not Study.objects.filter(slug="leaky").exists()


def test_a_run_folder_without_the_checkpoint_names_the_file(trained, tmp_path):
    # The run folder exists (the path is right) but holds no best.pt: the file is named, not the folder.
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(CommandError, match="empty-run/best.pt: no such checkpoint"):
        call_command(
            "build_study",
            "bad",
            split=str(trained["split"]),
            title="Bad",
            checkpoint="best",
            run=[f"perceptual={tmp_path / 'empty-run'}"],
            n_scenes=9,
        )


def test_an_existing_slug_is_refused(trained):
    build(trained, slug="taken", n_scenes=1, seed=0, practice=0)

    with pytest.raises(CommandError, match="study 'taken' already exists"):
        build(trained, slug="taken", n_scenes=1, seed=0, practice=0)


def test_reserved_scenes_must_leave_one_to_score(trained):
    # The default --practice 3 takes all of 3 drawn scenes.
    with pytest.raises(CommandError, match="3 scenes, but 3 practice and 0 catch scenes .*: at least 4 scenes are"):
        build(trained, slug="all-practice", n_scenes=3, seed=0)
    assert not Study.objects.filter(slug="all-practice").exists()


def mean_chroma(stimulus):
    with stimulus.image.open("rb") as file:
        pixels = np.asarray(Image.open(file).convert("RGB"), dtype=np.float64) / 255.0
    lab = color.rgb2lab(pixels)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def test_saturation_boosts_one_models_colours_and_is_recorded(trained, staff_client):
    plain = build(trained, slug="plain", n_scenes=2, seed=1, practice=0)
    boosted = build(trained, slug="boosted", n_scenes=2, seed=1, practice=0, saturation=["perceptual=1.4"])

    assert boosted.manifest["runs"]["perceptual"]["saturation"] == 1.4
    assert boosted.manifest["runs"]["koalarization"]["saturation"] is None
    for scene in plain.manifest["scenes"]:

        def chroma(study, source, scene=scene):
            return mean_chroma(study.stimuli.get(scene=scene, source=source))

        assert chroma(boosted, "perceptual") > 1.2 * chroma(plain, "perceptual")
        assert chroma(boosted, "koalarization") == pytest.approx(chroma(plain, "koalarization"), abs=1e-9)
    runs = staff_client.get(reverse("staff:report", args=["boosted"])).content.decode()
    assert "<th>Saturation</th>" in runs and "<td>1.4</td>" in runs and "<td>as predicted</td>" in runs


def test_another_tools_outputs_join_the_study_cropped_as_the_real_photos(trained, tmp_path, staff_client):
    # A tool this package cannot run wrote one .jpg per held-out photo at the photo's size (the ground truth with
    # its hue turned, so its stimuli are neither the real ones nor copies of a run's).
    outputs = tmp_path / "ddcolor"
    outputs.mkdir()
    heldout = read_split(trained["split"]).heldout
    for photo in heldout:
        lab = color.rgb2lab(np.asarray(load_image(photo)))
        lab[..., 1:] = -lab[..., 1:]
        with warnings.catch_warnings(action="ignore"):  # skimage notes the out-of-gamut colours it clips
            rgb = (np.clip(color.lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(rgb).save(outputs / f"{photo.stem}.jpg", quality=95)

    study = build(trained, slug="with-ddcolor", n_scenes=3, seed=2, practice=0, outputs=[f"ddcolor={outputs}"])
    assert study.model_names == ["ddcolor", "koalarization", "perceptual"]
    assert audit_study(study) == []
    assert study.manifest["runs"]["ddcolor"] == {"model_name": "another tool's outputs",
                                                  "outputs": str(outputs.resolve())}  # fmt: skip
    for scene in study.manifest["scenes"]:
        real, theirs = (study.stimuli.get(scene=scene, source=source) for source in (REAL, "ddcolor"))
        with real.image.open("rb") as a, theirs.image.open("rb") as b:
            real_lab = color.rgb2lab(np.asarray(Image.open(a).convert("RGB")))
            their_lab = color.rgb2lab(np.asarray(Image.open(b).convert("RGB")))
        # The same crop (lightness kept, up to JPEG) with the opposite colours: the same field of view.
        assert np.abs(real_lab[..., 0] - their_lab[..., 0]).mean() < 2
        assert np.corrcoef(real_lab[..., 1].ravel(), their_lab[..., 1].ravel())[0, 1] < -0.5
    report = staff_client.get(reverse("staff:report", args=["with-ddcolor"])).content.decode()
    assert "another tool&#x27;s outputs" in report and "<code>ddcolor</code>" in report

    only_outputs = tmp_path / "partial"
    only_outputs.mkdir()
    (outputs / f"{heldout[0].stem}.jpg").rename(only_outputs / f"{heldout[0].stem}.jpg")
    # Every held-out photo drawn, so that the one with a colorization is among them whatever the draw.
    drawn = len(heldout)
    with pytest.raises(CommandError, match=f"no colorization of {drawn - 1} of the {drawn} drawn scenes"):
        call_command("build_study", "partial", split=str(trained["split"]), title="t", outputs=[f"x={only_outputs}"],
                     n_scenes=drawn, practice=0)  # fmt: skip
