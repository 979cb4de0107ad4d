"""Building a Turing-test study from trained colorization runs (the work behind `manage.py build_study`).

Scenes are drawn at random (with the seed) from the split's held-out images, so no one hand-picks the
images that fool best. Each drawn photo is cropped exactly as the models' inputs were
(colorization.data.eval_transform at the training image size; the largest one when runs differ, which keeps
the same field of view for every run), each run colorizes those crops (colorization.inference.colorize_paths),
and the crops and outputs go through turing.stimuli.importing.import_study, the one normalizer path, which also
audits the stimuli. How the stimuli were chosen is stored in the study's manifest for the report.

A model this package cannot run comes as a folder of another tool's colorizations of the held-out photos
(colorization.images.prediction_of finds each), cropped exactly as the real photos are.

The colorization package (and with it torch) is imported inside the functions that need it, so that listing
or loading management commands never pulls in torch.
"""

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from colorization.errors import UserError
from turing.models import Study
from turing.stimuli.importing import StudyImportError, check_model_names, import_study
from turing.stimuli.normalize import DEFAULT_STIMULUS_SIZE
from turing.vocabulary import REAL

CHECKPOINTS = {"last": "last.pt", "best": "best.pt"}
# Crop side when every model is a folder of outputs: the training size of the paper's network.
OUTPUTS_CROP_SIZE = 256


class StudyBuildError(UserError):
    """Why a study cannot be built, naming the file or option at fault; nothing was created."""


@dataclass
class BuildPlan:
    """What build_study makes: models by name (run folders or checkpoints, and folders of other tools'
    outputs), how many scenes, and the study's settings (turing.management.study_options.study_fields)."""

    slug: str
    title: str
    split_dir: Path
    runs: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    # The chroma factor applied after a run's model (absent: its colours as predicted).
    saturation: dict[str, float] = field(default_factory=dict)
    n_scenes: int = 100
    checkpoint: str = "last"
    crop_size: int | None = None
    device: str = "auto"
    size: int = DEFAULT_STIMULUS_SIZE
    fields: dict = field(default_factory=dict)


def outputs_of(folder: Path, scenes: list[Path]) -> list[Path]:
    """Another tool's colorization of each scene, in order; FileNotFoundError naming the missing ones."""
    from colorization.images import first_few, prediction_of

    if not folder.is_dir():
        raise NotADirectoryError(f"--outputs {folder}: no such folder of colorized images")
    found = [prediction_of(folder, scene.stem) for scene in scenes]
    missing = [scene.stem for scene, path in zip(scenes, found) if path is None]
    if missing:
        raise FileNotFoundError(
            f"--outputs {folder}: no colorization of {len(missing)} of the {len(scenes)} drawn scenes: "
            f"{first_few(missing)} (one file per held-out photo, named after it)"
        )
    return [path for path in found if path is not None]


def crop_like(prediction, photo_size: tuple[int, int], crop_size: int):
    """The prediction cropped as its photo (of photo_size) is (colorization.data.eval_transform). A prediction of
    another size must have the photo's shape: a different aspect ratio would show another field of view than the
    real crop."""
    from colorization.data import eval_transform

    (width, height), (photo_width, photo_height) = prediction.size, photo_size
    if abs(width * photo_height - height * photo_width) > max(photo_width, photo_height):
        raise StudyBuildError(f"{width}x{height} does not have the shape of its photo ({photo_width}x{photo_height})")
    return eval_transform(prediction, crop_size)


def draw_scenes(heldout: list[Path], n_scenes: int, seed: int) -> list[Path]:
    """n_scenes held-out photos drawn at random with seed, in the split's order."""
    if n_scenes < 1:
        raise StudyBuildError(f"--n-scenes must be at least 1, got {n_scenes}")
    if n_scenes > len(heldout):
        raise StudyBuildError(f"the split holds out {len(heldout)} images; --n-scenes {n_scenes} asks for more")
    chosen = set(random.Random(seed).sample(range(len(heldout)), n_scenes))
    return [path for index, path in enumerate(heldout) if index in chosen]


def check_plan(plan: BuildPlan) -> None:
    """Fail before any slow work on what import_study would only refuse at the end."""
    if not plan.runs and not plan.outputs:
        raise StudyBuildError("give at least one --run NAME=RUN_DIR or --outputs NAME=DIR")
    both = sorted(set(plan.runs) & set(plan.outputs))
    if both:
        raise StudyBuildError(f"{', '.join(both)}: each name is either a --run or an --outputs folder, not both")
    unknown = sorted(set(plan.saturation) - set(plan.runs))
    if unknown:
        raise StudyBuildError(
            f"--saturation names {', '.join(unknown)}, which no --run names (another tool's "
            "--outputs are shown as they are)"
        )
    if Study.objects.filter(slug=plan.slug).exists():
        raise StudyBuildError(f"study {plan.slug!r} already exists; choose another slug")
    try:
        check_model_names({**plan.runs, **plan.outputs})
    except StudyImportError as error:
        raise StudyBuildError(str(error)) from None


