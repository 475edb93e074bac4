r"""The course backbone: a small CNN pretrained on a generated "texture zoo".

Transfer learning needs a network trained on *another task and other data* than
the images we want to inspect. ImageNet weights are the usual choice, but they
have to be downloaded (and a network trained on millions of photos may well
have seen "anomalies"). The course therefore ships its own small backbone,
:class:`CourseNet`, trained in a few minutes on a CPU to classify procedurally
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

Every sample gets a random contrast, brightness, polarity, blur and additive
noise, so the class is carried by the *structure* only. To tell these families
apart the first layers must learn generic low-level filters — oriented edges
and bars, blobs and spots, at several scales and frequencies — which are
exactly the building blocks of SEM images of nanofibres or of natural textures.
The backbone never sees those test images, nor anything produced by their
generators (:func:`adcourse.data.make_nanofibers`,
:func:`adcourse.data.make_textures`): the zoo is made from scratch here with
numpy/scipy.

The weights shipped in ``data/backbone/`` (``course_backbone.pt`` + a JSON with
the training settings and SHA-256 checksum) are reproduced by::

    python -m adcourse.pretrain                 # rewrites data/backbone
    python -m adcourse.pretrain --out /tmp/bb --steps 200

:func:`load_course_backbone` loads them, checking the checksum.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage as ndi

__all__ = ["ZOO_CLASSES", "CourseNet", "make_texture_zoo", "train_course_backbone",
           "evaluate_zoo_accuracy", "save_backbone", "load_course_backbone", "DEFAULT_FOLDER",
           "WEIGHTS_FILE", "SETTINGS_FILE"]

ZOO_CLASSES = ("grating", "checkerboard", "dots", "blobs", "segments", "smooth_noise",
               "crosshatch", "voronoi", "jittered_stripes", "fine_grain", "rings", "rectangles")

#: default location of the shipped weights: ``<repo>/data/backbone``
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "data" / "backbone"
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


def _to_input(X):
    """(n, H, W) in [0, 1] -> ImageNet-normalised 3-channel tensor, as FeatureExtractor does."""
    from .backbones import IMAGENET_MEAN, IMAGENET_STD

    x = torch.as_tensor(X, dtype=torch.float32)[:, None].expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


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
    classes (unused for anomaly detection: :class:`adcourse.backbones.FeatureExtractor`
    hooks the stages). Input: ``(n, 3, H, W)`` ImageNet-normalised.
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

    def forward(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.head(x)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def train_course_backbone(n_steps=1000, batch_size=64, lr=2e-3, random_state=0, progress=True):
    """Train :class:`CourseNet` to classify freshly generated texture-zoo batches.

    Every step draws a new balanced-ish batch from the zoo generator (seeded by
    ``random_state``), so the network never sees the same image twice. Adam,
    cross-entropy, cosine learning-rate decay. Deterministic on CPU for a given
    seed, torch version and thread count.

    Returns ``(model, history)``: the model in eval mode and a dict with the
    per-step ``loss`` and ``accuracy`` lists and ``seconds``.
    """
    import torch.nn.functional as F
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
                labels = rng.integers(0, len(ZOO_CLASSES), batch_size)
                X = np.stack([_make_one(int(c), 64, rng) for c in labels])
                x, t = _to_input(X), torch.as_tensor(labels, dtype=torch.long)
                logits = model(x)
                loss = F.cross_entropy(logits, t)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                history["loss"].append(loss.item())
                history["accuracy"].append(float((logits.argmax(1) == t).float().mean()))
                if progress:
                    k = min(20, len(history["loss"]))
                    bar.set_postfix(loss=f"{np.mean(history['loss'][-k:]):.3f}",
                                    acc=f"{np.mean(history['accuracy'][-k:]):.2f}")
            history["seconds"] = time.perf_counter() - start
    finally:
        torch.use_deterministic_algorithms(prev_det)
    model.eval()
    return model, history


def evaluate_zoo_accuracy(model, n_per_class=50, random_state=_HELDOUT_SEED, batch_size=128):
    """Accuracy of ``model`` on freshly generated (held-out) texture-zoo samples."""
    X, y = make_texture_zoo(n_per_class, 64, random_state)
    model.eval()
    preds = []
    with torch.no_grad():
        for s in range(0, len(X), batch_size):
            preds.append(model(_to_input(X[s:s + batch_size])).argmax(1).numpy())
    return float(np.mean(np.concatenate(preds) == y))


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
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, pt)
    info = dict(settings or {})
    info.update({
        "architecture": "adcourse.pretrain.CourseNet",
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "classes": list(ZOO_CLASSES),
        "torch_version": torch.__version__,
        "weights_file": WEIGHTS_FILE,
        "sha256": _sha256(pt),
    })
    js = folder / SETTINGS_FILE
    js.write_text(json.dumps(info, indent=2) + "\n")
    return js


_REGEN = ("Regenerate the weights with `python -m adcourse.pretrain` (writes data/backbone; "
          "about 5 minutes on 2 CPU cores), or restore the files from git.")


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
    p = argparse.ArgumentParser(prog="python -m adcourse.pretrain",
                                description="Train the course backbone on the texture zoo.")
    p.add_argument("--out", default=str(DEFAULT_FOLDER), help="output folder (default: data/backbone)")
    p.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=64)
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
    held = evaluate_zoo_accuracy(model)
    settings = {
        "command": f"python -m adcourse.pretrain --steps {a.steps} --batch-size {a.batch_size} "
                   f"--lr {a.lr} --seed {a.seed} --threads {a.threads}",
        "n_steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed,
        "optimizer": "Adam + OneCycle (cosine) schedule", "loss": "cross-entropy",
        "image_size": 64, "threads": a.threads,
        "final_train_accuracy": round(train_acc, 4),
        "final_train_accuracy_note": f"mean over the last {k} training batches",
        "heldout_accuracy": round(held, 4),
        "heldout_note": f"{50 * len(ZOO_CLASSES)} fresh zoo images, "
                        f"make_texture_zoo(50, 64, random_state={_HELDOUT_SEED})",
        "train_seconds": round(hist["seconds"], 1),
    }
    js = save_backbone(model, a.out, settings)
    print(f"train accuracy (last {k} batches) {train_acc:.3f}, held-out accuracy {held:.3f}, "
          f"{hist['seconds']:.0f} s -> {js}")


if __name__ == "__main__":
    main()
