import io
import re

import numpy as np
import pytest
import skimage.data
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image, ImageCms, PngImagePlugin
from scipy.ndimage import gaussian_filter
from skimage import color

from turing.models import Stimulus, Study
from turing.stimuli.audit import audit_study, file_size_leak, luminance_problems
from turing.stimuli.importing import StudyImportError, import_study
from turing.stimuli.normalize import catch_version
from turing.vocabulary import CATCH, REAL

pytestmark = pytest.mark.django_db

SIZE = 16


def png_bytes(image, **save_options):
    buffer = io.BytesIO()
    image.save(buffer, format=save_options.pop("format", "PNG"), **save_options)
    return buffer.getvalue()


def overwrite(stimulus, data: bytes):
    """Replace a stimulus's stored file, as a careless manual import would."""
    with stimulus.image.storage.open(stimulus.image.name, "wb") as file:
        file.write(data)


def stored_image(stimulus) -> Image.Image:
    with stimulus.image.storage.open(stimulus.image.name, "rb") as file:
        image = Image.open(file)
        image.load()
    return image


@pytest.fixture
def clean_study(build_study):
    # Three scenes leave none to reserve for practice.
    return build_study("clean", scenes=["cat", "dog", "owl"], size=SIZE, practice_trials=0)


@pytest.fixture
def real_cat(clean_study):
    return clean_study.stimuli.get(source=REAL, scene="cat")


def test_a_clean_import_passes(clean_study, capsys):
    assert audit_study(clean_study) == []

    call_command("audit_study", clean_study.slug)

    assert capsys.readouterr().out.strip() == "audit passed: 9 stimuli"


def test_a_jpeg_among_pngs_is_caught(clean_study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat), format="JPEG", quality=95))

    problems = audit_study(clean_study)

    assert any("real/cat" in problem and "is JPEG, not PNG" in problem for problem in problems)


def test_an_exif_tag_is_caught(clean_study, real_cat):
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # camera maker: only a photograph would say this
    overwrite(real_cat, png_bytes(stored_image(real_cat), exif=exif, compress_level=0))

    [problem] = audit_study(clean_study)

    assert "real/cat" in problem and "carries metadata" in problem and "eXIf" in problem


@pytest.mark.parametrize("chunk, add", [("tEXt", "add_text"), ("iTXt", "add_itxt")])
def test_a_text_chunk_is_caught(clean_study, chunk, add):
    generated = clean_study.stimuli.get(source="perceptual", scene="dog")
    info = PngImagePlugin.PngInfo()
    getattr(info, add)("Software", "perceptual colorizer")
    overwrite(generated, png_bytes(stored_image(generated), pnginfo=info, compress_level=0))

    [problem] = audit_study(clean_study)

    assert "perceptual/dog" in problem and chunk in problem


def test_an_icc_profile_is_caught(clean_study, real_cat):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    overwrite(real_cat, png_bytes(stored_image(real_cat), icc_profile=profile, compress_level=0))

    [problem] = audit_study(clean_study)

    assert "iCCP" in problem


def test_a_size_mismatch_is_caught(clean_study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat).resize((20, 20)), compress_level=0))

    problems = audit_study(clean_study)

    assert any("size differs" in problem and "(20, 20)" in problem and "real: 1" in problem for problem in problems)
    assert any("database says 16x16 but the file is 20x20" in problem for problem in problems)


def test_a_mode_mismatch_is_caught(clean_study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat).convert("L"), compress_level=0))

    problems = audit_study(clean_study)

    assert any(
        problem.startswith("mode differs across stimuli: 'RGB' for 8 (koalarization: 3, perceptual: 3, real: 2)")
        and "'L' for 1 (real: 1), e.g. real/cat" in problem
        for problem in problems
    )


def test_a_different_compression_level_is_caught(clean_study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat), compress_level=9))

    problems = audit_study(clean_study)

    assert any(problem.startswith("encoding differs") and "zlib header" in problem for problem in problems)


@pytest.mark.parametrize(
    "source, name, revealed",
    [
        (REAL, "stimuli/real_cat.png", "'real'"),
        ("perceptual", "stimuli/perceptual-4f9a2c.png", "'perceptual'"),
        (REAL, "cat.png", "'cat'"),
    ],
)
def test_a_telltale_name_is_caught(clean_study, source, name, revealed):
    stimulus = clean_study.stimuli.get(source=source, scene="cat")
    with stimulus.image.open("rb") as file:
        stimulus.image.storage.save(name, ContentFile(file.read()))
    Stimulus.objects.filter(pk=stimulus.pk).update(image=name)

    [problem] = audit_study(clean_study)

    assert f"{source}/cat ({name}): storage name is not stimuli/<random token>.png" in problem
    assert revealed in problem


