"""The one place of the ImageNet input statistics, shared by the backbones and the course pretraining.

torchvision's ImageNet models expect RGB inputs standardised channel by channel with
these means and standard deviations; the course backbone is trained on inputs
prepared the same way, so every backbone is fed alike.
"""

from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "imagenet_normalise"]

#: ImageNet statistics the torchvision backbones were trained with (RGB order).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalise(x):
    """``(x - mean) / std`` per channel of a float tensor (n, 3, H, W) in [0, 1]."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
