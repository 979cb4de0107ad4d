import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from PIL import Image

from turing import network
from turing.models import Stimulus, Study
from turing.stimuli import importing
from turing.stimuli.importing import (
    StudyImportError,
    _list_folder,
    audit_and_measure,
    import_study,
    plan_import,
    write_stimuli,
)
from turing.stimuli.normalize import catch_version, normalize_image
from turing.vocabulary import CATCH

MODELS = ("perceptual", "koalarization")


def media_files():
    root = Path(settings.MEDIA_ROOT)
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def snapshot():
    return Study.objects.count(), Stimulus.objects.count(), media_files()


@pytest.mark.django_db
def test_import_matches_files_by_stem_and_stores_normalized_stimuli(image_folders):
    folders = image_folders(4, missing={"koalarization": ["scene01"]}, size=40)

    study = import_study(
        "poster",
        "Poster session",
        folders.real,
        folders.generated,
        size=32,
        trials_per_participant=6,
        real_fraction=0.4,
        control_fraction=0.25,
        exposure_ms=900,
        practice_trials=1,
        seed=42,
        completion_url="https://example.org/done",
        ask_expertise=False,
        manifest={"note": "kept"},
        allow_missing=True,
    )

    assert Counter(study.stimuli.values_list("source", flat=True)) == {"real": 4, "perceptual": 4, "koalarization": 3}
    assert study.model_names == ["koalarization", "perceptual"]
    assert (study.trials_per_participant, study.real_fraction, study.control_fraction) == (6, 0.4, 0.25)
    assert (study.exposure_ms, study.practice_trials, study.seed, study.ask_expertise) == (900, 1, 42, False)
    assert study.completion_url == "https://example.org/done"
    assert study.manifest["note"] == "kept"
    assert study.manifest["missing_scenes"] == {"koalarization": ["scene01"]}
    assert study.manifest["import"]["scenes"] == ["scene00", "scene01", "scene02", "scene03"]
    assert study.manifest["import"]["generated"] == {name: str(folders.generated[name]) for name in sorted(MODELS)}
    (practice_scene,) = study.manifest["import"]["practice_scenes"]
    assert study.manifest["import"]["catch_scenes"] == []
    pools = dict(study.stimuli.values_list("scene", "pool").distinct())
    assert pools == {scene: "practice" if scene == practice_scene else "scored" for scene in pools}
    stimulus = study.stimuli.get(scene="scene02", source="perceptual")
    assert stimulus.original_name == str(folders.generated["perceptual"] / "scene02.png")
    assert stimulus.image.name == f"stimuli/{stimulus.token}.png"
    assert (stimulus.width, stimulus.height) == (32, 32)
    with Image.open(stimulus.image.path) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))
    assert media_files() == sorted(f"stimuli/{token}.png" for token in study.stimuli.values_list("token", flat=True))


@pytest.mark.django_db
def test_other_formats_and_hidden_files_are_accepted(image_folders):
    folders = image_folders(3)
    Image.open(folders.real / "scene00.png").convert("RGB").save(folders.real / "scene00.jpg")
    (folders.real / "scene00.png").unlink()
    (folders.real / ".DS_Store").write_bytes(b"\0\1junk")

    study = import_study("mixed", "Mixed formats", folders.real, folders.generated, size=32, practice_trials=0)

    assert study.stimuli.get(scene="scene00", source="real").original_name.endswith("scene00.jpg")
    assert study.stimuli.count() == 9