def test_a_file_size_leak_is_caught(build_study):
    study = build_study("sizes", scenes=20, models=("perceptual",), size=SIZE)
    # Same PNG settings for both groups, but noisy reals compress far worse than smooth outputs:
    # only the number of bytes gives the source away.
    for stimulus in study.stimuli.all():
        pixels = np.asarray(stored_image(stimulus)).copy()
        if stimulus.source != REAL:
            pixels[:] = pixels.mean(axis=(0, 1)).astype(np.uint8)
        overwrite(stimulus, png_bytes(Image.fromarray(pixels), compress_level=6))

    # Flat outputs also lose the photos' detail; only the file-size rule is under test here.
    [problem] = audit_study(study, check_luminance=False)

    assert problem.startswith("file size alone separates real from all generated: AUC 1.00")
    assert "20 real, 20 generated" in problem


def test_file_sizes_from_the_same_distribution_pass(build_study):
    study = build_study("fair", scenes=20, models=("perceptual",), size=SIZE)
    rng = np.random.default_rng(7)
    # Every file gets a random share of flat pixels, whatever its source: sizes vary, but not by source.
    for stimulus in study.stimuli.all():
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        pixels[: rng.integers(0, SIZE)] = 128
        overwrite(stimulus, png_bytes(Image.fromarray(pixels), compress_level=6))

    # Random pixels share no lightness with the photos; only the file-size rule is under test here.
    assert audit_study(study, check_luminance=False) == []


def test_tiny_studies_are_not_failed_by_chance():
    # Three reals larger than three fakes happens by chance one time in ten (p = 0.1): not a leak.
    assert file_size_leak([101, 102, 103], [90, 91, 92]) is None
    auc, p_value = file_size_leak(list(range(200, 220)), list(range(100, 120)))
    assert auc == 1.0 and p_value < 1e-6
    assert file_size_leak(list(range(100, 140, 2)), list(range(101, 141, 2))) is None


def test_the_command_lists_the_problems_and_fails(clean_study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat), format="JPEG"))

    with pytest.raises(CommandError, match=r"found \d+ problem\(s\):\n- real/cat .*is JPEG, not PNG"):
        call_command("audit_study", clean_study.slug)


def test_the_command_names_an_unknown_study():
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("audit_study", "nope")


def test_an_empty_study_is_a_problem():
    study = Study.objects.create(slug="empty", title="Empty")

    assert audit_study(study) == ["study 'empty' has no stimuli"]


def lab_of(image: Image.Image) -> np.ndarray:
    return color.rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0)


def from_lab(lab: np.ndarray) -> Image.Image:
    return Image.fromarray((color.lab2rgb(lab).clip(0.0, 1.0) * 255.0).round().astype(np.uint8))


def third_resolution(image):
    """What a model run at 1/3 of the stimulus resolution and upscaled afterwards would give."""
    width, height = image.size
    return image.resize((width // 3, height // 3)).resize((width, height))


def blurred(image):
    pixels = gaussian_filter(np.asarray(image, dtype=np.float64), sigma=(1.5, 1.5, 0))
    return Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))


def brightened(image):
    lab = lab_of(image)
    lab[..., 0] = (lab[..., 0] + 15.0).clip(0.0, 100.0)
    return from_lab(lab)


def saturated(a, b):
    """A recolouring with the photo's L and one strong colour everywhere, partly outside the sRGB gamut."""

    def recolour(image):
        lab = lab_of(image)
        lab[..., 1], lab[..., 2] = a, b
        return from_lab(lab)

    return recolour


def rewrite_folder(folder, change):
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as image:
            changed = change(image.convert("RGB"))
        changed.save(path)


def import_with_perceptual_changed(image_folders, change):
    folders = image_folders(["cat", "dog", "owl"], size=SIZE, name="changed")
    rewrite_folder(folders.generated["perceptual"], change)
    return import_study("changed", "Changed", folders.real, folders.generated, size=SIZE, practice_trials=0)


