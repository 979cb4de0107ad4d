"""Training settings: the TrainConfig dataclass, how a run differs from its model's Recipe, the learning-rate
schedule.

Kept free of torch so that the command line can show defaults without the slow torch import.
"""

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from colorization.errors import ConfigError
from colorization.models import Recipe, model_defaults, recipe

OPTIMIZERS = ("rmsprop", "adam")
# Backbone weight options that name no file (colorization.backbones says what they load). Defined here, which
# imports no torch, so that checking a config does not load it.
IMAGENET = "imagenet"
RANDOM_INIT = "none"
WEIGHT_KEYWORDS = (IMAGENET, RANDOM_INIT)

# The TrainConfig settings a Recipe gives; any of them given to TrainConfig overrides the recipe.
RECIPE_SETTINGS = ("loss", "optimizer", "optimizer_options", "schedule", "batch_size", "image_size")


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in its checkpoints (see colorization.train).

    Plain data: making one checks nothing. train() checks it in the order a user fixes the settings: paths that
    do not exist first (check_paths), then the model and the values (resolve, which also fills in the recipe).
    Downloads come last, when train() builds the model and the loss.
    """

    model: str
    split: Path
    out: Path
    epochs: int | None = None  # default: the schedule's total
    # None: the model's Recipe (colorization.models.recipe), filled in by resolve().
    schedule: str | None = None  # "epochs:lr,..." spans
    lr: float | None = None  # a constant learning rate instead of the schedule
    optimizer: str | None = None
    optimizer_options: dict | None = None  # keyword arguments of the optimizer (betas, weight_decay, ...)
    batch_size: int | None = None  # images per optimizer step (per process under torchrun)
    micro_batch_size: int | None = None  # split each batch into chunks this big, accumulating gradients
    image_size: int | None = None
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    max_steps: int | None = None  # total optimizer steps, counting those before a resume
    limit_images: int | None = None  # first N train and first N held-out images
    resume: bool = False  # continue OUT/last.pt (see colorization.train.config_for_resume)
    loss: str | None = None  # default: the model's registered default loss
    vgg_layers: tuple[str, ...] = ("relu2_2", "relu3_3")
    vgg_layer_weights: tuple[float, ...] | None = None
    vgg_weights: str = "imagenet"
    pixel_weight: float = 0.0
    model_opts: dict = field(default_factory=dict)
    progress: bool = True
    cache_features: bool = False  # reuse a frozen backbone's output for repeated inputs (baselines.koalarization)

    def check_paths(self) -> None:
        """FileNotFoundError naming the option when the split or a weights file the settings name is missing."""
        if not Path(self.split).exists():
            raise FileNotFoundError(f"split {self.split} does not exist; make one with `python -m colorization split`")
        weights = {
            "--vgg-weights": self.vgg_weights,
            "--irv2-weights": self.model_opts.get("irv2_weights"),
            "--model-opt weights": self.model_opts.get("weights"),  # eccv16's released weights
        }
        for option, spec in weights.items():
            if spec is not None and str(spec) not in WEIGHT_KEYWORDS and not Path(spec).is_file():
                raise FileNotFoundError(
                    f"{option} {spec}: no such file (expected {' or '.join(WEIGHT_KEYWORDS)} or a state_dict file)"
                )

    def resolve(self) -> "TrainConfig":
        """This config with every recipe setting left as None taken from the model's recipe (which imports the
        model's module), paths as Paths and sequences as tuples. ConfigError for an unknown model, a value out
        of range or a malformed schedule. Resolving a resolved config gives an equal one.
        """
        published = recipe(self.model)
        # The recipe's options belong to its optimizer (Adam's betas mean nothing to RMSprop); options given for
        # that optimizer replace the recipe's one by one.
        same = self.optimizer in (None, published.optimizer)
        resolved = dataclasses.replace(
            self,
            split=Path(self.split),
            out=Path(self.out),
            optimizer_options={**(published.optimizer_options if same else {}), **(self.optimizer_options or {})},
            vgg_layers=tuple(self.vgg_layers),
            vgg_layer_weights=None if self.vgg_layer_weights is None else tuple(self.vgg_layer_weights),
            **{name: getattr(published, name) for name in RECIPE_SETTINGS
               if name != "optimizer_options" and getattr(self, name) is None},
        )  # fmt: skip
        resolved._check_values()
        return resolved

    def _check_values(self) -> None:
        if self.vgg_layer_weights is not None and len(self.vgg_layer_weights) != len(self.vgg_layers):
            raise ConfigError(
                f"{len(self.vgg_layer_weights)} VGG layer weights given for {len(self.vgg_layers)} layers"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("epochs", "batch_size", "micro_batch_size", "image_size", "max_steps", "limit_images"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{option_of(name)} must be at least 1, got {value}")
        self.lr_by_epoch()  # fails early on a malformed schedule

    def changed_from_recipe(self) -> list[str]:
        """What this run does not take from its model's recipe (see recipe_changes)."""
        return recipe_changes(dataclasses.asdict(self), recipe(self.model), model_defaults(self.model))

    def lr_by_epoch(self) -> list[float]:
        """The learning rate of every epoch (index 0 = first epoch); see rates_by_epoch."""
        assert self.schedule is not None, "resolve() fills the schedule from the model's recipe"
        return rates_by_epoch(self.schedule, lr=self.lr, epochs=self.epochs)

    def to_dict(self) -> dict:
        """JSON-like dict (paths as strings) for checkpoints."""
        fields = dataclasses.asdict(self)
        return {key: str(value) if isinstance(value, Path) else value for key, value in fields.items()}


