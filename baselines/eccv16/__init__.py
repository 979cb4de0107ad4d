"""Colorful Image Colorization (Zhang, Isola, Efros, ECCV 2016, arXiv 1603.08511) as a registered model.

Colour is predicted by classification: for every position at a quarter of the input resolution the network
gives scores over Q quantized ab bins, trained with a class-rebalanced multinomial cross-entropy, and a
colour is read off the distribution by an "annealed mean". Layer sizes follow the authors' PyTorch port
(richzhang/colorization, colorizers/eccv16.py), which mirrors their Caffe deploy net
(models/colorization_deploy_v2.prototxt); the module and key names are the port's, so its released state_dict
loads as it is (`model1.0.weight`, ..., `model_out.weight`):

- model1..model7: 3x3 convolutions with ReLU, each block ending in batch norm. Channels 64, 128, 256, 512, 512,
  512, 512 (two convolutions in blocks 1-2, three in 3-7); the last convolution of blocks 1, 2 and 3 has
  stride 2 (H/8 after block 3); blocks 5 and 6 use dilation 2 (padding 2);
- model8: a 4x4 stride-2 transposed convolution to 256 channels (H/4), two 3x3 convolutions with ReLU, and a
  1x1 convolution to the Q class scores (logits);
- model_out: a 1x1 convolution Q -> 2 without bias whose weights are the bin centres divided by 110 (the
  authors' ab scaling); softmax then model_out is the mean of the distribution, which the port scales by 110
  and upsamples x4 bilinearly.

Contract of this package. forward(L_norm = L / 100 in [0, 1], (N, 1, H, W), any H and W) returns the logits
(N, Q, ceil(H/4), ceil(W/4)), which training needs. The network sees L_norm - 0.5 = (L - 50) / 100, the
authors' normalization; the input is reflect-padded to a multiple of 8 (three stride-2 layers) and the logits
cropped back. `output_space` is "ab_bins", and `to_ab(logits, size)` gives ab_norm = ab / 128 (N, 2, *size):
the annealed mean softmax(logits / T) . centres with T = 0.38 (paper, section 2.3), upsampled x4 bilinearly
and cropped to size. colorization.inference.predict_ab calls it.

Temperature. The paper and the Caffe deploy net decode with T = 0.38: the deploy net scales the logits by
2.606 = 1 / 0.38 (its `conv8_313_rh` Scale layer) before the softmax. The PyTorch port has no such scale: it
takes the plain mean (T = 1), which is less saturated. to_ab applies T itself (kwarg `temperature`);
`temperature=1.0` reproduces the port's output exactly. Whether the port's released weights fold the 2.606
into the last convolution could not be checked here (the weights are not in this repository).

Cost at width 1.0, measured with torch.utils.flop_counter (a multiply-add counts 2 FLOPs; batch norm, ReLU,
softmax and upsampling are not counted): 83.54 GFLOPs per 256x256 image for forward with the published 313
classes (83.54 with 309 too: the 1x1 class layer is under 1%), plus 0.005 for the decoding in to_ab. Two thirds
of it (55.6) are the 512-channel blocks 4-7 at H/8, 14.6 block 8 at H/4. 32.2M parameters.
tests/baselines/test_eccv16.py checks the figure on the meta device.

Modules: model (the network, reading the authors' state_dict), bins (the ab bins, soft-encoding, the
rebalancing prior), loss (RebalancedCrossEntropy), convert (`python -m baselines.eccv16.convert`: the released
weights as a checkpoint of this package). Importing this package registers the model and its loss, under this
package's name (the entry point and every eccv16 checkpoint name it).
"""

from baselines.eccv16.loss import LOSS_NAME, RebalancedCrossEntropy
from baselines.eccv16.model import ECCV16, MODEL_NAME
from colorization.losses import register_loss
from colorization.models import Recipe, register_model

# The paper's schedule is in iterations of 40 images: 3e-5, dropped to 1e-5 at 200k and to 3e-6 at 375k, about
# 450k in all. An ImageNet epoch (1,281,167 images) is 32,029 such steps: 6 + 6 + 2 epochs = 192k, 384k, 448k.
ECCV16_RECIPE = Recipe(
    source="Zhang, Isola, Efros 2016, section 3 (solver and schedule); richzhang/colorization "
    "models/colorization_train_val_v2.prototxt (batch 40, 176x176 crops) and train/solver.prototxt",
    loss=LOSS_NAME,
    optimizer="adam",
    schedule="6:3e-5,6:1e-5,2:3e-6",
    batch_size=40,
    image_size=176,
    optimizer_options={"betas": [0.9, 0.99], "weight_decay": 1e-3},  # a list, as --optimizer-opt betas=[...] gives
    assumptions=(
        (
            "schedule",
            "the paper's drops at 200k and 375k of about 450k steps, as epochs of ImageNet's 1.28M "
            "images at batch 40 (32k steps each): 6 at 3e-5, 6 at 1e-5, 2 at 3e-6. The paper dropped "
            "the rate when the loss plateaued; the repository's solver.prototxt steps x0.1 every 225k of "
            "500k instead. On a smaller training set keep the step counts with --schedule or --epochs",
        ),
        (
            "image_size",
            "176, the training crop of colorization_train_val_v2.prototxt; their crops come from "
            "ImageNet images stored for Caffe (usually resized to 256x256), here from the photo resized "
            "to a 176 shorter side, so objects look about 1.45x smaller, and colorize feeds the model "
            "176 too where the released model runs at 256 (--image-size 256: their object scale at 2.1x "
            "the cost)",
        ),
        (
            "bins",
            "309 computed in-gamut bins (see baselines.eccv16.bins); the authors' pts_in_hull.npy lists 313, "
            "including 4 more beyond the sRGB gamut. Released weights bring their own 313 "
            "(--model-opt weights=PATH)",
        ),
        (
            "loss",
            "soft-encoding over 5 nearest bins (the paper; their Caffe training layer uses 10), bin prior "
            "from a seeded sample of at most 2000 training images of the run's split (theirs: all of "
            "ImageNet), loss averaged over images and positions (their Caffe layer's normalization is not "
            "in the repository); other values: build_loss('rebalanced_ce', neighbours=..., ...) in "
            "Python, no command-line option",
        ),
        ("initialization", "torch's default; the authors used k-means (data-dependent) initialization: no option"),
        (
            "batch norm",
            "running statistics with torch's momentum 0.1 where Caffe's BatchNorm keeps a 0.999 moving "
            "average: no option. Under --micro-batch-size the batch statistics are each chunk's, so a "
            "step differs from one on the whole batch of 40",
        ),
        (
            "decoding",
            "annealed mean with T = 0.38 (paper, Caffe deploy net); their PyTorch port decodes with "
            "T = 1 (--model-opt temperature=1.0)",
        ),
    ),
)


register_model(MODEL_NAME, recipe=ECCV16_RECIPE, module=__name__)(ECCV16)
register_loss(LOSS_NAME)(RebalancedCrossEntropy)