@pytest.mark.django_db
def test_files_that_are_not_images_are_left_out_with_one_warning(image_folders):
    # What a tester met: a notes.txt among the photos and evaluate's old metrics.csv in a model's outputs.
    folders = image_folders(3)
    (folders.real / "notes.txt").write_text("camera settings")
    (folders.generated["perceptual"] / "metrics.csv").write_text("image,psnr\n")
    (folders.generated["perceptual"] / ".DS_Store").write_bytes(b"\0")
    warnings = []

    study = import_study(
        "stray", "Stray files", folders.real, folders.generated, size=32, practice_trials=0, warn=warnings.append
    )

    assert study.stimuli.count() == 9
    assert not study.stimuli.filter(scene__in=["notes", "metrics"]).exists()
    (warning,) = warnings  # one line for all folders; hidden files are not mentioned
    assert warning.startswith("ignoring 2 file(s) that are not images (images end in .bmp, .jpeg, .jpg, ")
    assert warning.endswith(": real/notes.txt, perceptual/metrics.csv")


def test_the_import_and_split_agree_on_what_is_an_image(image_folders):
    from colorization.images import find_images

    folders = image_folders(2)
    for name in ("notes.txt", "metrics.csv", "upper.JPG", "photo.webp", "scan.tiff"):
        (folders.real / name).write_bytes(b"not opened")
    images, others = _list_folder(folders.real)

    assert images == find_images(folders.real)
    assert sorted(path.name for path in others) == ["metrics.csv", "notes.txt"]


@pytest.mark.django_db
def test_missing_scenes_are_refused_unless_allowed_and_then_recorded(image_folders):
    stems = [f"scene{index:02d}" for index in range(8)]
    folders = image_folders(8, missing={"perceptual": stems[:7], "koalarization": ["scene02", "scene05"]})

    with pytest.raises(StudyImportError) as refused:
        import_study("gaps", "Gaps", folders.real, folders.generated, size=32, practice_trials=0)
    assert str(refused.value).splitlines()[1:] == [
        f"  koalarization ({folders.generated['koalarization']}): 2 of 8 scenes missing: scene02, scene05",
        f"  perceptual ({folders.generated['perceptual']}): 7 of 8 scenes missing: "
        "scene00, scene01, scene02, scene03, scene04 and 2 more",
        "Import with --allow-missing to go on anyway: those scenes are then shown only as real photos for that "
        "model, and the study records which ones.",
    ]
    assert snapshot() == (0, 0, [])

    study = import_study(
        "gaps", "Gaps", folders.real, folders.generated, size=32, practice_trials=0, allow_missing=True
    )
    assert study.manifest["missing_scenes"] == {"koalarization": ["scene02", "scene05"], "perceptual": stems[:7]}
    assert Counter(study.stimuli.values_list("source", flat=True)) == {"real": 8, "koalarization": 6, "perceptual": 1}
    # Nothing missing: nothing recorded, with or without the option.
    complete = image_folders(3, name="complete")
    study = import_study(
        "complete", "Complete", complete.real, complete.generated, size=32, practice_trials=0, allow_missing=True
    )
    assert "missing_scenes" not in study.manifest


