r"""The course backbone: a small CNN pretrained on a generated "texture zoo".

Transfer learning needs a network trained on *another task and other data* than
the images we want to inspect. ImageNet weights are the usual choice, but they
have to be downloaded (and a network trained on millions of photos may well
have seen "anomalies"). The course therefore ships its own small backbone,
:class:`CourseNet`, trained in about 12 minutes on one CPU thread to recognise procedurally
generated texture families (:func:`make_texture_zoo`):

=====================  ===================================================
class                  what it looks like
=====================  ===================================================
``grating``            sinusoidal grating, any orientation and frequency
``checkerboard``       rotated checkerboard, random period
``dots``               many small disks at random positions
``blobs``              large smooth thresholded blobs
``segments``           short straight line segments at random angles
``smooth_noise``       multi-octave smooth (Perlin-like) noise
``crosshatch``         two crossing families of thin lines
``voronoi``            edges of random Voronoi cells
``jittered_stripes``   square-wave stripes whose phase wanders
``fine_grain``         fine, lightly blurred white noise
``rings``              concentric rings around a random centre
``rectangles``         random overlapping axis-free rectangles
=====================  ===================================================

Every texture gets a random contrast, brightness, polarity, blur and additive
noise. A network that only *classified* whole images would learn to ignore those
photometric nuisances — and with them exactly the cues anomaly detection needs
later (a flat, low-contrast film on nanofibres is "just another texture at
another contrast" to such a network). The pretext task is therefore **dense**:

* every training image is a *mosaic* of one to three zoo textures, each filling
  a random smooth region with its own photometry (:func:`make_zoo_mosaic`);
* at every location of a stride-4 grid the network must (a) name the texture
  family there (cross-entropy) and (b) regress five local statistics of the
  image around it (mean squared error, :func:`dense_targets`): the mean grey
  level, the log standard deviation, the log energy of the finest details
  (image minus a blurred copy), the log gradient energy and the coherence of
  the local orientation (structure tensor), so features keep brightness,
  contrast, grain and orientedness.

The dense head reads ``layer1`` and the upsampled ``layer2`` and ``layer3`` maps,
so all the stages the detectors hook are trained to describe their
neighbourhood. To solve the task the first layers must learn generic low-level
filters — oriented edges and bars, blobs and spots, at several scales — which
are the building blocks of SEM images of nanofibres or of natural textures.
The backbone never sees those test images, nor anything produced by their
generators (:func:`adcourse.data.make_nanofibers`,
:func:`adcourse.data.make_textures`): the zoo is made from scratch here with
numpy/scipy.

The weights shipped in ``data/backbone/`` (``course_backbone.pt`` + a JSON with
the training settings and SHA-256 checksum) are reproduced by::

    python -m adcourse.deep.pretrain                 # rewrites data/backbone
    python -m adcourse.deep.pretrain --out /tmp/bb --steps 200

:func:`load_course_backbone` loads them, checking the checksum.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage as ndi

from adcourse.deep._imagenet import imagenet_normalise

__all__ = ["ZOO_CLASSES", "TARGET_NAMES", "CourseNet", "make_texture_zoo", "make_zoo_mosaic",
           "dense_targets", "train_course_backbone",
           "evaluate_zoo_accuracy", "save_backbone", "load_course_backbone", "DEFAULT_FOLDER",
           "WEIGHTS_FILE", "SETTINGS_FILE"]

ZOO_CLASSES = ("grating", "checkerboard", "dots", "blobs", "segments", "smooth_noise",
               "crosshatch", "voronoi", "jittered_stripes", "fine_grain", "rings", "rectangles")

#: the local statistics regressed by the dense head (see :func:`dense_targets`)
TARGET_NAMES = ("mean", "log_std", "log_fine_energy", "log_gradient_energy", "coherence")

#: stride of the dense pretext grid (the resolution of ``layer1``)
DENSE_STRIDE = 4

#: default location of the shipped weights: ``<repo>/data/backbone``
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "data" / "backbone"
WEIGHTS_FILE = "course_backbone.pt"
SETTINGS_FILE = "course_backbone.json"

#: seed offset of the held-out zoo samples (never used for training batches)
_HELDOUT_SEED = 10_000_019


# ---------------------------------------------------------------------------------------------
# texture zoo
# ---------------------------------------------------------------------------------------------
def _coords(size):
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return y, x


def _rotated(size, rng):
    """Coordinates (u, v) of the pixel grid rotated by a random angle around a random centre."""
    y, x = _coords(size)
    theta = rng.uniform(0, np.pi)
    cy, cx = rng.uniform(0, size, 2)
    u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
    v = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
    return u, v


def _draw_segments(size, rng, n, length, width):
    """Anti-aliased straight segments (distance-to-segment), vectorised over the grid."""
    y, x = _coords(size)
    img = np.zeros((size, size))
    for _ in range(n):
        p = rng.uniform(-4, size + 4, 2)
        ang = rng.uniform(0, np.pi)
        half = 0.5 * length * rng.uniform(0.6, 1.4)
        d = np.array([np.cos(ang), np.sin(ang)])
        t = np.clip((x - p[0]) * d[0] + (y - p[1]) * d[1], -half, half)
        dist = np.hypot(x - (p[0] + t * d[0]), y - (p[1] + t * d[1]))
        img = np.maximum(img, np.clip(width / 2 + 0.5 - dist, 0, 1))
    return img


def _smooth_noise(size, rng, scales, weights):
    img = np.zeros((size, size))
    for s, w in zip(scales, weights):
        n = ndi.gaussian_filter(rng.standard_normal((size, size)), s, mode="wrap")
        img += w * n / (n.std() + 1e-8)
    return img


def _make_one(label, size, rng):
    name = ZOO_CLASSES[label]
    if name == "grating":
        u, _ = _rotated(size, rng)
        period = rng.uniform(4, 24)
        img = np.sin(2 * np.pi * u / period)
    elif name == "checkerboard":
        u, v = _rotated(size, rng)
        period = rng.uniform(6, 24)
        img = np.sign(np.sin(np.pi * u / period) * np.sin(np.pi * v / period))
    elif name == "dots":
        n = rng.integers(15, 50)
        r = rng.uniform(0.8, 2.2)
        img = np.zeros((size, size))
        pts = rng.integers(0, size, (n, 2))
        img[pts[:, 0], pts[:, 1]] = 1
        img = ndi.gaussian_filter(img, r, mode="wrap") * (2 * np.pi * r * r)
        img = np.clip(img, 0, 1)
    elif name == "blobs":
        s = rng.uniform(4, 9)
        n = ndi.gaussian_filter(rng.standard_normal((size, size)), s, mode="wrap")
        n /= n.std() + 1e-8
        img = 1 / (1 + np.exp(-6 * (n - rng.uniform(-0.5, 0.5))))
    elif name == "segments":
        img = _draw_segments(size, rng, int(rng.integers(6, 18)), rng.uniform(10, 24),
                             rng.uniform(1.0, 2.5))
    elif name == "smooth_noise":
        base = rng.uniform(1.5, 3.0)
        img = _smooth_noise(size, rng, (base, 2 * base, 4 * base), (0.25, 0.5, 1.0))
    elif name == "crosshatch":
        period = rng.uniform(5, 14)
        u1, _ = _rotated(size, rng)
        theta = rng.uniform(np.pi / 5, 4 * np.pi / 5)
        y, x = _coords(size)
        base = rng.uniform(0, np.pi)
        u2 = x * np.cos(base + theta) + y * np.sin(base + theta)
        u1 = x * np.cos(base) + y * np.sin(base)
        w = rng.uniform(0.8, 2.0)
        l1 = np.abs(((u1 / period) % 1 - 0.5) * period) < w
        l2 = np.abs(((u2 / period) % 1 - 0.5) * period) < w
        img = (l1 | l2).astype(float)
    elif name == "voronoi":
        n = int(rng.integers(8, 40))
        pts = rng.uniform(0, size, (n, 2))
        y, x = _coords(size)
        d = np.hypot(y[..., None] - pts[:, 0], x[..., None] - pts[:, 1])
        d.sort(axis=-1)
        img = np.clip(1.5 - (d[..., 1] - d[..., 0]), 0, 1)
    elif name == "jittered_stripes":
        u, v = _rotated(size, rng)
        period = rng.uniform(6, 16)
        jitter = _smooth_noise(size, rng, (rng.uniform(3, 8),), (1.0,)) * rng.uniform(1, 3)
        img = np.sign(np.sin(2 * np.pi * (u + jitter) / period))
    elif name == "fine_grain":
        img = ndi.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(0.0, 0.8),
                                  mode="wrap")
    elif name == "rings":
        y, x = _coords(size)
        cy, cx = rng.uniform(-size / 2, 1.5 * size, 2)
        r = np.hypot(y - cy, x - cx)
        img = np.sin(2 * np.pi * r / rng.uniform(4, 16))
    elif name == "rectangles":
        img = np.zeros((size, size))
        u0, v0 = _rotated(size, rng)
        for _ in range(int(rng.integers(4, 12))):
            cu, cv = rng.uniform(-size, size, 2)
            hu, hv = rng.uniform(3, 14, 2)
            inside = (np.abs(u0 - cu) < hu) & (np.abs(v0 - cv) < hv)
            img[inside] = rng.uniform(0.3, 1.0)
    else:  # pragma: no cover
        raise AssertionError(name)

    # photometric nuisances: normalise, random polarity, blur, contrast, brightness, noise
    img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    if rng.random() < 0.5:
        img = 1 - img
    blur = rng.uniform(0, 1.2)
    if blur > 0.3:
        img = ndi.gaussian_filter(img, blur)
    contrast = rng.uniform(0.3, 1.0)
    img = rng.uniform(0, 1 - contrast) + contrast * img
    img = img + rng.normal(0, rng.uniform(0, 0.08), img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def make_texture_zoo(n_per_class=10, size=64, random_state=0):
    """Generate a balanced set of texture-zoo images.

    Returns ``(X, y)``: ``X`` float32 ``(n_per_class * 12, size, size)`` in [0, 1],
    ``y`` int64 labels (index into :data:`ZOO_CLASSES`), in a seeded random order.
    Deterministic given ``random_state`` (numpy/scipy only).
    """
    n_per_class = int(n_per_class)
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    rng = np.random.default_rng(random_state)
    y = np.repeat(np.arange(len(ZOO_CLASSES)), n_per_class)
    y = y[rng.permutation(len(y))]
    X = np.stack([_make_one(int(c), int(size), rng) for c in y])
    return X, y.astype(np.int64)


def make_zoo_mosaic(size, rng):
    """One pretext image: a mosaic of 1 to 3 zoo textures in random smooth regions.

    Each texture is drawn with :func:`_make_one` (its own family and photometry);
    the regions are the arg-max of independent smooth random fields, so their
    borders are curved. Returns ``(image, labels)``: float32 ``(size, size)`` in
    [0, 1] and the int64 family index at every pixel.
    """
    k = int(rng.integers(1, 4))
    families = rng.integers(0, len(ZOO_CLASSES), k)
    textures = np.stack([_make_one(int(c), size, rng) for c in families])
    if k == 1:
        region = np.zeros((size, size), dtype=np.int64)
    else:
        scale = rng.uniform(5, 12, size=2)
        fields = ndi.gaussian_filter(rng.standard_normal((k, size, size)), (0, *scale), mode="wrap")
        region = fields.argmax(axis=0)
    image = np.take_along_axis(textures, region[None], axis=0)[0]
    return image.astype(np.float32), families[region].astype(np.int64)


def dense_targets(images, labels, stride=DENSE_STRIDE):
    r"""Targets of the dense pretext task on the stride-``stride`` grid.

    For images ``s`` (n, H, W) and pixel labels (n, H, W), at the grid points
    ``(stride/2 + stride i, stride/2 + stride j)``:

    * ``classes`` (n, H/stride, W/stride): the texture family at the point;
    * ``stats`` (n, 5, H/stride, W/stride), in the order of :data:`TARGET_NAMES`,
      with :math:`\langle\cdot
angle_w` a box mean over a ``w x w`` window:

      .. math::

          m = \langle s
