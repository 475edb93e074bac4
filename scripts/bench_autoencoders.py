"""Figures of chapter 6 (autoencoders, DAGMM), not tests. Prints agreement, quality and time.

1. The image losses against their references: largest differences to torchmetrics' SSIM and
   MS-SSIM (data_range=1), scikit-image's SSIM map (away from the border) and a direct numpy
   GMS, on 28-128 px images; time of one loss + gradient on 64 x 1 x 32 x 32 (ours, torchmetrics).
2. Autoencoder training is deterministic for a seed: two fits, same seed, identical maps.
3. Nanofibres (the book's protocol: 3 data seeds, 20 training images and 12 test images of
   96 x 96): image AUROC, pixel AUROC and PRO of the autoencoder under each loss (CW-SSIM too), of the two
   feature-monitoring detectors on 9 x 9 patches, and of the chapter-4 PCA residual; targets:
   structural loss >= l2 in pixel AUROC, best chapter-6 method >= PCA residual.
   The methods of chapters 3-5 on the same protocol, to name the best of them.
4. Digits one-class (scikit-learn's 8 x 8 digits, each class normal in turn, 3 seeds): AUROC
   of the reconstruction error, AE + GMM (code, and code + reconstruction features) and DAGMM.
5. With --book: cold execution time of book/06-autoencoders.md (target <= 90 s on a quiet
   2-core machine).

Usage: python scripts/bench_autoencoders.py [--quick] [--book]   (--quick: skips 3 and 4)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

#: the book's settings (book/06-autoencoders.md)
AE = dict(widths=(8, 16, 32), latent=8, n_crops=400, n_epochs=4, batch_size=16, sigma=2.0, progress=False)


def losses():
    import torch
    from scipy import ndimage
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    from adcourse.deep.losses import MS_SSIM_BETAS, gms, ms_ssim, n_scales_that_fit, ssim

    rng = np.random.default_rng(0)
    print("losses vs references (float64, 3 images per size): largest absolute difference")
    for size in (28, 32, 64, 128):
        x = ndimage.uniform_filter(rng.random((3, 1, size, size)), (0, 0, 3, 3))
        y = np.clip(0.7 * x + 0.3 * rng.random(x.shape), 0, 1)
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        ours = ssim(xt, yt)
        d_ssim = abs(float(ours.value) - float(tm_ssim(yt, xt, data_range=1.0)))
        d_map = max(
            np.abs(structural_similarity(a[0], b[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=1.0, full=True)[1][5:-5, 5:-5] - m[0, 5:-5, 5:-5]).max()
            for a, b, m in zip(x, y, ours.map.numpy()))
        m = n_scales_that_fit(size, size)
        betas = np.asarray(MS_SSIM_BETAS[:m]) / sum(MS_SSIM_BETAS[:m])
        ref = tm_ms(yt, xt, data_range=1.0, betas=tuple(float(b) for b in betas), kernel_size=3)
        d_ms = abs(float(ms_ssim(xt, yt).value) - float(ref))
        hx = np.array([[1.0, 0.0, -1.0]] * 3) / 3

        def grad(z):
            return np.hypot(ndimage.correlate(z, hx, mode="mirror"), ndimage.correlate(z, hx.T, mode="mirror"))

        direct = [(2 * grad(a[0]) * grad(b[0]) + 0.0026) / (grad(a[0]) ** 2 + grad(b[0]) ** 2 + 0.0026)
                  for a, b in zip(x, y)]
        d_gms = np.abs(gms(xt, yt).map.numpy()[:, 0] - np.stack(direct)).max()
        print(f"  {size:3d} px: SSIM {d_ssim:.1e} (torchmetrics)  SSIM map {d_map:.1e} (scikit-image)  "
              f"MS-SSIM, {m} scales {d_ms:.1e} (torchmetrics)  GMS map {d_gms:.1e} (numpy)")
    x = torch.rand(64, 1, 32, 32, requires_grad=True)
    y = torch.rand(64, 1, 32, 32)
    for name, fn in [("ssim (ours)", lambda: 1 - ssim(x, y).value),
                     ("ssim (torchmetrics)", lambda: 1 - tm_ssim(x, y, data_range=1.0)),
                     ("ms_ssim (ours, value only)", lambda: 1 - ms_ssim(x, y, full=False).value)]:
        best = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            fn().backward()
            best = min(best, time.perf_counter() - t0)
        print(f"  {name:28s} loss + gradient, 64 x 1 x 32 x 32: {best * 1000:6.1f} ms")


def determinism():
    from adcourse import data
    from adcourse.deep.autoencoders import AutoencoderDetector

    train = data.make_nanofibers(n_images=8, size=64, anomaly_rate=0.0, random_state=0).images
    maps = [AutoencoderDetector(loss="ssim", random_state=s, **AE).fit(train).anomaly_map(train[:2])
            for s in (0, 0, 1)]
    print(f"AE training, seed 0 twice: largest map difference {np.abs(maps[0] - maps[1]).max():.1e}; "
          f"seed 0 vs 1: {np.abs(maps[0] - maps[2]).max():.2e}")


def chapter_table(seeds=(0, 1, 2), datasets=("nanofibres", "brick")):
    from adcourse.compare import compare_seeds
    from adcourse.deep.autoencoders import AutoencoderDetector, AutoencoderGMMDetector
    from adcourse.deep.dagmm import DAGMM
    from adcourse.images.patches import PatchDetector
    from adcourse.images.subspace import PCADetector

    patch = dict(patch_size=9, stride=3, max_train_patches=4000)
    small = dict(n_epochs=10, batch_size=128, progress=False)
    methods = {
        "4 · PCA residual": lambda: PatchDetector(PCADetector(20), patch_size=9),
        **{f"AE, {loss}": (lambda loss=loss: AutoencoderDetector(loss=loss, **AE))
           for loss in ("l2", "ssim", "ms_ssim", "msgms", "cw_ssim")},
        "AE + GMM (patches)": lambda: PatchDetector(AutoencoderGMMDetector(**small), **patch),
        "DAGMM (patches)": lambda: PatchDetector(DAGMM(**small), **patch),
    }
    table = compare_seeds(methods, lambda seed: {d: _dataset(d, seed) for d in datasets}, seeds=seeds)
    print(f"{len(seeds)} seeds (mean ± sd over seeds):")
    print(table.frame().to_string())
    for dataset in datasets:
        pix = {m: table.mean(m, dataset, "pixel_auroc") for m in methods}
        best_structural = max(("AE, ssim", "AE, ms_ssim", "AE, msgms", "AE, cw_ssim"), key=pix.get)
        best6 = max((m for m in methods if not m.startswith("4")), key=pix.get)
        print(f"  {dataset}: target structural >= l2 (pixel AUROC): {best_structural} {pix[best_structural]:.3f} "
              f"vs l2 {pix['AE, l2']:.3f}")
        print(f"  {dataset}: target best chapter 6 >= PCA residual: {best6} {pix[best6]:.3f} vs "
              f"{pix['4 · PCA residual']:.3f}")


def earlier_chapters(seeds=(0, 1, 2), datasets=("nanofibres", "brick")):
    """The methods of chapters 3-5 on the same nanofibre protocol: which is the best to compare with."""
    from adcourse.compare import compare_seeds
    from adcourse.deep.latent import LatentPatchDetector
    from adcourse.deep.padim import PerLocationGaussian
    from adcourse.images.features import ExpertFeatureDetector, LocalFeatureDetector
    from adcourse.images.patches import PatchDetector
    from adcourse.images.sparse import SparseCodingDetector
    from adcourse.images.subspace import PCADetector, PCAFeatureDetector
    from adcourse.vectors.density import GaussianDetector

    methods = {
        "3 · Gaussian, raw 9x9 patches": lambda: PatchDetector(GaussianDetector(reg=1e-4), patch_size=9),
        "3 · local statistics": lambda: LocalFeatureDetector(window=11),
        "4 · PCA residual": lambda: PatchDetector(PCADetector(20), patch_size=9),
        "4 · PCA energies": lambda: PatchDetector(PCAFeatureDetector(20, random_state=0), patch_size=9),
        "4 · expert features": lambda: ExpertFeatureDetector(patch_size=15),
        "4 · sparse coding": lambda: SparseCodingDetector(patch_size=9, n_atoms=64, lam=0.05, stride=3, n_iter=5,
                                                          n_train_patches=3000, n_val_patches=3000, random_state=0),
        "5 · latent kNN": lambda: LatentPatchDetector(layers=("layer1", "layer2"), max_samples=5000, sigma=4),
        "5 · PaDiM": lambda: PerLocationGaussian(),
    }
    table = compare_seeds(methods, lambda seed: {d: _dataset(d, seed) for d in datasets}, seeds=seeds)
    for dataset in datasets:
        print(f"chapters 3-5 on the chapter's {dataset} protocol: pixel AUROC, mean ± sd over seeds")
        for name in sorted(methods, key=lambda m: -table.mean(m, dataset, "pixel_auroc")):
            print(f"  {name:30s} {table.text(name, dataset, 'pixel_auroc')}  {table.time(name):5.1f} s")


def _dataset(name, seed):
    """The book's data of one seed: nanofibres 20 + 12 images of 96 px, brick 40 + 12 crops of 64 px."""
    from adcourse import data

    if name == "nanofibres":
        train = data.make_nanofibers(n_images=20, size=96, anomaly_rate=0.0, random_state=100 + seed).images
        test = data.make_nanofibers(n_images=12, size=96, anomaly_rate=0.5, random_state=200 + seed)
    else:
        train = data.make_textures("brick", n_images=40, size=64, anomaly_rate=0.0, split="train",
                                   random_state=100 + seed).images
        test = data.make_textures("brick", n_images=12, size=64, anomaly_rate=0.5, split="test",
                                  random_state=200 + seed)
    return train, test