def measures(problem):
    """(mean |ΔL|, high-frequency energy ratio) named in a lightness problem; None for a measure within limits."""
    mean = re.search(r"mean \|ΔL\| ([\d.]+) \(limit ", problem)
    ratio = re.search(r"high-frequency energy ratio ([\d.]+) \(allowed ", problem)
    return float(mean[1]) if mean else None, float(ratio[1]) if ratio else None


@pytest.mark.parametrize(
    "change, mean_range, ratio_range",
    [(third_resolution, None, (0.0, 0.1)), (blurred, None, (0.0, 0.1)), (brightened, (13.0, 15.5), None)],
    ids=["third resolution", "blurred", "brightened"],
)
def test_a_model_folder_that_changes_the_lightness_is_refused(image_folders, change, mean_range, ratio_range):
    with pytest.raises(StudyImportError) as refused:
        import_with_perceptual_changed(image_folders, change)

    problems = [line for line in str(refused.value).splitlines() if "lightness differs" in line]
    assert [problem.split()[0] for problem in problems] == ["perceptual/cat", "perceptual/dog", "perceptual/owl"]
    for mean, ratio in map(measures, problems):
        assert (mean is None) == (mean_range is None) and (ratio is None) == (ratio_range is None)
        assert mean is None or mean_range[0] <= mean <= mean_range[1]
        assert ratio is None or ratio_range[0] <= ratio <= ratio_range[1]
    assert not Study.objects.filter(slug="changed").exists()


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB:UserWarning")  # clipping is the point
@pytest.mark.parametrize("a, b", [(60, 60), (60, -60), (-60, 60), (-60, -60)])
def test_saturated_colours_with_the_photo_lightness_pass(tmp_path, a, b):
    # Real photographs, not the synthetic ones, whose channels sit so near 0 and 255 that one colour of
    # chroma 85 everywhere clips away most of their detail. Clipping still moves L by up to about 9 here.
    real, perceptual = tmp_path / "real", tmp_path / "perceptual"
    real.mkdir()
    perceptual.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        photo = Image.fromarray(getattr(skimage.data, name)())
        photo.save(real / f"{name}.png")
        saturated(a, b)(photo).save(perceptual / f"{name}.png")

    study = import_study("saturated", "Saturated", real, {"perceptual": perceptual}, size=64, practice_trials=0)

    assert audit_study(study) == []


def test_a_catch_version_keeps_the_lightness_and_turns_the_colours(real_cat):
    photo = stored_image(real_cat)
    photo_lab = lab_of(photo)
    catch = catch_version(photo)
    catch_lab = lab_of(catch)

    assert (catch.mode, catch.size) == ("RGB", photo.size)
    assert np.abs(catch_lab[..., 0] - photo_lab[..., 0]).mean() < 0.5
    # a and b are negated (up to 8-bit rounding): far from the photo's, but the same distance from gray.
    assert np.abs(catch_lab[..., 1:] + photo_lab[..., 1:]).mean() < 1.0
    assert np.linalg.norm(catch_lab[..., 1:] - photo_lab[..., 1:], axis=-1).mean() > 20.0


def test_the_audit_checks_lightness_unless_told_not_to(clean_study):
    generated = clean_study.stimuli.get(source="koalarization", scene="owl")
    overwrite(generated, png_bytes(brightened(stored_image(generated)), compress_level=0))

    [problem] = audit_study(clean_study)

    assert problem.startswith(f"koalarization/owl ({generated.image.name}): lightness differs from the real photo")
    assert audit_study(clean_study, check_luminance=False) == []


def add_stimulus(study, scene, source, png):
    stimulus = Stimulus(study=study, scene=scene, source=source)
    stimulus.image.save(f"{stimulus.token}.png", ContentFile(png), save=False)
    Stimulus._meta.get_field("image").update_dimension_fields(stimulus, force=True)
    stimulus.save()
    return stimulus


def test_catch_stimuli_are_not_held_to_the_photo_lightness(clean_study, real_cat):
    stimulus = add_stimulus(clean_study, "cat", CATCH, png_bytes(brightened(stored_image(real_cat)), compress_level=0))

    assert luminance_problems(clean_study.stimuli.all()) == []

    # The same image from a model is refused.
    Stimulus.objects.filter(pk=stimulus.pk).update(source="sloppy")
    [problem] = luminance_problems(clean_study.stimuli.all())
    assert problem.startswith(f"sloppy/cat ({stimulus.image.name}): lightness differs from the real photo")