def break_corrupt(folders):
    # The last folder imported, so earlier stimuli have been written and must be cleaned up.
    (folders.generated["perceptual"] / "scene03.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return r"perceptual/scene03\.png: unreadable or corrupt image"


def break_only_non_images(folders):
    for path in folders.generated["koalarization"].iterdir():
        path.unlink()
    (folders.generated["koalarization"] / "metrics.csv").write_text("image,psnr\n")
    return r"koalarization: no images found, only files that are not images: metrics\.csv"


def break_missing_scenes(folders):
    for stem in ("scene01", "scene03"):
        (folders.generated["koalarization"] / f"{stem}.png").unlink()
    return (
        r"1 model folder\(s\) lack scenes that the real folder .*real has:\n"
        r"  koalarization \(.*koalarization\): 2 of 4 scenes missing: scene01, scene03\n"
        r"Import with --allow-missing"
    )


def break_path_and_content(folders):
    # A typo in the second model's path and an empty first folder: the path is reported, it is fixed first.
    for path in folders.generated["perceptual"].iterdir():
        path.unlink()
    folders.generated["koalarization"] = folders.root / "koalarizaton"
    return r"koalarizaton: no such folder"


def break_unmatched(folders):
    Image.new("RGB", (32, 32), "red").save(folders.generated["koalarization"] / "cat.png")
    return rf"koalarization/cat\.png: no real image with stem 'cat' in .*{folders.real.name}"


def break_empty(folders):
    for path in folders.generated["koalarization"].iterdir():
        path.unlink()
    return r"koalarization: empty folder"


def break_duplicate(folders):
    Image.open(folders.real / "scene01.png").save(folders.real / "scene01.jpg")
    return r"real/scene01\.(png|jpg): duplicate stem 'scene01'"


def break_missing_folder(folders):
    folders.generated["koalarization"] = folders.root / "nowhere"
    return r"nowhere: no such folder"


def break_model_named_real(folders):
    folders.generated["real"] = folders.generated.pop("koalarization")
    return r"model name 'real' is reserved"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "break_folders",
    [
        break_corrupt,
        break_only_non_images,
        break_missing_scenes,
        break_path_and_content,
        break_unmatched,
        break_empty,
        break_duplicate,
        break_missing_folder,
        break_model_named_real,
    ],
)
def test_bad_import_names_the_problem_and_leaves_nothing(build_study, image_folders, break_folders):
    build_study("existing", scenes=2)
    before = snapshot()
    folders = image_folders(4, name="broken")
    message = break_folders(folders)

    with pytest.raises(StudyImportError, match=message):
        import_study("broken", "Broken", folders.real, folders.generated, size=32)

    assert snapshot() == before
    assert not Study.objects.filter(slug="broken").exists()


@pytest.mark.django_db
def test_the_stages_of_an_import_plan_then_write_then_audit(image_folders):
    folders = image_folders(8, size=40)
    plan = plan_import("staged", "Staged", folders.real, folders.generated, size=32, practice_trials=1, catch_trials=1)
    # The plan decides everything and writes nothing.
    assert snapshot() == (0, 0, []) and plan.study.pk is None
    (practice,) = plan.study.manifest["import"]["practice_scenes"]
    # One attention check per participant, drawn from five catch scenes.
    catch = plan.study.manifest["import"]["catch_scenes"]
    assert len(catch) == 5
    assert Counter(source for _, source, _, _ in plan.stimuli) == {
        "real": 3,
        "catch": 5,
        "perceptual": 3,
        "koalarization": 3,
    }
    assert {(scene, pool) for scene, _, pool, _ in plan.stimuli} >= {(practice, "practice")} | {
        (scene, "catch") for scene in catch
    }

    written = write_stimuli(plan)
    assert sorted(written) == media_files() and len(written) == 14
    assert not plan.study.stimuli.exclude(source__in=("real", "catch")).exclude(metrics=None).exists()
    audit_and_measure(plan.study)
    assert not plan.study.stimuli.filter(source="perceptual", metrics=None).exists()


@pytest.mark.django_db
def test_writing_stops_at_an_unreadable_image_and_leaves_nothing(image_folders):
    folders = image_folders(4)
    plan = plan_import("half", "Half", folders.real, folders.generated, size=32, practice_trials=0)
    (folders.generated["perceptual"] / "scene02.png").write_bytes(b"not a png")

    with pytest.raises(StudyImportError, match="scene02.png"):
        write_stimuli(plan)

    assert snapshot() == (0, 0, [])


@pytest.mark.django_db
def test_existing_slug_is_refused_and_changes_nothing(build_study, image_folders):
    build_study("taken", scenes=2)
    before = snapshot()
    folders = image_folders(3, name="again")

    with pytest.raises(StudyImportError, match="study 'taken' already exists"):
        import_study("taken", "Again", folders.real, folders.generated, size=32)

    assert snapshot() == before


@pytest.mark.django_db
def test_failed_audit_rolls_back_and_deletes_the_written_files(monkeypatch, image_folders):
    monkeypatch.setattr(
        "turing.stimuli.importing.audit_study", lambda study, **checks: ["real/scene00: carries metadata"]
    )
    folders = image_folders(3)

    with pytest.raises(StudyImportError, match="failed the stimulus audit:\nreal/scene00: carries metadata"):
        import_study("audited", "Audited", folders.real, folders.generated, size=32, practice_trials=1)

    assert snapshot() == (0, 0, [])