def digits(seeds=(0, 1, 2)):
    from adcourse.compare import one_class
    from adcourse.data import load_digits_oneclass
    from adcourse.deep.autoencoders import AutoencoderDetector, AutoencoderGMMDetector
    from adcourse.deep.dagmm import DAGMM

    kw = dict(n_epochs=100, batch_size=32, progress=False)
    methods = {
        "AE, reconstruction error": lambda: AutoencoderDetector(latent=8, **kw),
        "AE + GMM (code)": lambda: AutoencoderGMMDetector(**kw),
        "AE + GMM (code + errors)": lambda: AutoencoderGMMDetector(features="code+errors", **kw),
        "DAGMM": lambda: DAGMM(**kw),
    }
    t0 = time.perf_counter()
    table = one_class(methods, load_digits_oneclass, seeds=seeds)
    print(f"digits one-class, 10 classes x {len(seeds)} seeds ({time.perf_counter() - t0:.0f} s): "
          "mean AUROC ± sd over seeds")
    for m in methods:
        print(f"  {m:26s} {table.mean(m):.3f} ± {table.spread(m):.3f}   ({table.time(m):5.1f} s)")


def book():
    md = ROOT / "book" / "06-autoencoders.md"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--execute", "-o", "-", str(md)],
                          capture_output=True, text=True)
    status = "ok" if proc.returncode == 0 else "FAILED"
    print(f"chapter 6 cold execution: {time.perf_counter() - t0:.1f} s ({status}; target <= 90 s on a quiet "
          "2-core machine)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the nanofibre and digits tables")
    parser.add_argument("--book", action="store_true", help="also time the chapter's execution")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    losses()
    determinism()
    if not args.quick:
        chapter_table()
        earlier_chapters()
        digits()
    if args.book:
        book()


if __name__ == "__main__":
    main()
