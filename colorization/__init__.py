"""PyTorch reproduction of "Colour image synthesis using CNNs": a perceptual-loss colorization network.

Modules: lab (colour space), images (robust loading), split (train/held-out manifests), data (datasets and
transforms), models (registry, the paper's transformation network), weights (pretrained backbones), losses
(perceptual and MSE), plus training, inference, metrics and plots; `python -m colorization --help` lists commands.
"""