@pytest.mark.django_db
def test_catch_scenes_hold_one_obviously_wrong_colorization(image_folders):
    folders = image_folders(14)

    study = import_study(
        "checks", "Checks", folders.real, folders.generated, size=32, practice_trials=1, catch_trials=2, seed=4
    )

    # Five catch scenes per attention check, so that each participant's two are drawn from ten.
    catch_scenes = study.manifest["import"]["catch_scenes"]
    assert len(catch_scenes) == 10 and not set(catch_scenes) & set(study.manifest["import"]["practice_scenes"])
    catch = study.stimuli.filter(scene__in=catch_scenes)
    assert sorted(catch.values_list("source", "pool")) == [(CATCH, "catch")] * 10
    assert study.stimuli.filter(pool="catch").count() == 10 and study.model_names == sorted(MODELS)
    for stimulus in catch:
        expected = catch_version(Image.open(io.BytesIO(normalize_image(folders.real / f"{stimulus.scene}.png", 32))))
        with Image.open(stimulus.image.path) as stored:
            assert np.array_equal(np.asarray(stored), np.asarray(expected))
    assert study.stimuli.filter(pool="scored").values("scene").distinct().count() == 3

    # More checks per participant than the pool was reserved for would show each to more than a fifth.
    study.catch_trials = 3
    with pytest.raises(ValidationError, match="15 catch scenes are needed for 3 attention check.* has 10"):
        study.full_clean()
    study.catch_trials = 1
    study.full_clean()


@pytest.mark.django_db
def test_practice_scenes_are_drawn_among_scenes_with_a_generated_version(image_folders):
    real_only = ["scene00", "scene01", "scene02", "scene03"]
    folders = image_folders(6, missing={"perceptual": real_only, "koalarization": real_only})

    study = import_study(
        "drawn", "Drawn", folders.real, folders.generated, size=32, practice_trials=2, allow_missing=True
    )
    assert study.manifest["import"]["practice_scenes"] == ["scene04", "scene05"]

    folders = image_folders(6, missing={"perceptual": real_only, "koalarization": real_only}, name="too-many")
    with pytest.raises(StudyImportError, match="3 practice scenes asked for, but only 2 scenes have a generated"):
        import_study(
            "too-many", "Too many", folders.real, folders.generated, size=32, practice_trials=3, allow_missing=True
        )


@pytest.mark.django_db
def test_the_seed_draws_the_reserved_scenes(image_folders):
    folders = image_folders(16)

    def reserved(slug, seed):
        study = import_study(
            slug, slug, folders.real, folders.generated, size=32, practice_trials=3, catch_trials=2, seed=seed
        )
        return tuple(study.manifest["import"]["practice_scenes"]), tuple(study.manifest["import"]["catch_scenes"])

    assert reserved("first", 1) == reserved("again", 1)
    assert len({reserved(f"seed{seed}", seed) for seed in range(1, 6)}) > 1


