"""Turn a folder of real photos and one folder per model into a study, all or nothing.

Files are matched across folders by stem: ``real/cat.jpg``, ``perceptual/cat.png`` and
``koalarization/cat.png`` are the three stimuli of scene ``cat``. A generated image without a real photo is
an error, and so is a model folder that lacks some of the real scenes, unless allow_missing: those scenes
are then real-only for that model, and the study's manifest records them under "missing_scenes" for the
report. What counts as an image is colorization.images.is_image_file, the rule `python -m colorization
split` uses: other files (a notes.txt, evaluate's CSV) are left out with one warning, hidden files such as
``.DS_Store`` silently; subfolders are not searched.

The study's practice_trials reserve that many scenes, and its catch_trials CATCH_POOL_FACTOR (5) scenes per
attention check (turing.models.catch_scenes_needed), drawn at random with the study's seed: practice scenes
(drawn among those with a generated version) keep their real and generated stimuli in the practice pool, and
each catch scene becomes one attention-check stimulus, an obviously wrong colorization of its real photo
(turing.stimuli.normalize.catch_version). Each participant gets catch_trials of the catch scenes, the
least-shown ones (turing.participant.enrollment), so no check image reaches more than a fifth of the
participants. No reserved scene is ever scored, so feedback on practice images says nothing about the scored
ones, and a check image, whose colours are the photo's turned around, gives no scored photo away.

Each image goes through turing.stimuli.normalize.normalize_image and is stored under a random name
(``stimuli/<token>.png``). The study is then audited (turing.stimuli.audit.audit_study), lightness included
unless allow_luminance_mismatch, which the study then records for its report. Every generated stimulus then
gets its colorization metrics against its scene's real stimulus (turing.stimuli.metrics). Any error rolls the
database back and deletes the files already written, so a failed import leaves no trace.
"""

import io
import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from PIL import Image

from colorization.errors import UserError
from colorization.images import IMAGE_EXTENSIONS, DuplicateStemError, by_stem, first_few, is_image_file
from turing.models import CATCH_POOL_FACTOR, Pool, Stimulus, Study, catch_scenes_needed
from turing.stimuli.audit import audit_study, luminance_problems
from turing.stimuli.metrics import MetricsError, fill_metrics
from turing.stimuli.normalize import DEFAULT_STIMULUS_SIZE, StimulusError, catch_version, encode_png, normalize_image
from turing.vocabulary import CATCH, REAL

# Study fields an import may set besides slug and title: the design and the settings that stay editable.
STUDY_OPTIONS = {
    *Study.DESIGN_FIELDS,
    "status",
    "max_participants",
    "show_score",
    "completion_url",
    "completion_code",
    "time_limit_minutes",
    "series",
    "manifest",
}

logger = logging.getLogger(__name__)


MISSING_HINT = (
    "Import with --allow-missing to go on anyway: those scenes are then shown only as real photos for that "
    "model, and the study records which ones."
)

LIGHTNESS_HINT = (
    "A colorization keeps the photo's lightness; if these differences are expected (another kind of model), "
    "import with --allow-luminance-mismatch and the report will say so."
)


class StudyImportError(UserError):
    """A study could not be imported; the message names the offending file or option."""


def import_study(slug, title, real_dir, generated, **options) -> Study:
    """Create study ``slug`` from real_dir and generated = {model name: folder}; return the saved Study.

    options are plan_import's: size, allow_luminance_mismatch, allow_missing, warn, and the study_fields,
    which are Study options (trials_per_participant, real_fraction, control_fraction, exposure_ms,
    practice_trials, catch_trials, max_participants, ask_expertise, expertise_question, completion_url,
    completion_code, time_limit_minutes, series, seed,
    status, manifest). The manifest is kept and gets an "import" entry recording the folders, size, scenes
    and the practice and catch scenes, and with allow_missing a "missing_scenes" entry {model: [scenes]} for
    the models that lack some. warn(line) receives the one warning about files that are not images (default:
    this module's logger).
    Checks run in the order a user fixes them: names and paths, then counts (plan_import), then the slow
    normalizing (write_stimuli), then the audit and the metrics (audit_and_measure).
    Raises StudyImportError, leaving the database and media storage unchanged.
    """
    plan = plan_import(slug, title, real_dir, generated, **options)
    written: list[str] = []
    with _all_or_nothing(written):
        written += write_stimuli(plan)
        audit_and_measure(plan.study)
    return plan.study