def option_of(setting: str) -> str:
    """The command-line option that sets a TrainConfig field."""
    return {"optimizer_options": "--optimizer-opt", "model_opts": "--model-opt"}.get(
        setting, "--" + setting.replace("_", "-")
    )


def rates_by_epoch(schedule: str, *, lr: float | None = None, epochs: int | None = None) -> list[float]:
    """The learning rate of every epoch: with lr, that rate throughout; otherwise the schedule's spans in
    order. epochs (default: the schedule's total) beyond the schedule keep its last rate, fewer cut it short."""
    total = epochs or sum(span for span, _ in parse_schedule(schedule))
    if lr is not None:
        return [lr] * total
    rates = [rate for span, rate in parse_schedule(schedule) for _ in range(span)]
    return (rates + rates[-1:] * total)[:total]


def recipe_changes(settings: Mapping, published: Recipe, model_defaults: Mapping) -> list[str]:
    """What a run (TrainConfig fields, or the config dict a checkpoint stores) does differently from its
    model's published recipe and the published model, as the options that did it.

    "learning rates" compares the rate of every epoch, so it covers --lr, --schedule and --epochs alike.
    Besides the recipe: any model option that differs from the model's own default, model_defaults (--model-opt
    width=0.5, a random backbone: irv2_weights=none; colorization.models.model_defaults), and the loss and data
    settings that default to the published ones (VGG layers and weights, --pixel-weight,
    --limit-images). --micro-batch-size is not a change (the optimizer step is the same). A setting a
    checkpoint stores as None (older runs' loss) was the recipe's.
    """

    def plain(value):  # tuples and lists alike, as JSON has them
        return json.loads(json.dumps(value))

    changed = [
        option_of(name)
        for name in RECIPE_SETTINGS
        if name != "schedule"  # compared below as the rate of every epoch
        and settings.get(name) is not None
        and plain(settings[name]) != plain(getattr(published, name))
    ]
    rates = rates_by_epoch(settings.get("schedule") or published.schedule, lr=settings.get("lr"),
                           epochs=settings.get("epochs"))  # fmt: skip
    if rates != rates_by_epoch(published.schedule):
        changed.append("learning rates")
    model_opts = {key: value for key, value in (settings.get("model_opts") or {}).items()
                  if key not in model_defaults or plain(model_defaults[key]) != plain(value)}  # fmt: skip
    changed += [f"{key}={json.dumps(value)}" for key, value in sorted(model_opts.items())]
    defaults = {item.name: item.default for item in dataclasses.fields(TrainConfig)}
    # The VGG settings belong to the perceptual loss: another loss never reads them.
    perceptual = ("vgg_layers", "vgg_layer_weights", "vgg_weights", "pixel_weight")
    used = ("limit_images", *(perceptual if (settings.get("loss") or published.loss) == "perceptual" else ()))
    changed += [option_of(name) for name in used if name in settings and plain(settings[name]) != plain(defaults[name])]
    return changed


def parse_schedule(text: str) -> list[tuple[int, float]]:
    """ "30:1e-3,35:1e-4" -> [(30, 0.001), (35, 0.0001)]; ConfigError naming the bad part otherwise."""
    spans = []
    for part in text.split(","):
        epochs, sep, lr = part.strip().partition(":")
        try:
            span = (int(epochs), float(lr))
        except ValueError:
            span = None
        if not sep or span is None or span[0] < 1 or span[1] < 0:
            raise ConfigError(f"schedule part {part!r} is not EPOCHS:LR with EPOCHS >= 1 (in {text!r})")
        spans.append(span)
    return spans
