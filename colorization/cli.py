"""`python -m colorization COMMAND ...`: split, train, colorize, evaluate, plot, compare.

Each command imports its (torch-heavy) module only when it runs, so `--help` stays fast. Bad input (a corrupt
or missing file, an unknown model, weights that cannot be fetched offline, ...: a colorization.errors.UserError,
or a missing, existing or non-folder path the user named) prints one line to stderr and exits with status 2;
`--traceback` shows the full traceback instead. Any other exception is a bug and keeps its traceback.
"""

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from colorization.config import OPTIMIZERS, TrainConfig
from colorization.errors import ConfigError, UserError
from colorization.models import import_model_module

# What the commands raise for a path the user named: a split, run folder, checkpoint or --out that is missing,
# already there, or not a folder.
PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for module in getattr(args, "model_modules", None) or ():
            import_model_module(module)
        args.handler(args, parser)
    except (UserError, *PATH_ERRORS) as error:
        if args.traceback:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


RECIPE = "(default: the model's recipe, see docs/training.md)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m colorization", description=__doc__.splitlines()[0])
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an input error")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_split(commands)
    _add_train(commands)
    _add_colorize(commands)
    _add_evaluate(commands)
    _add_plot(commands)
    _add_compare(commands)
    return parser


def _add_split(commands):
    parser = commands.add_parser("split", help="write a deterministic train / held-out manifest of a folder")
    parser.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="split folder to write (split.json)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--holdout", type=int, help="number of held-out images (of groups with --group-by)")
    size.add_argument("--holdout-frac", type=float, help="fraction of images held out (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--group-by", metavar="REGEX",
        help="keep images of one photo on one side: files whose stems give the same first group of REGEX form "
        "a group, and --holdout / --holdout-frac count groups; e.g. '(.+)-\\d+$' for crops named PHOTO-NN",
    )  # fmt: skip
    parser.set_defaults(handler=_run_split)


def _run_split(args, parser):
    from colorization.split import make_split

    split = make_split(
        args.images, args.out, holdout=args.holdout, holdout_frac=args.holdout_frac, seed=args.seed,
        group_by=args.group_by,
    )  # fmt: skip
    groups = f" ({split.groups} groups by --group-by)" if split.groups else ""
    print(f"{args.out}: {len(split.train)} train, {len(split.heldout)} held-out images{groups}")