def test_a_stimulus_of_another_size_is_reported_not_compared(clean_study):
    generated = clean_study.stimuli.get(source="perceptual", scene="cat")
    overwrite(generated, png_bytes(stored_image(generated).resize((20, 20)), compress_level=0))

    assert luminance_problems(clean_study.stimuli.all()) == [
        f"perceptual/cat ({generated.image.name}): size 20x20 differs from the real photo's 16x16; "
        "lightness not compared"
    ]


def test_a_flat_photo_is_compared_by_its_lightness_level_only(clean_study, real_cat):
    # A flat photo has no detail, so the detail ratio would be 0 / 0.
    overwrite(real_cat, png_bytes(Image.new("RGB", (SIZE, SIZE), (120, 120, 120)), compress_level=0))
    flat = lab_of(Image.new("RGB", (SIZE, SIZE), (120, 120, 120)))
    flat[..., 1:] = (20.0, -30.0)
    generated = clean_study.stimuli.get(source="perceptual", scene="cat")
    overwrite(generated, png_bytes(from_lab(flat), compress_level=0))

    assert luminance_problems(clean_study.stimuli.filter(scene="cat")) == []

    flat[..., 0] += 15.0
    overwrite(generated, png_bytes(from_lab(flat), compress_level=0))
    [problem] = luminance_problems(clean_study.stimuli.filter(scene="cat"))
    assert problem.startswith("perceptual/cat") and "mean |ΔL| 15" in problem and "high-frequency" not in problem


def test_a_scene_in_two_pools_and_a_practice_copy_of_a_scored_image_are_caught(build_study):
    study = build_study("pools", scenes=6, practice_trials=2)
    practice = study.stimuli.filter(pool="practice", source=REAL).first()
    scored = study.stimuli.filter(pool="scored", source=REAL).exclude(scene=practice.scene).first()
    assert audit_study(study) == []

    # A scored stimulus of a practice scene: feedback on that scene would key it.
    Stimulus.objects.filter(study=study, scene=practice.scene, source="perceptual").update(pool="scored")
    problems = audit_study(study)
    assert any(f"scene {practice.scene!r} is in the practice and scored pools" in p for p in problems), problems

    # The same photo under a practice name and a scored name.
    Stimulus.objects.filter(study=study, scene=practice.scene).update(pool="practice")
    with scored.image.open("rb") as file:
        overwrite(practice, file.read())
    problems = audit_study(study)
    assert any("practice image identical to the scored image" in p and scored.scene in p for p in problems), problems


def test_a_2afc_study_is_checked_pair_by_pair_for_the_larger_file(build_study):
    """A 2afc trial shows a scene's real photo beside its colorization, and both files' sizes reach the browser
    (Content-Length): a colorization slightly smaller than its own photo in every scene tells the sides apart
    although, across scenes, the sizes of reals and colorizations overlap (the unpaired rule passes them)."""
    study = build_study("pairsizes", scenes=20, models=("perceptual",), size=SIZE, protocol="2afc")
    rng = np.random.default_rng(7)
    scenes = sorted(set(study.stimuli.values_list("scene", flat=True)))
    flat_rows = {scene: int(rng.integers(0, SIZE - 2)) for scene in scenes}
    noise = {scene: rng.integers(0, 256, (SIZE, SIZE, 3)) for scene in scenes}
    for stimulus in study.stimuli.all():
        pixels = noise[stimulus.scene].copy()
        # Each scene compresses differently; its colorization has one more flat row than its photo.
        pixels[: flat_rows[stimulus.scene] + (stimulus.source != REAL)] = 128
        overwrite(stimulus, png_bytes(Image.fromarray(pixels.astype(np.uint8)), compress_level=6))
    sizes = {(s.scene, s.source): s.image.size for s in study.stimuli.all()}
    real = [sizes[scene, REAL] for scene in flat_rows]
    generated = [sizes[scene, "perceptual"] for scene in flat_rows]
    assert file_size_leak(real, generated) is None, "the unpaired rule alone sees nothing"

    [problem] = audit_study(study, check_luminance=False)

    assert problem.startswith("file size tells the sides of a 2afc pair apart: the real photo is the larger file")
    assert "in 20 of 20 pairs of perceptual" in problem
    study.protocol = "single"
    # One image per trial: the size of a scene's other version is never seen beside it.
    assert audit_study(study, check_luminance=False) == []