def manifest_of(split_dir, split, scenes, seed, crop_size, checkpoints, stored, saturation) -> dict:
    """How the stimuli were chosen and made, stored with the study for the report."""
    return {
        "description": (
            f"{len(scenes)} scenes drawn at random from the held-out set ({len(split.heldout)} images) "
            f"with seed {seed}, not hand-picked. Real photos are shown cropped exactly as the models' "
            f"inputs were ({crop_size} x {crop_size} center crop)."
        ),
        "split": str(Path(split_dir).resolve()),
        "seed": seed,
        "n_scenes": len(scenes),
        "heldout_images": len(split.heldout),
        "scenes": [path.stem for path in scenes],
        "scene_files": [path.relative_to(split.root).as_posix() for path in scenes],
        "crop_size": crop_size,
        "runs": {
            name: {
                "checkpoint": str(path.resolve()),
                "model_name": stored[name]["model_name"],
                "model_kwargs": stored[name]["model_kwargs"],
                "step": stored[name]["step"],
                "config": stored[name]["config"],
                # The chroma factor applied after the model (None: its colours as predicted).
                "saturation": saturation.get(name),
            }
            for name, path in checkpoints.items()
        },
    }


def build_study(plan: BuildPlan, log: Callable[[str], None] = lambda line: None, progress: bool = False) -> Study:
    """Draw, crop, colorize, import and audit; StudyBuildError (and no study) on anything wrong.

    Checked in the order a user fixes them: names and paths (the split, each run), then counts, then the slow
    loading, so that a typo in a --run path is not reported as a count that does not fit."""
    from colorization.checkpoint import run_checkpoint, without_weights
    from colorization.split import check_trained_apart, read_split

    check_plan(plan)
    seed = plan.fields["seed"]
    try:
        split = read_split(plan.split_dir)
        checkpoints = {name: run_checkpoint(run, CHECKPOINTS[plan.checkpoint]) for name, run in plan.runs.items()}
        scenes = draw_scenes(split.heldout, plan.n_scenes, seed)
        predictions = {name: outputs_of(folder, scenes) for name, folder in plan.outputs.items()}
    except (OSError, UserError) as error:
        raise StudyBuildError(str(error)) from None

    from colorization.data import eval_transform
    from colorization.images import ImageError, load_image
    from colorization.inference import colorize_paths, load_model

    # Each checkpoint is loaded once, model and all (Koalarization builds its Inception-ResNet-v2 each time),
    # and before any slow work, so that a checkpoint that cannot be loaded stops the build early.
    try:
        loaded = {name: load_model(path, plan.device, optimize=True) for name, path in checkpoints.items()}
        # The weights are in the models now; the manifest needs the rest.
        loaded = {name: (model, without_weights(ckpt)) for name, (model, ckpt) in loaded.items()}
        stored = {name: ckpt for name, (_, ckpt) in loaded.items()}
        check_trained_apart(plan.split_dir, {name: ckpt.get("config", {}) for name, ckpt in stored.items()})
    except (OSError, UserError) as error:
        raise StudyBuildError(str(error)) from None
    crop_size = plan.crop_size or max(
        (ckpt["config"]["image_size"] for ckpt in stored.values()), default=OUTPUTS_CROP_SIZE
    )
    manifest = manifest_of(plan.split_dir, split, scenes, seed, crop_size, checkpoints, stored, plan.saturation)
    manifest["runs"] |= {
        name: {"model_name": "another tool's outputs", "outputs": str(folder.resolve())}
        for name, folder in plan.outputs.items()
    }

    with tempfile.TemporaryDirectory(prefix=f"build_study-{plan.slug}-") as work:
        real_dir = Path(work) / REAL
        real_dir.mkdir()
        log(f"Cropping {len(scenes)} held-out photos to {crop_size} px (seed {seed})")
        photo_sizes = {}  # as loaded (EXIF-rotated), for cropping other tools' outputs the same way
        for path in scenes:
            try:
                image = load_image(path)
            except ImageError as error:
                raise StudyBuildError(str(error)) from None
            photo_sizes[path] = image.size
            eval_transform(image, crop_size).save(real_dir / f"{path.stem}.png")
        crops = sorted(real_dir.iterdir())
        generated = {}
        for name, files in predictions.items():
            log(f"Cropping {name}'s outputs ({plan.outputs[name]})")
            generated[name] = Path(work) / name
            generated[name].mkdir()
            for photo, prediction in zip(scenes, files):
                try:
                    crop = crop_like(load_image(prediction), photo_sizes[photo], crop_size)
                except UserError as error:
                    raise StudyBuildError(f"{prediction}: {error}") from None
                crop.save(generated[name] / f"{photo.stem}.png")
        for name, path in checkpoints.items():
            log(f"Colorizing with {name} ({path})")
            generated[name] = Path(work) / name
            # The loaded pair goes in (and is let go of afterwards): colorize_paths does not load it again.
            colorize_paths(
                loaded.pop(name), crops, generated[name], saturation=plan.saturation.get(name), progress=progress
            )
        try:
            return import_study(
                plan.slug, plan.title, real_dir, generated, size=plan.size, manifest=manifest, **plan.fields
            )
        except StudyImportError as error:
            raise StudyBuildError(str(error)) from None