angle_{k},\quad
          \log\sqrt{\langle s^2
angle_{2k} - \langle s
angle_{2k}^2},\quad
          \log\sqrt{\langle (s - g_1 * s)^2
angle_{k}},\quad
          \log\sqrt{\langle \|
abla s\|^2
angle_{k}},\quad
          rac{\lambda_1 - \lambda_2}{\lambda_1 + \lambda_2}

      (``k = stride``; ``g_1`` a Gaussian of width 1; :math:`\lambda_{1,2}` the
      eigenvalues of the structure tensor :math:`\langle
abla s
abla s^	op
angle_{2k}`),
      shifted and scaled to be roughly zero-mean with unit spread.
    """
    s = np.asarray(images, dtype=np.float64)
    k, half = int(stride), int(stride) // 2
    grid = (slice(None), slice(half, None, k), slice(half, None, k))

    def box(a, w):
        return ndi.uniform_filter(a, (0, w, w), mode="reflect")[grid]

    mean = box(s, k)
    var = np.maximum(box(s * s, 2 * k) - box(s, 2 * k) ** 2, 1e-6)
    fine = s - ndi.gaussian_filter(s, (0, 1.0, 1.0))
    gy, gx = np.gradient(s, axis=(1, 2))
    jxx, jyy, jxy = box(gx * gx, 2 * k), box(gy * gy, 2 * k), box(gx * gy, 2 * k)
    root = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    coherence = root / (jxx + jyy + 1e-6)
    stats = np.stack([
        (mean - 0.5) / 0.25,
        np.log(var) / 2 + 2.5,
        np.log(box(fine * fine, k) + 1e-6) / 2 + 3.5,
        np.log(box(gx * gx + gy * gy, k) + 1e-6) / 2 + 2.5,
        (coherence - 0.5) / 0.25,
    ], axis=1)
    return np.asarray(labels)[grid].astype(np.int64), stats.astype(np.float32)


def _to_input(X):
    """(n, H, W) in [0, 1] -> ImageNet-normalised 3-channel tensor, as FeatureExtractor does."""
    x = torch.as_tensor(X, dtype=torch.float32)[:, None].expand(-1, 3, -1, -1)
    return imagenet_normalise(x).contiguous()


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
def _stage(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CourseNet(nn.Module):
    """Small CNN (~0.6 M parameters) with ResNet-like stage names and strides.

    ``stem`` (stride 2) then ``layer1`` … ``layer4``, each halving the
    resolution (so strides 4, 8, 16, 32, like torchvision's ResNets), with
    32, 64, 128, 128 channels; each stage is two 3×3 conv + BatchNorm + ReLU
    blocks. ``head`` = global average pooling + linear classifier over the zoo
    classes; ``dense_head`` = a 1×1 convolution on ``layer1`` stacked with the
    upsampled ``layer2`` and ``layer3``, giving at stride 4 the family logits and
    the :data:`TARGET_NAMES` statistics (:meth:`dense`). Both heads serve only
    the pretext task: :class:`adcourse.deep.backbones.FeatureExtractor` hooks the
    stages. Input: ``(n, 3, H, W)`` ImageNet-normalised.
    """

    channels = (32, 64, 128, 128)

    def __init__(self, n_classes=len(ZOO_CLASSES)):
        super().__init__()
        c = self.channels
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.layer1 = _stage(32, c[0])
        self.layer2 = _stage(c[0], c[1])
        self.layer3 = _stage(c[1], c[2])
        self.layer4 = _stage(c[2], c[3])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c[3], n_classes))
        self.dense_head = nn.Conv2d(c[0] + c[1] + c[2], n_classes + len(TARGET_NAMES), 1)

    def forward(self, x):
        """Image-level family logits ``(n, n_classes)``."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.head(x)

    def dense(self, x):
        """Stride-4 map ``(n, n_classes + 5, H/4, W/4)``: family logits, then the statistics."""
        import torch.nn.functional as F

        a = self.layer1(self.stem(x))
        b = self.layer2(a)
        c = self.layer3(b)
        size = a.shape[-2:]
        up = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in (b, c)]
        return self.dense_head(torch.cat([a] + up, dim=1))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def _dense_batch(rng, batch_size, size=64):
    pairs = [make_zoo_mosaic(size, rng) for _ in range(batch_size)]
    X = np.stack([p[0] for p in pairs])
    classes, stats = dense_targets(X, np.stack([p[1] for p in pairs]))
    return X, torch.as_tensor(classes), torch.as_tensor(stats)


