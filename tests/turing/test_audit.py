import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image, ImageCms, PngImagePlugin

from turing.audit import audit_study, file_size_leak
from turing.models import REAL, Stimulus, Study

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
def study(build_study):
    return build_study("clean", scenes=["cat", "dog", "owl"], size=SIZE)


@pytest.fixture
def real_cat(study):
    return study.stimuli.get(source=REAL, scene="cat")


def test_a_clean_import_passes(study, capsys):
    assert audit_study(study) == []

    call_command("audit_study", study.slug)

    assert capsys.readouterr().out.strip() == "audit passed: 9 stimuli"


def test_a_jpeg_among_pngs_is_caught(study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat), format="JPEG", quality=95))

    problems = audit_study(study)

    assert any("real/cat" in problem and "is JPEG, not PNG" in problem for problem in problems)


def test_an_exif_tag_is_caught(study, real_cat):
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # camera maker: only a photograph would say this
    overwrite(real_cat, png_bytes(stored_image(real_cat), exif=exif, compress_level=0))

    [problem] = audit_study(study)

    assert "real/cat" in problem and "carries metadata" in problem and "eXIf" in problem


@pytest.mark.parametrize("chunk, add", [("tEXt", "add_text"), ("iTXt", "add_itxt")])
def test_a_text_chunk_is_caught(study, chunk, add):
    generated = study.stimuli.get(source="perceptual", scene="dog")
    info = PngImagePlugin.PngInfo()
    getattr(info, add)("Software", "perceptual colorizer")
    overwrite(generated, png_bytes(stored_image(generated), pnginfo=info, compress_level=0))

    [problem] = audit_study(study)

    assert "perceptual/dog" in problem and chunk in problem


def test_an_icc_profile_is_caught(study, real_cat):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    overwrite(real_cat, png_bytes(stored_image(real_cat), icc_profile=profile, compress_level=0))

    [problem] = audit_study(study)

    assert "iCCP" in problem


def test_a_size_mismatch_is_caught(study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat).resize((20, 20)), compress_level=0))

    problems = audit_study(study)

    assert any("size differs" in problem and "(20, 20)" in problem and "real: 1" in problem for problem in problems)
    assert any("database says 16x16 but the file is 20x20" in problem for problem in problems)


def test_a_mode_mismatch_is_caught(study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat).convert("L"), compress_level=0))

    problems = audit_study(study)

    assert any(problem.startswith("mode differs across stimuli: 'RGB' for 8 (koalarization: 3, perceptual: 3, "
                                  "real: 2)") and "'L' for 1 (real: 1), e.g. real/cat" in problem
               for problem in problems)


def test_a_different_compression_level_is_caught(study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat), compress_level=9))

    problems = audit_study(study)

    assert any(problem.startswith("encoding differs") and "zlib header" in problem for problem in problems)


@pytest.mark.parametrize(
    "source, name, revealed",
    [(REAL, "stimuli/real_cat.png", "'real'"), ("perceptual", "stimuli/perceptual-4f9a2c.png", "'perceptual'"),
     (REAL, "cat.png", "'cat'")],
)
def test_a_telltale_name_is_caught(study, source, name, revealed):
    stimulus = study.stimuli.get(source=source, scene="cat")
    with stimulus.image.open("rb") as file:
        stimulus.image.storage.save(name, ContentFile(file.read()))
    Stimulus.objects.filter(pk=stimulus.pk).update(image=name)

    [problem] = audit_study(study)

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

    [problem] = audit_study(study)

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

    assert audit_study(study) == []


def test_tiny_studies_are_not_failed_by_chance():
    # Three reals larger than three fakes happens by chance one time in ten (p = 0.1): not a leak.
    assert file_size_leak([101, 102, 103], [90, 91, 92]) is None
    auc, p_value = file_size_leak(list(range(200, 220)), list(range(100, 120)))
    assert auc == 1.0 and p_value < 1e-6
    assert file_size_leak(list(range(100, 140, 2)), list(range(101, 141, 2))) is None


def test_the_command_lists_the_problems_and_fails(study, real_cat):
    overwrite(real_cat, png_bytes(stored_image(real_cat), format="JPEG"))

    with pytest.raises(CommandError, match=r"found \d+ problem\(s\):\n- real/cat .*is JPEG, not PNG"):
        call_command("audit_study", study.slug)


def test_the_command_names_an_unknown_study():
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("audit_study", "nope")


def test_an_empty_study_is_a_problem():
    study = Study.objects.create(slug="empty", title="Empty")

    assert audit_study(study) == ["study 'empty' has no stimuli"]