@dataclass(frozen=True)
class ImportPlan:
    """Everything an import writes, decided before anything is: the validated, unsaved study (its manifest
    included), the stimulus size, and each stimulus to store as (scene, source, pool, file), in storing order."""

    study: Study
    size: int
    stimuli: list[tuple[str, str, str, Path]]


def plan_import(
    slug,
    title,
    real_dir,
    generated,
    *,
    size=DEFAULT_STIMULUS_SIZE,
    allow_luminance_mismatch=False,
    allow_missing=False,
    warn=None,
    **study_fields,
) -> ImportPlan:
    """Read and check the folders and options of an import (import_study's arguments) and decide the study,
    its manifest and every stimulus; nothing is written. StudyImportError names the first problem found."""
    real_dir = Path(real_dir)
    generated = {name: Path(folder) for name, folder in generated.items()}
    _check_names_and_paths(slug, real_dir, generated, size, study_fields)
    real_files, generated_files = _scan_folders(real_dir, generated, warn or logger.warning)
    missing = _missing_scenes(real_dir, generated, real_files, generated_files)
    if missing and not allow_missing:
        lines = [
            f"  {name} ({generated[name]}): {len(stems)} of {len(real_files)} scenes missing: {first_few(stems)}"
            for name, stems in missing.items()
        ]
        raise StudyImportError(
            f"{len(missing)} model folder(s) lack scenes that the real folder {real_dir} has:\n"
            + "\n".join(lines)
            + f"\n{MISSING_HINT}"
        )

    scenes = sorted(real_files)
    manifest = dict(study_fields.pop("manifest", None) or {})
    study = Study(slug=slug, title=title, luminance_mismatch_allowed=allow_luminance_mismatch, **study_fields)
    try:
        study.full_clean(exclude=["manifest"])
    except ValidationError as error:
        raise StudyImportError(f"study {slug!r}: {_describe(error)}") from None
    with_generated = {scene for files in generated_files.values() for scene in files}
    pool_of = reserve_scenes(scenes, with_generated, study.practice_trials, study.catch_trials, study.seed)
    manifest["import"] = {
        "real_dir": str(real_dir),
        "generated": {name: str(folder) for name, folder in sorted(generated.items())},
        "size": size,
        "scenes": scenes,
        "practice_scenes": sorted(scene for scene, pool in pool_of.items() if pool == Pool.PRACTICE),
        "catch_scenes": sorted(scene for scene, pool in pool_of.items() if pool == Pool.CATCH),
    }
    if missing:
        # Kept so that the report can say which models were shown on fewer scenes, and which ones.
        manifest["missing_scenes"] = missing
    study.manifest = manifest

    stimuli = [
        (scene, CATCH if pool_of[scene] == Pool.CATCH else REAL, pool_of[scene], real_files[scene]) for scene in scenes
    ]
    for name in sorted(generated_files):
        stimuli += [
            (scene, name, pool_of[scene], path)
            for scene, path in sorted(generated_files[name].items())
            if pool_of[scene] != Pool.CATCH
        ]
    return ImportPlan(study, size, stimuli)