def dense_loss(model, x, classes, stats):
    """Pretext loss: cross-entropy of the family map + MSE of the statistics.

    Returns ``(loss, accuracy)`` (accuracy: fraction of grid points whose family
    is named correctly).
    """
    import torch.nn.functional as F

    out = model.dense(x)
    k = len(ZOO_CLASSES)
    logits, pred = out[:, :k], out[:, k:]
    loss = F.cross_entropy(logits, classes) + F.mse_loss(pred, stats)
    return loss, float((logits.argmax(1) == classes).float().mean())


def train_course_backbone(n_steps=3000, batch_size=32, lr=2e-3, random_state=0, progress=True):
    """Train :class:`CourseNet` on the dense pretext task (mosaics of the texture zoo).

    Every step draws a fresh batch of mosaics (:func:`make_zoo_mosaic`, seeded
    by ``random_state``), so the network never sees the same image twice; the
    loss is :func:`dense_loss`. Adam with a one-cycle (cosine) learning-rate
    schedule. Deterministic on CPU for a given seed, torch version and thread
    count.

    Returns ``(model, history)``: the model in eval mode and a dict with the
    per-step ``loss`` and (per-location family) ``accuracy`` lists and ``seconds``.
    """
    from tqdm.auto import tqdm

    n_steps, batch_size = int(n_steps), int(batch_size)
    if n_steps < 1 or batch_size < 1:
        raise ValueError("n_steps and batch_size must be positive")
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(random_state))
            model = CourseNet()
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=n_steps,
                                                        pct_start=0.1)
            rng = np.random.default_rng(int(random_state))
            history = {"loss": [], "accuracy": []}
            start = time.perf_counter()
            model.train()
            bar = tqdm(range(n_steps), desc="course backbone", disable=not progress)
            for _ in bar:
                X, classes, stats = _dense_batch(rng, batch_size)
                loss, acc = dense_loss(model, _to_input(X), classes, stats)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                history["loss"].append(loss.item())
                history["accuracy"].append(acc)
                if progress:
                    k = min(20, len(history["loss"]))
                    bar.set_postfix(loss=f"{np.mean(history['loss'][-k:]):.3f}",
                                    acc=f"{np.mean(history['accuracy'][-k:]):.2f}")
            history["seconds"] = time.perf_counter() - start
    finally:
        torch.use_deterministic_algorithms(prev_det)
    model.eval()
    return model, history