@pytest.mark.django_db
@pytest.mark.parametrize("practice, catch, needed", [(3, 0, 4), (2, 1, 8), (0, 1, 6), (0, 3, 16)])
def test_a_study_must_keep_a_scene_to_score(image_folders, practice, catch, needed):
    folders = image_folders(3)
    # Each attention check takes five catch scenes.
    message = f"3 scenes, but {practice} practice and {5 * catch} catch scenes .*: at least {needed} scenes are needed"
    with pytest.raises(StudyImportError, match=message):
        import_study(
            "reserved",
            "Reserved",
            folders.real,
            folders.generated,
            size=32,
            practice_trials=practice,
            catch_trials=catch,
        )
    assert snapshot() == (0, 0, [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options, message",
    [
        ({"real_fraction": 1.5}, "real_fraction"),
        ({"trials_per_participant": 0}, "trials_per_participant"),
        ({"colour": "blue"}, "unknown study option"),
        ({"size": 0}, "stimulus size must be a positive"),
    ],
)
def test_invalid_study_options_are_refused(image_folders, options, message):
    folders = image_folders(2)
    with pytest.raises(StudyImportError, match=message):
        import_study("options", "Options", folders.real, folders.generated, **{"size": 32, **options})
    assert snapshot() == (0, 0, [])


def create_study(*args):
    out = io.StringIO()
    call_command("create_study", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_study_command_stores_options_and_prints_a_summary(image_folders, monkeypatch):
    monkeypatch.setattr(network, "lan_address", lambda: "192.168.1.20")
    folders = image_folders(9, missing={"koalarization": ["scene04"]})

    output = create_study(
        "poster",
        "--title",
        "Poster session",
        "--real",
        folders.real,
        "--generated",
        f"perceptual={folders.generated['perceptual']}",
        "--generated",
        f"koalarization={folders.generated['koalarization']}",
        "--trials",
        4,
        "--real-fraction",
        0.25,
        "--control-fraction",
        0.5,
        "--exposure-ms",
        1000,
        "--practice",
        1,
        "--size",
        32,
        "--seed",
        9,
        "--completion-url",
        "https://example.org/done",
        "--no-expertise",
        "--catch-trials",
        1,
        "--max-participants",
        30,
        "--allow-missing",
    )

    study = Study.objects.get(slug="poster")
    assert study.title == "Poster session"
    assert (study.trials_per_participant, study.real_fraction, study.control_fraction) == (4, 0.25, 0.5)
    assert (study.exposure_ms, study.practice_trials, study.seed) == (1000, 1, 9)
    assert (study.completion_url, study.ask_expertise) == ("https://example.org/done", False)
    assert (study.catch_trials, study.max_participants, study.luminance_mismatch_allowed) == (1, 30, False)
    assert study.stimuli.first().width == 32
    assert "scenes: 3 scored, 1 practice, 5 attention checks" in output
    # koalarization has no scene04, so it has one scored stimulus fewer when scene04 is scored.
    scored = set(study.stimuli.filter(pool="scored").values_list("scene", flat=True))
    assert "real: 3 scored stimuli" in output and "perceptual: 3 scored stimuli" in output
    assert f"koalarization: {3 - ('scene04' in scored)} scored stimuli" in output
    # --trials 4, but a scene is never repeated and only 3 are scored.
    assert "each participant: 1 practice, 3 scored and 1 catch trials" in output
    assert "each participant gets the 1 least shown of the 5, so none reaches more than 1/5 of the" in output
    assert "Join URL (once `manage.py serve` runs on port 8000): http://192.168.1.20:8000/s/poster/" in output


@pytest.mark.django_db
def test_create_study_lets_a_programming_error_through_with_its_traceback(image_folders, monkeypatch):
    folders = image_folders(3)

    def broken(path, size):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(importing, "normalize_image", broken)
    # The ValueError itself, not a one-line CommandError: a bug is not reported as the user's mistake.
    with pytest.raises(ValueError, match="could not be broadcast"):
        create_study("bug", "--title", "Bug", "--real", folders.real, *generated_options(folders), "--practice", 0)
    assert snapshot() == (0, 0, [])


def generated_options(folders):
    return [option for name, folder in folders.generated.items() for option in ("--generated", f"{name}={folder}")]


@pytest.mark.django_db
def test_create_study_refuses_missing_scenes_and_warns_about_non_images(image_folders):
    folders = image_folders(4, missing={"koalarization": ["scene02"]})
    (folders.generated["perceptual"] / "metrics.csv").write_text("image,psnr\n")
    arguments = [
        "gaps",
        "--title",
        "Gaps",
        "--real",
        folders.real,
        "--size",
        32,
        "--practice",
        0,
        "--generated",
        f"perceptual={folders.generated['perceptual']}",
        "--generated",
        f"koalarization={folders.generated['koalarization']}",
    ]

    with pytest.raises(CommandError, match=r"koalarization \(.*\): 1 of 4 scenes missing: scene02\n.*--allow-missing"):
        create_study(*arguments)
    assert snapshot() == (0, 0, [])

    errors = io.StringIO()
    call_command("create_study", *map(str, arguments), "--allow-missing", stdout=io.StringIO(), stderr=errors)
    assert Study.objects.get(slug="gaps").manifest["missing_scenes"] == {"koalarization": ["scene02"]}
    lines = errors.getvalue().splitlines()
    assert [line for line in lines if "not images" in line] == [
        "warning: ignoring 1 file(s) that are not images (images end in .bmp, .jpeg, .jpg, .png, .tif, .tiff, "
        ".webp): perceptual/metrics.csv"
    ]
    assert "warning: koalarization lacks 1 scene(s), shown real-only for it (recorded in the study)" in lines


@pytest.mark.django_db
def test_create_study_defaults_pick_and_store_a_seed(image_folders):
    folders = image_folders(4)
    output = create_study(
        "plain",
        "--title",
        "Plain",
        "--real",
        folders.real,
        "--generated",
        f"perceptual={folders.generated['perceptual']}",
        "--size",
        32,
    )
    study = Study.objects.get(slug="plain")
    assert f"seed {study.seed}" in output
    assert (study.trials_per_participant, study.real_fraction, study.practice_trials) == (20, 0.5, 3)
    assert (study.catch_trials, study.max_participants, study.luminance_mismatch_allowed) == (0, None, False)
    assert study.ask_expertise and study.exposure_ms is None
    assert study.stimuli.filter(pool="practice").values("scene").distinct().count() == 3
    # 4 scenes, 3 of them for practice: 20 trials cannot be had, and the command says what each person gets.
    assert "each participant: 3 practice, 1 scored and 0 catch trials" in output
    assert "--trials 20 asks for more scored trials than there are scored scenes (1)" in output


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--generated", "koalarization"], "expected NAME=DIR"),
        (["--generated", "koalarization=/x", "--generated", "koalarization=/y"], "more than once: koalarization"),
        (["--trials", "many"], "invalid int value"),
    ],
)
def test_create_study_command_line_errors(image_folders, extra, message):
    folders = image_folders(2)
    with pytest.raises(CommandError, match=message):
        create_study(
            "bad",
            "--title",
            "Bad",
            "--real",
            folders.real,
            "--generated",
            f"perceptual={folders.generated['perceptual']}",
            *extra,
        )
    assert snapshot() == (0, 0, [])


