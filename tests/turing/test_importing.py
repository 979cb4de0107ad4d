import io
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image

from turing.importing import StudyImportError, import_study
from turing.models import Stimulus, Study

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
        "poster", "Poster session", folders.real, folders.generated, size=32,
        trials_per_participant=6, real_fraction=0.4, control_fraction=0.25, exposure_ms=900, practice_trials=1,
        seed=42, completion_url="https://example.org/done", ask_expertise=False, manifest={"note": "kept"},
    )

    assert Counter(study.stimuli.values_list("source", flat=True)) == {"real": 4, "perceptual": 4, "koalarization": 3}
    assert study.model_names == ["koalarization", "perceptual"]
    assert (study.trials_per_participant, study.real_fraction, study.control_fraction) == (6, 0.4, 0.25)
    assert (study.exposure_ms, study.practice_trials, study.seed, study.ask_expertise) == (900, 1, 42, False)
    assert study.completion_url == "https://example.org/done"
    assert study.manifest["note"] == "kept"
    assert study.manifest["import"]["scenes"] == ["scene00", "scene01", "scene02", "scene03"]
    assert study.manifest["import"]["generated"] == {name: str(folders.generated[name]) for name in sorted(MODELS)}
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

    study = import_study("mixed", "Mixed formats", folders.real, folders.generated, size=32)

    assert study.stimuli.get(scene="scene00", source="real").original_name.endswith("scene00.jpg")
    assert study.stimuli.count() == 9


def break_corrupt(folders):
    # The last folder imported, so earlier stimuli have been written and must be cleaned up.
    (folders.generated["perceptual"] / "scene03.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return r"perceptual/scene03\.png: unreadable or corrupt image"


def break_non_image(folders):
    (folders.real / "notes.txt").write_text("camera settings")
    return r"real/notes\.txt: unreadable or corrupt image"


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
    [break_corrupt, break_non_image, break_unmatched, break_empty, break_duplicate, break_missing_folder,
     break_model_named_real],
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
def test_existing_slug_is_refused_and_changes_nothing(build_study, image_folders):
    build_study("taken", scenes=2)
    before = snapshot()
    folders = image_folders(3, name="again")

    with pytest.raises(StudyImportError, match="study 'taken' already exists"):
        import_study("taken", "Again", folders.real, folders.generated, size=32)

    assert snapshot() == before


@pytest.mark.django_db
def test_failed_audit_rolls_back_and_deletes_the_written_files(monkeypatch, image_folders):
    monkeypatch.setattr("turing.importing.audit_study", lambda study: ["real/scene00: carries metadata"])
    folders = image_folders(3)

    with pytest.raises(StudyImportError, match="failed the stimulus audit:\nreal/scene00: carries metadata"):
        import_study("audited", "Audited", folders.real, folders.generated, size=32)

    assert snapshot() == (0, 0, [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options, message",
    [({"real_fraction": 1.5}, "real_fraction"), ({"trials_per_participant": 0}, "trials_per_participant"),
     ({"colour": "blue"}, "unknown study option"), ({"size": 0}, "stimulus size must be a positive")],
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
def test_create_study_command_stores_options_and_prints_a_summary(image_folders):
    folders = image_folders(5, missing={"koalarization": ["scene04"]})

    output = create_study(
        "poster", "--title", "Poster session", "--real", folders.real,
        "--generated", f"perceptual={folders.generated['perceptual']}",
        "--generated", f"koalarization={folders.generated['koalarization']}",
        "--trials", 4, "--real-fraction", 0.25, "--control-fraction", 0.5, "--exposure-ms", 1000, "--practice", 1,
        "--size", 32, "--seed", 9, "--completion-url", "https://example.org/done", "--no-expertise",
    )

    study = Study.objects.get(slug="poster")
    assert study.title == "Poster session"
    assert (study.trials_per_participant, study.real_fraction, study.control_fraction) == (4, 0.25, 0.5)
    assert (study.exposure_ms, study.practice_trials, study.seed) == (1000, 1, 9)
    assert (study.completion_url, study.ask_expertise) == ("https://example.org/done", False)
    assert study.stimuli.first().width == 32
    assert "scenes: 5" in output
    assert "real: 5 stimuli" in output and "perceptual: 5 stimuli" in output and "koalarization: 4 stimuli" in output
    assert "/s/poster/" in output


@pytest.mark.django_db
def test_create_study_defaults_pick_and_store_a_seed(image_folders):
    folders = image_folders(2)
    output = create_study("plain", "--title", "Plain", "--real", folders.real, "--generated",
                          f"perceptual={folders.generated['perceptual']}", "--size", 32)
    study = Study.objects.get(slug="plain")
    assert f"seed {study.seed}" in output
    assert (study.trials_per_participant, study.real_fraction, study.practice_trials) == (20, 0.5, 3)
    assert study.ask_expertise and study.exposure_ms is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra, message",
    [(["--bogus"], "unrecognized arguments: --bogus"),
     (["--generated", "koalarization"], "expected NAME=DIR"),
     (["--generated", "koalarization=/x", "--generated", "koalarization=/y"], "more than once: koalarization"),
     (["--trials", "many"], "invalid int value")],
)
def test_create_study_command_line_errors(image_folders, extra, message):
    folders = image_folders(2)
    with pytest.raises(CommandError, match=message):
        create_study("bad", "--title", "Bad", "--real", folders.real,
                     "--generated", f"perceptual={folders.generated['perceptual']}", *extra)
    assert snapshot() == (0, 0, [])


@pytest.mark.django_db
def test_create_study_accepts_models_as_call_command_keywords(image_folders):
    folders = image_folders(2)
    generated = [f"{name}={folder}" for name, folder in folders.generated.items()]

    call_command("create_study", "keywords", title="Keywords", real=folders.real, generated=generated, size=32,
                 stdout=io.StringIO())

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
        create_study("ghost", "--title", "Ghost", "--real", folders.real,
                     "--generated", f"perceptual={folders.generated['perceptual']}")
    assert snapshot() == (0, 0, [])
