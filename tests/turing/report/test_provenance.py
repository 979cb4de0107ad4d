"""turing.report.provenance: how the stimuli were made, as the report shows it."""

from turing.report import provenance as manifest


def built_manifest():
    """A manifest as build_study writes it, with the import_study entry, on paths that were temporary."""
    work = "/tmp/build_study-poster-k2j4x9"
    return {
        "description": "12 scenes drawn at random from the held-out set (40 images) with seed 3, not hand-picked.",
        "split": "/home/ana/experiments/runs/split",
        "seed": 3,
        "n_scenes": 12,
        "heldout_images": 40,
        "crop_size": 32,
        "scenes": [f"img{i:02d}" for i in range(12)],
        "scene_files": [f"photos/nested/img{i:02d}.jpg" for i in range(12)],
        "runs": {
            "perceptual": {
                "checkpoint": "/tmp/pytest-of-ana/pytest-7/runs/perceptual/last.pt",
                "model_name": "transform_net",
                "model_kwargs": {"width": 0.5},
                "step": 1200,
                "config": {"seed": 11, "image_size": 32, "lr": 0.001},
                "saturation": 1.4,
            },
            "koalarization": {
                "checkpoint": "C:\\Users\\ana\\runs\\koalarization\\best.pt",
                "model_name": "koalarization",
                "model_kwargs": {},
                "step": 800,
                "config": {"seed": 12},
            },
        },
        "import": {
            "real_dir": f"{work}/real",
            "generated": {"koalarization": f"{work}/koalarization", "perceptual": f"{work}/perceptual"},
            "size": 256,
            "scenes": [f"img{i:02d}" for i in range(12)],
            "practice_scenes": ["img00"],
            "catch_scenes": [],
        },
        "luminance_mismatch": ["img03 [perceptual]: lightness differs"],
        "missing_scenes": {"koalarization": ["img03", "img07"]},
        "excluded": {"perceptual": ["img09"], "reason": {"by": "hand", "file": "/home/ana/excluded.csv"}},
        "note": f"copied from {work}/notes/readme.txt; " + "very long " * 40,
    }


def every_string(provenance):
    yield provenance["description"] or ""
    for run in provenance["runs"]:
        yield from run.values()
    for row in provenance["rows"]:
        yield row["label"]
        yield row["value"] or ""
        for key, value in row["items"] or []:
            yield from (key, value)


def test_provenance_is_a_table_of_runs_and_settings_with_file_names_only():
    provenance = manifest.provenance(built_manifest())

    assert provenance["description"].startswith("12 scenes drawn at random")
    assert provenance["runs"] == [
        {
            "name": "perceptual",
            "model": "transform_net",
            "checkpoint": "last.pt",
            "step": "1200",
            "seed": "11",
            "options": "width: 0.5",
            "saturation": "1.4",
        },
        # Studies built before --saturation record none: their colours were shown as predicted.
        {
            "name": "koalarization",
            "model": "koalarization",
            "checkpoint": "best.pt",
            "step": "800",
            "seed": "12",
            "options": "",
            "saturation": "as predicted",
        },
    ]
    rows = {row["label"]: row for row in provenance["rows"]}
    assert rows["Split"]["value"] == "split" and rows["Seed (drawing scenes)"]["value"] == "3"
    assert rows["Scenes"]["value"].startswith("img00, img01") and rows["Scenes"]["value"].endswith("(12 in all)")
    assert "img10" not in rows["Scenes"]["value"]
    assert rows["Scene files"]["value"].startswith("img00.jpg, img01.jpg")
    assert rows["Real photos from"]["value"] == "real"
    assert rows["Generated images from"]["items"] == [("koalarization", "koalarization"), ("perceptual", "perceptual")]
    assert rows["Practice scenes"]["value"] == "img00" and rows["Attention-check scenes"]["value"] == "none"
    # A mapping of lists reads as one line per key; a key the report does not know is shown under its own name.
    assert rows["Scenes without a model's image"]["items"] == [("koalarization", "img03, img07")]
    assert rows["excluded"]["items"] == [("perceptual", "img09"), ("reason", "by: hand; file: excluded.csv")]
    note = rows["note"]["value"]
    assert note.startswith("copied from readme.txt; very long") and note.endswith("…")
    assert len(note) <= manifest.MANIFEST_TEXT_LIMIT
    # The luminance problems have their own warning at the top of the report.
    assert "luminance_mismatch" not in rows
    shown = list(every_string(provenance))
    assert not [text for text in shown if "/tmp" in text or "/home" in text or "\\" in text or "{" in text]


def test_provenance_of_other_manifests():
    assert manifest.provenance({}) == {"description": None, "runs": [], "rows": []}
    assert manifest.provenance(None) == {"description": None, "runs": [], "rows": []}
    # Runs recorded as bare paths, and a list where a mapping was expected: shown, not dropped.
    provenance = manifest.provenance(
        {"runs": {"perceptual": "/srv/runs/perceptual"}, "import": ["a", "b"], "flag": True, "empty": None}
    )
    assert provenance["runs"][0]["checkpoint"] == "perceptual"
    rows = {row["label"]: row["value"] for row in provenance["rows"]}
    assert rows == {"import": "a, b", "flag": "yes", "empty": "—"}