def _add_train(commands):
    defaults = {item.name: item.default for item in dataclasses.fields(TrainConfig)}

    def default(name):
        value = defaults[name]
        return f"(default: {','.join(value) if isinstance(value, tuple) else value})"

    # Only the options given on the command line reach TrainConfig, so that `--resume` can tell them
    # apart from the run's stored settings.
    parser = commands.add_parser(
        "train",
        help="train a colorization model on a split",
        argument_default=argparse.SUPPRESS,
        description="Train a model; with --resume, continue RUN_DIR/last.pt with its stored settings, "
        "overridden by any option given, except --max-steps, which is not stored: without it the run goes on to the "
        "end of its schedule.",
    )
    parser.add_argument("--model", help="registered model name, e.g. perceptual, koalarization or eccv16")
    _add_model_module(parser)
    parser.add_argument("--split", type=Path, help="split folder written by `split`")
    parser.add_argument("--out", type=Path, required=True, help="run folder (last.pt, best.pt, log.csv)")
    parser.add_argument("--epochs", type=int, help="total epochs (default: the schedule's sum)")
    parser.add_argument("--schedule", help=f'learning rate per epoch span, "epochs:lr,..." {RECIPE}')
    parser.add_argument("--lr", type=float, help="constant learning rate instead of the schedule")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help=RECIPE)
    parser.add_argument(
        "--optimizer-opt", dest="optimizer_options", type=parse_key_value, nargs="+", action="extend",
        metavar="KEY=VALUE", help=f"optimizer keyword argument, e.g. weight_decay=1e-3 betas=[0.9,0.99] {RECIPE}",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, help=f"images per optimizer step {RECIPE}")
    parser.add_argument(
        "--micro-batch-size", type=int, metavar="N",
        help="accumulate gradients over chunks of N images when a whole batch does not fit in memory",
    )  # fmt: skip
    parser.add_argument("--image-size", type=int, help=f"side of the square training crops {RECIPE}")
    parser.add_argument("--workers", type=int, help=f"data loader processes {default('workers')}")
    parser.add_argument("--seed", type=int, help=default("seed"))
    parser.add_argument("--device", help=f"auto, cpu, cuda or cuda:N {default('device')}")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in all")
    parser.add_argument("--limit-images", type=int, help="use only the first N train and N held-out images")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt exactly")
    parser.add_argument("--loss", help=f"a registered loss: perceptual, mse, ... {RECIPE}")
    parser.add_argument(
        "--vgg-layers", type=_names, metavar="NAMES",
        help=f"VGG16 layers of the perceptual loss {default('vgg_layers')}",
    )  # fmt: skip
    parser.add_argument("--vgg-layer-weights", type=_floats, metavar="WEIGHTS", help="one per layer (default: all 1)")
    parser.add_argument("--vgg-weights", help=f"imagenet, a state_dict PATH, or none {default('vgg_weights')}")
    parser.add_argument(
        "--irv2-weights",
        help="koalarization's Inception-ResNet-v2: imagenet, a state_dict PATH, or none (default: imagenet); "
        "the same as --model-opt irv2_weights=...",
    )
    parser.add_argument(
        "--pixel-weight", type=float,
        help=f"weight of an MSE term added to the perceptual loss, on ab (on RGB for output=rgb models) "
        f"{default('pixel_weight')}",
    )  # fmt: skip
    parser.add_argument(
        "--model-opt",
        dest="model_opts",
        type=parse_key_value,
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help="model option, value parsed as JSON if it can be: width=0.25 activation=tanh down_layers=[4,6]",
    )
    parser.add_argument(
        "--cache-features",
        action="store_true",
        help="reuse the frozen backbone's output (koalarization's Inception-ResNet-v2) for inputs seen before; "
        "pays off when crops repeat (images already square at --image-size), costs memory otherwise",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(handler=_run_train)


def _run_train(args, parser):
    from colorization.train import config_for_resume, train

    given = {name: value for name, value in vars(args).items() if name not in ("handler", "traceback", "model_modules")}
    for name in ("model_opts", "optimizer_options"):
        if name in given:
            given[name] = dict(given[name])
    if "irv2_weights" in given:
        given.setdefault("model_opts", {})["irv2_weights"] = given.pop("irv2_weights")
    if given.pop("resume", False):
        config = config_for_resume(**given)
    elif "model" not in given or "split" not in given:
        parser.error("train needs --model and --split (or --resume to continue a run)")
    else:
        config = TrainConfig(**given)
    # Before train() starts torch's work (and, under torchrun, the process group): a typo fails in a second.
    config.check_paths()
    config = config.resolve()
    is_main = int(os.environ.get("RANK", 0)) == 0  # under torchrun, one message rather than one per process
    try:
        result = train(config)
    except KeyboardInterrupt as interrupt:
        if is_main:
            print(_how_to_resume(config, interrupt), file=sys.stderr)
        raise SystemExit(130) from None  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    if is_main:
        print(f"{config.out}: step {result.step}, best held-out loss {result.best_loss:.5g}")


def _how_to_resume(config, interrupt) -> str:
    """One line: what Ctrl-C left in config.out and the command that continues it."""
    from colorization.checkpoint import LAST_NAME, load_checkpoint
    from colorization.train import TrainingStopped

    last = config.out / LAST_NAME
    if isinstance(interrupt, TrainingStopped):
        saved = f"stopped at step {interrupt.step}, saved in {last}"
    elif last.is_file():
        saved = f"interrupted; {last} holds step {load_checkpoint(last)['step']}"
    else:
        return f"interrupted before the first checkpoint ({last}): nothing to resume, run the same command again"
    world = int(os.environ.get("WORLD_SIZE", 1))
    launcher = f"torchrun --nproc_per_node={world}" if world > 1 else "python"
    # --max-steps is the one setting --resume does not take from the checkpoint.
    max_steps = f" --max-steps {config.max_steps}" if config.max_steps else ""
    return f"{saved}; continue with: {launcher} -m colorization train --resume --out {config.out}{max_steps}"


def _add_colorize(commands):
    parser = commands.add_parser("colorize", help="colorize images with a trained checkpoint")
    parser.add_argument("--checkpoint", type=Path, required=True, help="RUN_DIR/last.pt or best.pt")
    _add_model_module(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", type=Path, help="split folder: colorize its --subset")
    source.add_argument("--images", type=Path, help="folder of images (grayscale or colour)")
    parser.add_argument("--subset", choices=("heldout", "train"), default="heldout")
    parser.add_argument("--out", type=Path, required=True, help="folder for one <stem>.png per input")
    parser.add_argument("--saturation", type=float, help="chroma (ab) factor, e.g. 1.4 for the paper's +40%%")
    parser.add_argument("--image-size", type=int, help="shorter side fed to the model (default: training size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--batch-size", type=int,
        help="images per forward pass (default: the fastest measured on the device: 1 on CPU, 8 on CUDA)",
    )  # fmt: skip
    parser.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    parser.set_defaults(handler=_run_colorize)


def _run_colorize(args, parser):
    from colorization.images import find_images
    from colorization.inference import colorize_paths
    from colorization.split import read_split

    paths = getattr(read_split(args.split), args.subset) if args.split else find_images(args.images)
    written = colorize_paths(
        args.checkpoint,
        paths,
        args.out,
        image_size=args.image_size,
        saturation=args.saturation,
        device=args.device,
        batch_size=args.batch_size,
        skip_existing=args.skip_existing,
    )
    print(f"{args.out}: {len(written)} colorized images")


def _add_evaluate(commands):
    parser = commands.add_parser("evaluate", help="PSNR, SSIM, ab error, AuC and colourfulness of predictions")
    predictions = parser.add_mutually_exclusive_group(required=True)
    predictions.add_argument("--pred", type=Path, help="folder written by colorize")
    predictions.add_argument(
        "--outputs", type=_named_folder, action="append", metavar="NAME=DIR",
        help="a folder of colorizations named after the held-out images (<stem>.png or another tool's own "
        "extension), e.g. DDColor's; repeat for several models",
    )  # fmt: skip
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--subset", choices=("heldout", "train"), default="heldout")
    # Beside PRED, not in it: PRED is what create_study --generated imports, image by image.
    parser.add_argument(
        "--csv", type=Path, help="per-image CSV to write with --pred (default: PRED.metrics.csv, beside PRED; "
        "with --outputs always DIR.metrics.csv beside each DIR)",
    )  # fmt: skip
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args, parser):
    from colorization.metrics import default_metrics_path, evaluate, format_table

    if args.outputs and args.csv:
        parser.error("--csv goes with --pred; with --outputs each DIR gets DIR.metrics.csv")
    folders = _unique_names(parser, args.outputs) if args.outputs else {args.pred.name: args.pred}
    for name, folder in folders.items():
        per_image = evaluate(folder, args.split, subset=args.subset)
        csv_path = args.csv or default_metrics_path(folder)
        per_image.to_csv(csv_path, index=False)
        if args.outputs:
            print(f"{name} ({folder}):")
        print(format_table(per_image))
        print(f"per-image metrics written to {csv_path}")


def _add_plot(commands):
    parser = commands.add_parser("plot", help="training curves or layer activation maps")
    kinds = parser.add_subparsers(required=True, metavar="FIGURE")
    curves = kinds.add_parser("curves", help="loss and learning rate from RUN_DIR/log.csv")
    curves.add_argument("--run", type=Path, required=True)
    curves.add_argument("--out", type=Path, help="PNG to write (default: RUN_DIR/curves.png)")
    curves.set_defaults(handler=_run_plot_curves)
    activations = kinds.add_parser("activations", help="channel activations of one encoder layer for an image")
    activations.add_argument("--checkpoint", type=Path, required=True)
    _add_model_module(activations)
    activations.add_argument("--image", type=Path, required=True)
    activations.add_argument("--layer", type=int, required=True, help="encoder layer number, from 1")
    activations.add_argument("--out", type=Path, help="PNG to write (default: beside the checkpoint)")
    activations.add_argument("--max-channels", type=int, default=64)
    activations.add_argument("--device", default="auto")
    activations.set_defaults(handler=_run_plot_activations)


def _run_plot_curves(args, parser):
    from colorization.plots import plot_curves

    print(plot_curves(args.run, args.out))


def _run_plot_activations(args, parser):
    from colorization.plots import plot_activations

    out = plot_activations(
        args.checkpoint, args.image, args.layer, args.out, device=args.device, max_channels=args.max_channels
    )
    print(out)


def _add_compare(commands):
    parser = commands.add_parser("compare", help="colorize, evaluate and gallery several runs on one split")
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument(
        "--run", dest="runs", type=_named_run, action="append", default=[], metavar="NAME=RUN_DIR",
        help="a trained run (folder with last.pt, or a checkpoint file); repeat for each model",
    )  # fmt: skip
    parser.add_argument(
        "--outputs", type=_named_folder, action="append", default=[], metavar="NAME=DIR",
        help="colorizations of the held-out images made by another tool (DDColor, ...), one file per image "
        "named after it; scored and shown beside the runs",
    )  # fmt: skip
    _add_model_module(parser)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pick", choices=("worst", "best", "random"), default="random")
    parser.add_argument("--rows", type=int, default=6, help="gallery rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--saturation", type=float)
    parser.set_defaults(handler=_run_compare)


def _run_compare(args, parser):
    import pandas as pd

    from colorization.compare import compare

    if not args.runs and not args.outputs:
        parser.error("compare needs at least one --run NAME=RUN_DIR or --outputs NAME=DIR")
    result = compare(
        args.split,
        _unique_names(parser, args.runs),
        args.out,
        outputs=_unique_names(parser, args.outputs),
        pick=args.pick,
        n_rows=args.rows,
        seed=args.seed,
        device=args.device,
        saturation=args.saturation,
    )
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(result.recipes.drop(columns="source").to_string(index=False))
    print(f"comparison written to {args.out}")


def _add_model_module(parser) -> None:
    parser.add_argument(
        "--model-module", dest="model_modules", action="append", metavar="MODULE",
        help="import this module first, for the models it registers (see colorization.models); repeatable",
    )  # fmt: skip


def parse_key_value(text: str) -> tuple[str, object]:
    """argparse type for KEY=VALUE model options: the value parsed as JSON if it can be, else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_named(text: str) -> tuple[str, str]:
    """ "NAME=VALUE" -> (NAME, VALUE), both stripped; ConfigError when either is missing. Shared with the Django
    commands (turing.management.study_options), which take the same --run NAME=RUN_DIR pairs."""
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _named_path(text: str, what: str) -> tuple[str, Path]:
    try:
        name, path = parse_named(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"expected NAME={what}, got {text!r}") from None
    return name, Path(path)


def _named_run(text: str) -> tuple[str, Path]:
    return _named_path(text, "RUN_DIR")


def _named_folder(text: str) -> tuple[str, Path]:
    return _named_path(text, "DIR")


def _unique_names(parser, pairs) -> dict[str, Path]:
    named = dict(pairs)
    if len(named) != len(pairs):
        repeated = sorted({name for name, _ in pairs if [other for other, _ in pairs].count(name) > 1})
        parser.error(f"each model needs its own NAME; given more than once: {', '.join(repeated)}")
    return named


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