@pytest.mark.django_db
def test_create_study_accepts_models_as_call_command_keywords(image_folders):
    folders = image_folders(2)
    generated = [f"{name}={folder}" for name, folder in folders.generated.items()]

    call_command(
        "create_study",
        "keywords",
        title="Keywords",
        real=folders.real,
        generated=generated,
        size=32,
        practice=1,
        stdout=io.StringIO(),
    )

    assert Study.objects.get(slug="keywords").model_names == ["koalarization", "perceptual"]
    with pytest.raises(CommandError, match="at least one --generated"):
        call_command("create_study", "none", title="None", real=folders.real)
    with pytest.raises(CommandError, match="expected NAME=DIR"):
        call_command("create_study", "odd", title="Odd", real=folders.real, generated=["perceptual"])


@pytest.mark.django_db
def test_create_study_reports_an_import_error_as_a_command_error(image_folders):
    folders = image_folders(2)
    Image.new("RGB", (32, 32)).save(folders.generated["perceptual"] / "ghost.png")
    with pytest.raises(CommandError, match="perceptual/ghost.png: no real image with stem 'ghost'"):
        create_study(
            "ghost",
            "--title",
            "Ghost",
            "--real",
            folders.real,
            "--generated",
            f"perceptual={folders.generated['perceptual']}",
        )
    assert snapshot() == (0, 0, [])