def write_stimuli(plan: ImportPlan) -> list[str]:
    """Save plan's study and its stimuli, each image normalised (turing.stimuli.normalize; a catch stimulus
    made an attention check) and stored under a random name; return the names of the files stored.

    All or nothing: on any error the database is rolled back and the files already stored are deleted.
    StudyImportError for an image that cannot be read, or a slug another import took meanwhile.
    """
    image_field = Stimulus._meta.get_field("image")
    written: list[str] = []
    try:
        with _all_or_nothing(written):
            plan.study.save()
            for scene, source, pool, path in plan.stimuli:
                stimulus = Stimulus(study=plan.study, scene=scene, source=source, pool=pool, original_name=str(path))
                png = _stimulus_png(path, source, plan.size)
                stimulus.image.save(f"{stimulus.token}.png", ContentFile(png), save=False)
                written.append(str(stimulus.image.name))
                # FieldFile.save measures the already consumed upload and records no width/height;
                # measure the stored file instead.
                image_field.update_dimension_fields(stimulus, force=True)
                stimulus.save()
    except IntegrityError as error:
        # A concurrent import took the slug between plan_import's checks and save.
        raise StudyImportError(f"study {plan.study.slug!r}: {error}") from None
    return written


def audit_and_measure(study: Study) -> None:
    """Audit a study's stored stimuli (turing.stimuli.audit.audit_study), lightness included unless the study
    allows a mismatch, which its manifest then records under "luminance_mismatch", and store every generated
    stimulus's metrics (turing.stimuli.metrics). StudyImportError listing the problems, or naming the stimulus
    that cannot be measured."""
    problems = audit_study(study, check_luminance=False)
    lightness = luminance_problems(study.stimuli.all())
    if study.luminance_mismatch_allowed:
        # Kept so that the report can say which models and scenes differ, not only that some may.
        study.manifest["luminance_mismatch"] = lightness
        study.save(update_fields=["manifest"])
    elif lightness:
        problems += [*lightness, LIGHTNESS_HINT]
    if problems:
        raise StudyImportError(f"study {study.slug!r} failed the stimulus audit:\n" + "\n".join(problems))
    try:
        fill_metrics(study)
    except MetricsError as error:
        raise StudyImportError(str(error)) from None


@contextmanager
def _all_or_nothing(written: list[str]):
    """A transaction that, should anything in it fail, is rolled back and deletes the stimulus files named in
    written, a list the block fills as it stores them."""
    try:
        with transaction.atomic():
            yield
    except BaseException:
        storage = Stimulus._meta.get_field("image").storage
        for name in written:
            storage.delete(name)
        raise


def _check_names_and_paths(slug, real_dir: Path, generated: dict[str, Path], size, study_fields) -> None:
    if Study.objects.filter(slug=slug).exists():
        raise StudyImportError(f"study {slug!r} already exists; choose another slug")
    check_model_names(generated)
    unknown = sorted(set(study_fields) - STUDY_OPTIONS)
    if unknown:
        raise StudyImportError(f"unknown study option(s): {', '.join(unknown)}")
    # Every folder's existence before any folder's content, so that a typo is not hidden behind another error.
    for folder in [real_dir, *generated.values()]:
        if not folder.is_dir():
            raise StudyImportError(f"{folder}: no such folder")
    if size < 1:
        raise StudyImportError(f"stimulus size must be a positive number of pixels, got {size}")


def _scan_folders(real_dir: Path, generated: dict[str, Path], warn) -> tuple[dict[str, Path], dict[str, dict]]:
    """({stem: real photo}, {model: {stem: its image}}); warn(line) is told of the files that are not images.
    StudyImportError for a folder without images, a stem twice in a folder, or a generated image without
    a real photo of its stem."""
    listed = {REAL: _list_folder(real_dir), **{name: _list_folder(folder) for name, folder in generated.items()}}
    ignored = [f"{path.parent.name}/{path.name}" for _, others in listed.values() for path in others]
    if ignored:
        warn(
            f"ignoring {len(ignored)} file(s) that are not images (images end in "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}): {first_few(ignored, shown=10)}"
        )
    real_files = _images_by_stem(real_dir, *listed[REAL])
    generated_files = {name: _images_by_stem(folder, *listed[name]) for name, folder in generated.items()}
    for stems in generated_files.values():
        for stem, path in stems.items():
            if stem not in real_files:
                raise StudyImportError(f"{path}: no real image with stem {stem!r} in {real_dir}")
    return real_files, generated_files


