r"""Pretrained (or random) CNN backbones and multi-layer feature extraction.

Chapters 4–5 of the lecture replace hand-made features by the activations of a
CNN trained on another task. A ResNet is a stack of stages; every stage halves
the spatial resolution, so its output is a grid of feature vectors, one per
*location*, each summarising a square region of the input:

* the **stride** of a layer is how many input pixels separate two neighbouring
  locations of its feature map (a 64×64 image gives a 16×16 map at stride 4);
* the **receptive field** is the side of the input square that can influence one
  location (theoretical value; the *effective* receptive field is smaller and
  Gaussian-shaped).

For torchvision's ResNets (input ``H × W``):

=========  ======  ================  ===============  ==============================
layer      stride  map size          receptive field  channels (resnet18 / wide50_2)
=========  ======  ================  ===============  ==============================
layer1     4       H/4 × W/4         43 / 35 px       64 / 256
layer2     8       H/8 × W/8         99 / 91 px       128 / 512
layer3     16      H/16 × W/16       211 / 267 px     256 / 1024
layer4     32      H/32 × W/32       435 / 427 px     512 / 2048
=========  ======  ================  ===============  ==============================

Shallow layers (small stride and receptive field) see local texture and
localise well; deep layers see context and semantics but are coarse.
PaDiM/PatchCore-style detectors therefore *stack* several layers: every layer
is upsampled (bilinear) to the resolution of the shallowest one and the maps
are concatenated along channels (:meth:`FeatureExtractor.embed`), so that each
location carries a multi-scale description of its neighbourhood.

Numpy in, numpy out: torch stays inside this module.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import numpy as np

from adcourse.deep._imagenet import IMAGENET_MEAN, IMAGENET_STD, imagenet_normalise
from adcourse.validation import check_images

__all__ = ["BACKBONES", "COURSE", "IMAGENET_MEAN", "IMAGENET_STD", "build_backbone", "weights_cache_path",
           "FeatureExtractor"]

#: backbone name -> (torchvision builder name, weights enum name)
BACKBONES = {
    "resnet18": ("resnet18", "ResNet18_Weights"),
    "wide_resnet50_2": ("wide_resnet50_2", "Wide_ResNet50_2_Weights"),
}

#: name of the course's own backbone (:mod:`adcourse.deep.pretrain`), the offline default
COURSE = "course"



def _check_name(name):
    if name not in BACKBONES:
        raise ValueError(
            f"backbone must be one of {sorted(BACKBONES) + [COURSE]} or a torch.nn.Module, got {name!r}")


def _imagenet_weights(name):
    import torchvision.models as tvm

    _check_name(name)
    return getattr(tvm, BACKBONES[name][1]).IMAGENET1K_V1


def weights_cache_path(name="resnet18"):
    """Path of the file where torchvision caches the ImageNet weights of ``name``.

    It is ``<torch.hub.get_dir()>/checkpoints/<file name of the weights URL>``
    (``~/.cache/torch/hub/checkpoints/...`` unless ``TORCH_HOME`` is set).
    """
    import torch

    url = _imagenet_weights(name).url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))


def build_backbone(name="resnet18", weights=None, random_state=0):
    """Return a torchvision ResNet in eval mode.

    Parameters
    ----------
    name : {"course", "resnet18", "wide_resnet50_2"}
        ``"course"`` is :class:`adcourse.deep.pretrain.CourseNet` with its shipped
        weights (trained on the generated texture zoo; works offline); only
        ``weights=None`` is accepted with it. For a random-init CourseNet pass
        ``adcourse.deep.pretrain.CourseNet()`` to :class:`FeatureExtractor` instead.
    weights : None or "imagenet"
        ``None``: random initialisation, seeded by ``random_state`` (the global
        torch RNG is left untouched). ``"imagenet"``: torchvision's
        ``IMAGENET1K_V1`` weights through its weights API — read from the torch
        hub cache, or downloaded there when the machine has internet. If they
        can be neither found nor downloaded, a :class:`RuntimeError` says where
        to put them.
    random_state : int
        Seed of the random initialisation (ignored with ImageNet weights).
    """
    import torch
    import torchvision.models as tvm

    if name == COURSE:
        if weights is not None:
            raise ValueError("the course backbone comes with its own shipped weights: use weights=None")
        from adcourse.deep.pretrain import load_course_backbone

        return load_course_backbone()
    _check_name(name)
    builder = getattr(tvm, BACKBONES[name][0])
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(random_state))
            model = builder(weights=None)
    elif weights == "imagenet":
        w = _imagenet_weights(name)
        model = builder(weights=None)
        try:
            state = w.get_state_dict(progress=False, check_hash=True)
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
            path = weights_cache_path(name)
            raise RuntimeError(
                f"ImageNet weights for {name!r} could not be loaded: they are not in the torch hub "
                f"cache and could not be downloaded ({type(exc).__name__}: {exc}).\n"
                f"torchvision looks for them at:\n    {path}\n"
                "On a machine with internet, run\n"
                f"    python -c \"import torchvision; torchvision.models.{BACKBONES[name][0]}"
                f"(weights='IMAGENET1K_V1')\"\n"
                "which saves the file in that machine's cache (python -c \"import torch; "
                "print(torch.hub.get_dir())\" shows where), then copy it to the path above "
                "(or set TORCH_HOME). Offline, use weights=None (random init) instead."
            ) from exc
        model.load_state_dict(state)
    else:
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
    model.eval()
    return model


class _StopForward(Exception):
    """Raised by the last hook: the deeper layers are not needed."""


class FeatureExtractor:
    """Activations of chosen layers of a CNN backbone, captured with forward hooks.

    Parameters
    ----------
    backbone : str or torch.nn.Module
        ``"course"`` (default: the shipped course backbone, offline),
        ``"resnet18"`` / ``"wide_resnet50_2"`` (built with :func:`build_backbone`)
        or a ready module.
    layers : sequence of str
        Names of modules (as in ``model.named_modules()``, e.g. ``"layer2"`` or
        ``"layer2.1"``) whose outputs are captured. The first one sets the
        resolution of :meth:`embed`.
    weights : None or "imagenet"
    n_channels : int or None
        If set, :meth:`embed` keeps only this many channels of the stacked map,
        chosen at random once (seeded) — PaDiM's random dimensionality
        reduction. The indices are stored in ``channel_index_``.
    random_state : int
        Seed of the random init and of the channel selection.
    device : "auto", "cpu", "cuda", ...
        ``"auto"``: CUDA if available, else CPU.
    batch_size : int
        Images per forward pass.
    """

    def __init__(self, backbone=COURSE, layers=("layer1", "layer2", "layer3"), weights=None,
                 n_channels=None, random_state=0, device="auto", batch_size=16):
        self.backbone = backbone
        self.layers = layers
        self.weights = weights
        self.n_channels = n_channels
        self.random_state = random_state
        self.device = device
        self.batch_size = batch_size

    # -- helpers -------------------------------------------------------------------------------
    def _torch_device(self):
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _get_model(self):
        import torch

        if getattr(self, "model_", None) is None:
            if isinstance(self.backbone, torch.nn.Module):
                model = self.backbone
            else:
                model = build_backbone(self.backbone, self.weights, self.random_state)
            self.model_ = model.eval().to(self._torch_device())
        return self.model_

    def _check_layers(self, model):
        if isinstance(self.layers, str) or len(self.layers) == 0:
            raise ValueError(f"layers must be a non-empty sequence of names, got {self.layers!r}")
        modules = dict(model.named_modules())
        bad = [name for name in self.layers if name not in modules or name == ""]
        if bad:
            top = [n for n, _ in model.named_children()]
            raise ValueError(
                f"unknown layer name(s) {bad} in layers; valid names are {top} "
                "(or any submodule name such as 'layer2.0' from model.named_modules())"
            )
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers contains duplicates: {list(self.layers)}")
        return [modules[name] for name in self.layers]

    @staticmethod
    def _to_tensor(images):
        import torch

        arr = check_images(images, "images")
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.shape[1] == 1:
            arr = np.repeat(arr, 3, axis=1)
        elif arr.shape[1] != 3:
            raise ValueError(
                "images must be (n, H, W) grayscale, (n, 1, H, W) or (n, 3, H, W) RGB, "
                f"got shape {np.shape(images)}"
            )
        x = torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32)
        return imagenet_normalise(x)

    def _extract_torch(self, images):
        import torch

        x = self._to_tensor(images)
        model = self._get_model()
        modules = self._check_layers(model)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        device = self._torch_device()
        captured = {}
        outputs = {name: [] for name in self.layers}

        def make_hook(name):
            def hook(module, inp, out):
                captured[name] = out.detach()
                if len(captured) == len(self.layers):
                    raise _StopForward
            return hook

        handles = [m.register_forward_hook(make_hook(n)) for n, m in zip(self.layers, modules)]
        try:
            with torch.no_grad():
                for start in range(0, x.shape[0], self.batch_size):
                    captured.clear()
                    try:
                        model(x[start:start + self.batch_size].to(device))
                    except _StopForward:
                        pass
                    for name in self.layers:
                        outputs[name].append(captured[name].float().cpu())
        finally:
            for h in handles:
                h.remove()
        return {name: torch.cat(outputs[name]) for name in self.layers}

    # -- public API ----------------------------------------------------------------------------
    def extract(self, images):
        """Per-layer activations: dict layer name -> ndarray ``(n, C, h, w)`` (float32).

        ``images`` are ``(n, H, W)`` grayscale (replicated to 3 channels) or
        ``(n, 3, H, W)`` RGB floats in [0, 1]; they are normalised with the
        ImageNet mean/std before the forward pass.
        """
        return {k: v.numpy() for k, v in self._extract_torch(images).items()}

    def embed(self, images):
        """Stacked multi-layer features ``(n, C_total, h1, w1)`` at the first layer's resolution.

        Every layer is upsampled (bilinear, ``align_corners=False``) to the size
        of ``layers[0]``'s map and the maps are concatenated along channels in
        the order of ``layers``. With ``n_channels`` set, only the channels in
        ``channel_index_`` (drawn once, seeded) are kept.
        """
        import torch
        import torch.nn.functional as F

        feats = self._extract_torch(images)
        size = feats[self.layers[0]].shape[-2:]
        maps = [feats[self.layers[0]]]
        for name in self.layers[1:]:
            maps.append(F.interpolate(feats[name], size=size, mode="bilinear", align_corners=False))
        out = torch.cat(maps, dim=1)
        if self.n_channels is not None:
            total = out.shape[1]
            if not isinstance(self.n_channels, (int, np.integer)) or not 1 <= self.n_channels <= total:
                raise ValueError(f"n_channels must be an int in [1, {total}], got {self.n_channels!r}")
            idx = getattr(self, "channel_index_", None)
            if idx is None or len(idx) != self.n_channels or idx.max() >= total:
                rng = np.random.default_rng(self.random_state)
                idx = np.sort(rng.choice(total, size=int(self.n_channels), replace=False))
                self.channel_index_ = idx
            out = out[:, torch.as_tensor(idx)]
        return out.numpy()

