"""build_study: from trained colorization runs to a Turing-test study in one command.

Scenes are drawn at random (with the seed) from the split's held-out images, so no one hand-picks the
images that fool best. Each drawn photo is cropped exactly as the models' inputs were
(colorization.data.eval_transform at the training image size; the largest one when runs differ, which keeps
the same field of view for every run), each run colorizes those crops (colorization.inference.colorize_paths),
and the crops and outputs go through turing.importing.import_study, the one normalizer path, which also
audits the stimuli. How the stimuli were chosen is stored in the study's manifest for the report.

`--outputs NAME=DIR` adds a model this package cannot run: a folder of another tool's colorizations of the
held-out photos (colorization.images.prediction_of finds each), cropped exactly as the real photos are.

The colorization package (and with it torch) is imported inside handle() only, so listing or loading
management commands never pulls in torch.
"""

import random
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from turing.importing import StudyImportError, check_model_names, import_study
from turing.management.study_options import add_study_arguments, named_paths, study_fields, write_design
from turing.models import REAL, Study
from turing.network import join_url_line

CHECKPOINTS = {"last": "last.pt", "best": "best.pt"}
# Crop side when every model is a folder of outputs: the training size of the paper's network.
OUTPUTS_CROP_SIZE = 256


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
    return found


def crop_like(prediction, photo, crop_size: int):
    """The prediction cropped as the photo is (colorization.data.eval_transform). A prediction of another size
    must have the photo's shape: a different aspect ratio would show another field of view than the real crop."""
    from colorization.data import eval_transform

    (width, height), (photo_width, photo_height) = prediction.size, photo.size
    if abs(width * photo_height - height * photo_width) > max(photo_width, photo_height):
        raise ValueError(f"{width}x{height} does not have the shape of its photo ({photo_width}x{photo_height})")
    return eval_transform(prediction, crop_size)


def saturation_factor(text: str) -> float:
    factor = float(text)
    if not 0 < factor <= 4:
        raise ValueError("the factor must be above 0 and at most 4 (1.4 is the paper's +40%)")
    return factor


def draw_scenes(heldout: list[Path], n_scenes: int, seed: int) -> list[Path]:
    """n_scenes held-out photos drawn at random with seed, in the split's order."""
    if n_scenes > len(heldout):
        raise ValueError(f"the split holds out {len(heldout)} images; --n-scenes {n_scenes} asks for more")
    chosen = set(random.Random(seed).sample(range(len(heldout)), n_scenes))
    return [path for index, path in enumerate(heldout) if index in chosen]