def _missing_scenes(real_dir, generated, real_files, generated_files) -> dict[str, list[str]]:
    """{model: the real scenes its folder lacks}, for the models that lack some."""
    # A model folder with fewer scenes is most often an unfinished colorize run, not a design: import_study
    # refuses it unless asked, since that model would then be scored on other scenes than the rest.
    missing = {name: sorted(set(real_files) - set(files)) for name, files in sorted(generated_files.items())}
    return {name: stems for name, stems in missing.items() if stems}


def _stimulus_png(path: Path, source: str, size: int) -> bytes:
    """The stored PNG of the image at path: normalised, and turned into an attention check for a catch stimulus."""
    try:
        png = normalize_image(path, size)
    except StimulusError as error:
        raise StudyImportError(str(error)) from None
    if source == CATCH:
        return encode_png(catch_version(Image.open(io.BytesIO(png))))
    return png


def reserve_scenes(scenes, with_generated, n_practice, catch_trials, seed) -> dict[str, str]:
    """{scene: pool}: n_practice practice scenes drawn among with_generated, the catch scenes that catch_trials
    attention checks need (catch_scenes_needed) among the rest, the others scored; StudyImportError, saying how
    many scenes are needed, when fewer than one scene would be left to score."""
    n_catch = catch_scenes_needed(catch_trials)
    if n_practice + n_catch >= len(scenes):
        raise StudyImportError(
            f"{len(scenes)} scenes, but {n_practice} practice and {n_catch} catch scenes ({CATCH_POOL_FACTOR} per "
            f"attention check) are reserved from them: at least {n_practice + n_catch + 1} scenes are needed to "
            "leave one to score"
        )
    if n_practice > len(with_generated):
        raise StudyImportError(
            f"{n_practice} practice scenes asked for, but only {len(with_generated)} scenes have a generated version"
        )
    rng = random.Random(f"{seed}:pools")
    practice = set(rng.sample(sorted(with_generated), n_practice))
    catch = set(rng.sample(sorted(set(scenes) - practice), n_catch))
    return {
        scene: Pool.PRACTICE if scene in practice else Pool.CATCH if scene in catch else Pool.SCORED for scene in scenes
    }


def check_model_names(generated):
    """StudyImportError unless there is at least one model and every name is a slug other than "real" and "catch"."""
    if not generated:
        raise StudyImportError("at least one generated folder (model name -> folder) is required")
    for name in generated:
        if name in (REAL, CATCH):
            raise StudyImportError(
                f"model name {name!r} is reserved ({REAL!r}: the real photos, {CATCH!r}: attention checks)"
            )
        try:
            validate_slug(name)
        except ValidationError:
            raise StudyImportError(f"model name {name!r}: use letters, digits, hyphens and underscores only") from None


def _list_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images, other files) directly in folder, each sorted; hidden files are in neither."""
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    return [path for path in files if is_image_file(path)], [path for path in files if not is_image_file(path)]


def _images_by_stem(folder: Path, images: list[Path], others: list[Path]) -> dict[str, Path]:
    if not images:
        if others:
            raise StudyImportError(f"{folder}: no images found, only files that are not images: {first_few(others)}")
        raise StudyImportError(f"{folder}: empty folder, no images found")
    try:
        return by_stem(images)
    except DuplicateStemError as error:
        raise StudyImportError(
            f"{error.second}: duplicate stem {error.stem!r} in {folder} (also {Path(error.first).name})"
        ) from None


def _describe(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)
