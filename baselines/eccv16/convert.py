"""`python -m baselines.eccv16.convert`: Zhang et al.'s released weights as a checkpoint of this package.

The released weights (no download happens here): the authors' PyTorch state_dict
https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth (129 MB; the port's
`eccv16(pretrained=True)` fetches the same file). Turn it into a checkpoint of this package, then use it like
any trained run:

    python -m baselines.eccv16.convert --weights colorization_release_v2-9b330a0b.pth --out runs/eccv16-released
    python -m colorization colorize --checkpoint runs/eccv16-released/last.pt --split runs/split --subset heldout \\
        --out runs/pred-eccv16
    python -m colorization compare --split runs/split --run eccv16=runs/eccv16-released \\
        --run perceptual=runs/perceptual ...
    python manage.py build_study poster --split runs/split --run eccv16=runs/eccv16-released ...

The checkpoint holds the weights in model_state (model_kwargs name no file, so the .pth may be deleted), the
recipe and image_size 256 (the released model's test resolution) in config, step 0 and a note naming the
source file and its SHA-256. It has no optimizer state, so `train --resume` cannot continue it; to fine-tune
the released model, train with `--model-opt weights=PATH`.
"""

import argparse
import hashlib
import sys
from pathlib import Path

from baselines.eccv16 import ECCV16_RECIPE
from baselines.eccv16.model import ECCV16, MODEL_NAME, RELEASED_FILE, TEMPERATURE, read_released_state, width_of
from colorization.backbones import RANDOM_INIT
from colorization.checkpoint import LAST_NAME, save_atomically
from colorization.config import TrainConfig
from colorization.errors import UserError
from colorization.models import model_module


def convert_released(weights, out, *, image_size=256, temperature=TEMPERATURE) -> Path:
    """Write OUT/last.pt, a checkpoint of this package holding the released model of file `weights`.

    The width is read from the file (1.0 for the authors' release). model_kwargs name no file: the weights
    are in model_state. Refuses to overwrite an existing last.pt.
    """
    out = Path(out)
    last = out / LAST_NAME
    if last.exists():
        raise FileExistsError(f"{last} exists: choose another --out, or delete it first")
    width = width_of(read_released_state(weights))
    model = ECCV16(weights=str(weights), width=width, temperature=temperature)
    kwargs = model.checkpoint_kwargs()
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    note = (
        f"converted from {Path(weights).name} (sha256 {digest}) by `python -m baselines.eccv16.convert`: the "
        f"authors' released weights, not trained here; no optimizer state, so it cannot be resumed"
    )
    config = TrainConfig(
        model=MODEL_NAME,
        split=Path(),  # stored as None below
        out=out,
        image_size=int(image_size),
        loss=ECCV16_RECIPE.loss,
        optimizer=ECCV16_RECIPE.optimizer,
        optimizer_options=dict(ECCV16_RECIPE.optimizer_options),
        schedule=ECCV16_RECIPE.schedule,
        batch_size=ECCV16_RECIPE.batch_size,
        model_opts={key: value for key, value in kwargs.items() if key != "num_bins"},  # the weights bring theirs
        max_steps=0,
        progress=False,
    )
    state = {
        "model_name": MODEL_NAME,
        "model_module": model_module(MODEL_NAME),
        "model_kwargs": kwargs,
        "model_state": model.state_dict(),
        "epoch": 0,
        "batch_in_epoch": 0,
        "step": 0,
        "config": {**config.to_dict(), "split": None},  # trained on no split of this package
        "note": note,
        "source_weights": {"file": Path(weights).name, "sha256": digest},
    }
    out.mkdir(parents=True, exist_ok=True)
    save_atomically(state, last)
    return last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baselines.eccv16.convert",
        description="Turn the authors' released eccv16 weights into a checkpoint (RUN_DIR/last.pt) that colorize, "
        "compare and build_study use like a trained run.",
    )
    parser.add_argument("--weights", required=True, metavar="PATH",
                        help=f"the authors' PyTorch state_dict, e.g. {RELEASED_FILE}")  # fmt: skip
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="folder to write last.pt into")
    parser.add_argument("--image-size", type=int, default=256,
                        help="shorter side colorize feeds the model (default 256, the released model's)")  # fmt: skip
    parser.add_argument(
        "--temperature",
        type=float,
        default=TEMPERATURE,
        help=f"annealed-mean T (default {TEMPERATURE}; 1.0 decodes as the authors' PyTorch port)",
    )
    args = parser.parse_args(argv)
    if args.image_size < 1:
        parser.error(f"--image-size must be at least 1, got {args.image_size}")
    if args.weights == RANDOM_INIT:
        parser.error("--weights needs the released weights file: random weights are not the released model")
    try:
        path = convert_released(args.weights, args.out, image_size=args.image_size, temperature=args.temperature)
    except (UserError, OSError) as error:  # a missing, unreadable or foreign file; an existing last.pt
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}; colorize with: python -m colorization colorize --checkpoint {path} --images DIR --out DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