class Command(BaseCommand):
    help = (
        "Build a study from trained runs: draw scenes at random from the split's held-out images, crop them as "
        "the models saw them, colorize them with every run, normalize and import everything, and audit it."
    )

    def add_arguments(self, parser):
        add_study_arguments(parser)
        parser.add_argument(
            "--split",
            required=True,
            type=Path,
            metavar="SPLIT_DIR",
            help="Split folder (split.json) the runs were trained on.",
        )
        # Not required=True: call_command(run=[...]) must be able to pass several runs.
        parser.add_argument(
            "--run",
            action="append",
            metavar="NAME=RUN_DIR",
            default=[],
            help="A model's name and its run folder (or checkpoint file); repeat for each model.",
        )
        parser.add_argument(
            "--outputs",
            action="append",
            metavar="NAME=DIR",
            default=[],
            help="A model this package cannot run: a folder of its colorizations of the held-out "
            "photos, one file per photo named after it (<stem>.png or another image "
            "extension), at the photo's size. Repeat per model.",
        )
        parser.add_argument(
            "--crop-size",
            type=int,
            help="Side of the square crops (default: the largest training size of the runs; 256 with --outputs only).",
        )
        parser.add_argument(
            "--n-scenes",
            type=int,
            default=100,
            help="Scenes to draw (default 100); the practice and catch scenes are reserved from them.",
        )
        parser.add_argument(
            "--checkpoint",
            choices=sorted(CHECKPOINTS),
            default="last",
            help="Checkpoint of each run folder (default last: best.pt was chosen on the "
            "held-out loss, the very images the scenes come from).",
        )
        parser.add_argument("--device", default="auto", help="Device for colorizing (default auto).")
        parser.add_argument(
            "--saturation",
            action="append",
            metavar="NAME=FACTOR",
            default=[],
            help="Multiply that model's colour (ab) by FACTOR, e.g. perceptual=1.4 for the +40%% "
            "boost the paper's study used; recorded in the study. Repeat per model.",
        )

    def handle(self, *args, **options):
        slug, split_dir = options["slug"], Path(options["split"])
        runs = named_paths(
            options["run"], option="--run", metavar="NAME=RUN_DIR", example="perceptual=runs/perceptual", required=False
        )
        outputs = named_paths(
            options["outputs"], option="--outputs", metavar="NAME=DIR", example="ddcolor=~/ddcolor-out", required=False
        )
        if not runs and not outputs:
            raise CommandError("give at least one --run NAME=RUN_DIR or --outputs NAME=DIR")
        both = sorted(set(runs) & set(outputs))
        if both:
            raise CommandError(f"{', '.join(both)}: each name is either a --run or an --outputs folder, not both")
        saturation = named_paths(
            options["saturation"],
            option="--saturation",
            metavar="NAME=FACTOR",
            example="perceptual=1.4",
            convert=saturation_factor,
            required=False,
        )
        unknown = sorted(set(saturation) - set(runs))
        if unknown:
            raise CommandError(
                f"--saturation names {', '.join(unknown)}, which no --run names (another tool's "
                "--outputs are shown as they are)"
            )
        self.check_runs(slug, {**runs, **outputs})
        fields = study_fields(options)
        seed = fields["seed"]

        # The paths are checked before the slow loading below.
        from colorization.checkpoint import run_checkpoint, without_weights
        from colorization.split import check_trained_apart, read_split

        # In the order a user fixes them: paths (the split, each run), then counts, then the slow loading, so
        # that a typo in a --run path is not reported as a count that does not fit.
        try:
            split = read_split(split_dir)
            checkpoint_name = CHECKPOINTS[options["checkpoint"]]
            checkpoints = {name: run_checkpoint(run, checkpoint_name) for name, run in runs.items()}
            if options["n_scenes"] < 1:
                raise ValueError(f"--n-scenes must be at least 1, got {options['n_scenes']}")
            scenes = draw_scenes(split.heldout, options["n_scenes"], seed)
            predictions = {name: outputs_of(folder, scenes) for name, folder in outputs.items()}
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from None

        from colorization.data import eval_transform
        from colorization.images import ImageError, load_image
        from colorization.inference import colorize_paths, load_model

        # Each checkpoint is loaded once, model and all (Koalarization builds its Inception-ResNet-v2 each time),
        # and before any slow work, so that a checkpoint that cannot be loaded stops the command early.
        try:
            loaded = {name: load_model(path, options["device"], optimize=True) for name, path in checkpoints.items()}
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from None
        # The weights are in the models now; the manifest needs the rest.
        loaded = {name: (model, without_weights(ckpt)) for name, (model, ckpt) in loaded.items()}
        stored = {name: ckpt for name, (_, ckpt) in loaded.items()}
        try:
            check_trained_apart(split_dir, {name: ckpt.get("config", {}) for name, ckpt in stored.items()})
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from None
        crop_size = options["crop_size"] or max(
            (ckpt["config"]["image_size"] for ckpt in stored.values()), default=OUTPUTS_CROP_SIZE
        )
        manifest = self.manifest(split_dir, split, scenes, seed, crop_size, checkpoints, stored, saturation)
        manifest["runs"] |= {
            name: {"model_name": "another tool's outputs", "outputs": str(folder.resolve())}
            for name, folder in outputs.items()
        }

        with tempfile.TemporaryDirectory(prefix=f"build_study-{slug}-") as work:
            real_dir = Path(work) / REAL
            real_dir.mkdir()
            self.stdout.write(f"Cropping {len(scenes)} held-out photos to {crop_size} px (seed {seed})")
            for path in scenes:
                try:
                    eval_transform(load_image(path), crop_size).save(real_dir / f"{path.stem}.png")
                except ImageError as error:
                    raise CommandError(str(error)) from None
            crops = sorted(real_dir.iterdir())
            generated = {}
            for name, files in predictions.items():
                self.stdout.write(f"Cropping {name}'s outputs ({outputs[name]})")
                generated[name] = Path(work) / name
                generated[name].mkdir()
                for photo, prediction in zip(scenes, files):
                    try:
                        crop_like(load_image(prediction), load_image(photo), crop_size).save(
                            generated[name] / f"{photo.stem}.png"
                        )
                    except (ImageError, ValueError) as error:
                        raise CommandError(f"{prediction}: {error}") from None
            for name, path in checkpoints.items():
                self.stdout.write(f"Colorizing with {name} ({path})")
                generated[name] = Path(work) / name
                # The loaded pair goes in (and is let go of afterwards): colorize_paths does not load it again.
                colorize_paths(
                    loaded.pop(name),
                    crops,
                    generated[name],
                    saturation=saturation.get(name),
                    progress=options["verbosity"] > 1,
                )
            try:
                study = import_study(
                    slug, options["title"], real_dir, generated, size=options["size"], manifest=manifest, **fields
                )
            except StudyImportError as error:
                raise CommandError(str(error)) from None

        self.stdout.write(f"audit passed: {study.stimuli.count()} stimuli")
        self.stdout.write(
            self.style.SUCCESS(
                f"Built study {study.slug!r} ({study.title}): {len(scenes)} scenes x "
                f"(real + {', '.join([*runs, *outputs])}), "
                f"seed {seed}."
            )
        )
        write_design(self, study)
        self.stdout.write(join_url_line(study.get_absolute_url()))

    @staticmethod
    def check_runs(slug, runs):
        """Fail before any slow work on what import_study would only refuse at the end."""
        if Study.objects.filter(slug=slug).exists():
            raise CommandError(f"study {slug!r} already exists; choose another slug")
        try:
            check_model_names(runs)
        except StudyImportError as error:
            raise CommandError(str(error)) from None

    @staticmethod
    def manifest(split_dir, split, scenes, seed, crop_size, checkpoints, stored, saturation):
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
