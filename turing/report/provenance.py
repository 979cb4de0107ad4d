"""How a study's stimuli were made, from the manifest stored with it (Study.manifest: build_study's runs and
split, import_study's record), as short readable rows for the report: file names, never directories."""

import re
from pathlib import PurePosixPath, PureWindowsPath

# How many scene names the "how stimuli were chosen" paragraph lists before it only counts them.
MANIFEST_LIST_PREVIEW = 10
# Longer manifest values are cut here: the report says how stimuli were made, the admin keeps the whole record.
MANIFEST_TEXT_LIMIT = 160

PROVENANCE_LABELS = {
    "split": "Split",
    "seed": "Seed (drawing scenes)",
    "n_scenes": "Scenes drawn",
    "heldout_images": "Held-out images drawn from",
    "crop_size": "Crop size (px)",
    "scenes": "Scenes",
    "scene_files": "Scene files",
    # create_study --allow-missing: {model: [scene, ...]} that model had no image of (shown as real only).
    "missing_scenes": "Scenes without a model's image",
}
IMPORT_LABELS = {
    "real_dir": "Real photos from",
    "generated": "Generated images from",
    "size": "Stimulus size (px)",
    "scenes": "Scenes imported",
    "practice_scenes": "Practice scenes",
    "catch_scenes": "Attention-check scenes",
}
# Values that are paths on the machine that built the study (often a temporary directory): only their last
# component means anything to a reader, and the rest can name a user's home or a deleted temporary folder.
PATH_KEYS = {"split", "checkpoint", "real_dir", "generated", "scene_files"}
# An absolute path inside free text: /a/b/c, ~/a/b or C:\a\b, of which only the last component is kept.
EMBEDDED_PATH = re.compile(r"(?<![\w.:/~-])~?/(?:[^\s/]+/)+([^\s/]+)|\b[A-Za-z]:\\(?:[^\s\\]+\\)+([^\s\\]+)")


def file_name(path):
    """The last component of a stored path, Windows or POSIX, with or without a trailing separator."""
    path = str(path)
    return (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).name or path


def shorten(text, limit=MANIFEST_TEXT_LIMIT):
    text = EMBEDDED_PATH.sub(lambda match: match.group(1) or match.group(2), text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def readable(value, *, path=False):
    """One manifest value as short text: lists as their first MANIFEST_LIST_PREVIEW items and a count,
    mappings as "key: value; ...", paths (path=True) as file names."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return shorten("; ".join(f"{key}: {readable(item, path=path)}" for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        shown = ", ".join(readable(item, path=path) for item in value[:MANIFEST_LIST_PREVIEW])
        if len(value) > MANIFEST_LIST_PREVIEW:
            shown = f"{shown}, … ({len(value)} in all)"
        return shorten(shown, limit=MANIFEST_TEXT_LIMIT * 2)
    return shorten(file_name(value) if path else str(value))


def _row(label, value, *, path=False):
    """A table row: a mapping becomes one sub-row per key ({model: [scene, ...]} reads as a list per model)."""
    if isinstance(value, dict) and value:
        return {
            "label": label,
            "value": None,
            "items": [(str(key), readable(item, path=path)) for key, item in value.items()],
        }
    return {"label": label, "value": readable(value, path=path), "items": None}


def _run_row(name, run):
    """A row of the runs table from build_study's record of a run (a checkpoint's model, step and config)."""
    if not isinstance(run, dict):
        return {
            "name": name,
            "model": "—",
            "checkpoint": readable(run, path=True),
            "step": "—",
            "seed": "—",
            "options": "",
            "saturation": "—",
        }
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    options = run.get("model_kwargs")
    return {
        "name": name,
        "model": readable(run.get("model_name")),
        # Another tool's outputs (build_study --outputs) have a folder where a run has its checkpoint.
        "checkpoint": readable(run.get("checkpoint", run.get("outputs")), path=True),
        "step": readable(run.get("step", run.get("steps"))),
        "seed": readable(run.get("seed", config.get("seed"))),
        # The network's settings (the paper's ablations), which tell two runs of one model apart.
        "options": readable(options) if options else "",
        # A boost after the model (the paper's study used 1.4) changes what participants judged.
        "saturation": readable(run["saturation"]) if run.get("saturation") else "as predicted",
    }


def provenance(manifest):
    """How the stimuli were chosen, from Study.manifest, as {"description": text or None, "runs": [row, ...],
    "rows": [{"label", "value", "items"}, ...]} for the report's table: the runs with checkpoint file names,
    then the split, seed and scenes, then the import record, then any other key as it is named. No value keeps
    a directory, and long ones are cut."""
    if not isinstance(manifest, dict):
        # A JSONField holds whatever was stored; a manifest that is not a mapping is still shown.
        manifest = {} if manifest is None else {"manifest": manifest}
    manifest = dict(manifest)
    description = manifest.pop("description", None)
    # Shown as its own warning at the top of the report.
    manifest.pop("luminance_mismatch", None)
    runs = manifest.pop("runs", None)
    if isinstance(runs, dict):
        run_rows = [_run_row(str(name), run) for name, run in runs.items()]
    else:
        run_rows = []
        if runs is not None:
            manifest["runs"] = runs
    rows = [
        _row(label, manifest.pop(key), path=key in PATH_KEYS)
        for key, label in PROVENANCE_LABELS.items()
        if key in manifest
    ]
    imported = manifest.pop("import", None)
    if isinstance(imported, dict):
        rows += [
            _row(label, imported[key], path=key in PATH_KEYS) for key, label in IMPORT_LABELS.items() if key in imported
        ]
        rows += [
            _row(f"import: {key}", value, path=key in PATH_KEYS)
            for key, value in sorted(imported.items())
            if key not in IMPORT_LABELS
        ]
    elif imported is not None:
        manifest["import"] = imported
    rows += [_row(str(key), value, path=key in PATH_KEYS) for key, value in sorted(manifest.items())]
    return {
        "description": shorten(str(description), limit=MANIFEST_TEXT_LIMIT * 4) if description else None,
        "runs": run_rows,
        "rows": rows,
    }