def evaluate_zoo_accuracy(model, n_images=200, random_state=_HELDOUT_SEED, batch_size=50):
    """Held-out pretext scores on fresh mosaics: ``(family accuracy, statistics R^2)``.

    The accuracy is the fraction of stride-4 grid points whose texture family
    is named correctly (chance ~ 1/12); R^2 is one minus the mean squared error
    of the five statistics over their variance.
    """
    rng = np.random.default_rng(random_state)
    model.eval()
    hits, sq, var, count = 0.0, 0.0, 0.0, 0
    with torch.no_grad():
        for s in range(0, int(n_images), batch_size):
            X, classes, stats = _dense_batch(rng, min(batch_size, int(n_images) - s))
            out = model.dense(_to_input(X))
            k = len(ZOO_CLASSES)
            hits += float((out[:, :k].argmax(1) == classes).float().sum())
            count += classes.numel()
            sq += float(((out[:, k:] - stats) ** 2).sum())
            var += float(((stats - stats.mean(dim=(0, 2, 3), keepdim=True)) ** 2).sum())
    return hits / count, 1.0 - sq / var


# ---------------------------------------------------------------------------------------------
# saving / loading
# ---------------------------------------------------------------------------------------------
def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_backbone(model, folder=DEFAULT_FOLDER, settings=None):
    """Write ``course_backbone.pt`` (state dict) and ``course_backbone.json`` into ``folder``.

    ``settings`` (a dict: training settings and accuracies) is stored in the JSON
    together with the torch version and the SHA-256 of the ``.pt`` file.
    Returns the path of the JSON file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pt = folder / WEIGHTS_FILE
    # float16 storage halves the file (2.4 -> 1.2 MB); loading copies it back into float32
    # parameters (PaDiM's pixel AUROC on nanofibres is unchanged to 4 decimals)
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu().clone())
             for k, v in model.state_dict().items()}
    torch.save(state, pt)
    info = dict(settings or {})
    info.update({
        "architecture": "adcourse.deep.pretrain.CourseNet",
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "classes": list(ZOO_CLASSES),
        "torch_version": torch.__version__,
        "weights_file": WEIGHTS_FILE,
        "weights_dtype": "float16",
        "sha256": _sha256(pt),
    })
    js = folder / SETTINGS_FILE
    js.write_text(json.dumps(info, indent=2) + "\n")
    return js


_REGEN = ("Regenerate the weights with `python -m adcourse.deep.pretrain` (writes data/backbone; "
          "about 12 minutes on one CPU thread), or restore the files from git.")


def load_course_backbone(folder=None):
    """The course backbone with its shipped weights, in eval mode.

    Reads ``course_backbone.pt`` from ``folder`` (default: the repository's
    ``data/backbone``) and checks its SHA-256 against ``course_backbone.json``.
    Raises :class:`FileNotFoundError` if a file is missing and :class:`RuntimeError`
    if the checksum does not match; both messages say how to regenerate them.
    """
    folder = DEFAULT_FOLDER if folder is None else Path(folder)
    pt, js = folder / WEIGHTS_FILE, folder / SETTINGS_FILE
    for f in (pt, js):
        if not f.is_file():
            raise FileNotFoundError(f"course backbone file missing: {f}. {_REGEN}")
    expected = json.loads(js.read_text()).get("sha256")
    actual = _sha256(pt)
    if actual != expected:
        raise RuntimeError(
            f"checksum mismatch for {pt}: SHA-256 is {actual}, but {js.name} records "
            f"{expected}. The weights file is corrupted or was changed. {_REGEN}")
    with torch.random.fork_rng(devices=[]):  # the throw-away init must not move the global RNG
        model = CourseNet()
    model.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
    model.eval()
    return model


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m adcourse.deep.pretrain",
                                description="Train the course backbone on the texture zoo.")
    p.add_argument("--out", default=str(DEFAULT_FOLDER), help="output folder (default: data/backbone)")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the shipped weights were made with 1)")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, hist = train_course_backbone(a.steps, a.batch_size, a.lr, a.seed,
                                        progress=not a.no_progress)
    k = min(50, a.steps)
    train_acc = float(np.mean(hist["accuracy"][-k:]))
    held, r2 = evaluate_zoo_accuracy(model)
    settings = {
        "command": f"python -m adcourse.deep.pretrain --steps {a.steps} --batch-size {a.batch_size} "
                   f"--lr {a.lr} --seed {a.seed} --threads {a.threads}",
        "n_steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed,
        "optimizer": "Adam + OneCycle (cosine) schedule",
        "task": "dense: texture family (cross-entropy) + 5 local statistics (MSE) on zoo mosaics",
        "loss": "cross-entropy + mean squared error",
        "image_size": 64, "threads": a.threads,
        "final_train_accuracy": round(train_acc, 4),
        "final_train_accuracy_note": f"per-location family accuracy, mean over the last {k} "
                                     "training batches",
        "heldout_accuracy": round(held, 4),
        "heldout_statistics_r2": round(r2, 4),
        "heldout_note": f"200 fresh mosaics drawn with seed {_HELDOUT_SEED}: per-location "
                        "family accuracy and R^2 of the 5 statistics",
        "train_seconds": round(hist["seconds"], 1),
    }
    js = save_backbone(model, a.out, settings)
    print(f"train accuracy (last {k} batches) {train_acc:.3f}, held-out accuracy {held:.3f}, "
          f"statistics R^2 {r2:.3f}, "
          f"{hist['seconds']:.0f} s -> {js}")


if __name__ == "__main__":
    main()
