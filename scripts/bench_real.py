"""Every image method of the course on the real NanoTWICE SEM images. Figures, not tests.

Needs the images, which the project never ships: set ADCOURSE_NANOTWICE to their folder
(the authors' layout, see adcourse.data.load_nanotwice). Without it the script says so
and stops (exit status 0), so `make bench` runs everywhere.

Protocol (adcourse.protocol, the one the book uses), at the course's scale (half
resolution, 512 x 348 pixels), split by adcourse.data.nanotwice_split:

* fit on 200 random 128 x 128 crops of the 4 first defect-free images (ITIA1141-1144);
* settings (patch size, window, indicators, ...) chosen on the 10 *validation* images
  (ITIA1102, ITIA1106, ..., ITIA1138) with `--choose` (best pixel AUROC among the
  candidates, seed 0); the values below are those it chose (dates in the comments);
* figures on the 31 *test* images (ITIA1145 and the 30 other defective ones), never used
  to choose anything: pixel AUROC and PRO (up to FPR 0.3) over all their pixels, the fit
  time and the scoring time per image, mean +- sd over 3 seeds (seed s draws the
  training crops and seeds the detector: random_state=s);
* the image methods of chapters 3-9 that give an anomaly map; those that score whole
  images only (Deep SVDD, GEOM, the VAE, BiGAN, ...) are listed with the reason;
* the chapter 3-4 statistics (raw Gaussian, PCA residual, kernel PCA) fall below chance
  with the lecture's one-sided rule (the defects are bright and *smoother* than the fibre
  texture, so their statistic is typical or low); their decision rule (one-sided, or
  two-sided: PatchDetector(two_sided=True), a density of the log statistic on held-out
  normal patches) is part of the setting chosen on validation with the patch size, and
  the lecture's rule stays as "(one-sided, the lecture's rule)" reference rows, so the
  table shows both what the lecture's rule gives and what validation picks;
* a detector that depends much on its initialisation (the FC-GAN) has `restarts`: the
  best of a few fits on the validation images (adcourse.protocol.select_restart), its
  fit time counting all of them; a setting that needs no refit (the FC-GAN's weight
  of its two maps) is set after every fit on the validation images (`tune`);
* the same methods, same protocol, on synthetic micrographs of the same size
  (make_nanofibers: 4 defect-free 512 x 512 images to crop from, 16 test images of
  256 x 256), seed 0, to compare the ordering of the methods;
* a figure of the maps of the best three methods on two test images (seed 0), saved
  to bench_real.png in --out (never committed: it shows the real images).

`--quick`: one seed, 8 test images (the two of the figure first), 100 crops, no
synthetic column (a smoke run, minutes). Adding a method is one entry in _methods.

Usage: python scripts/bench_real.py [--root FOLDER] [--quick] [--seeds 0 1 2] [--choose]
                                    [--only NAME ...] [--no-synthetic] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)
# (patch size, two_sided): the candidates of the chapter 3-4 statistics whose decision rule
# (the lecture's one-sided threshold, or two-sided monitoring) is chosen on validation
RULE_CANDIDATES = ((9, False), (9, True), (15, False), (15, True))
NAME_WIDTH = 60  # the longest row name ("4 · PCA reconstruction error (one-sided, the lecture's rule)")

# detectors of the course that give one score per image and no anomaly map: not in the table
IMAGE_LEVEL = {
    "6 · AE + GMM on the codes": "AutoencoderGMMDetector: one score per image of its training size",
    "6 · DAGMM": "DAGMM: one score per image of its training size",
    "7 · GEOM (transformations)": "GeomDetector: one score per image (a classifier of transformations)",
    "8 · Deep SVDD": "DeepSVDD: one score per image (distance of its code to the centre)",
    "9 · BiGAN / EGBAD, AnoGAN": "BiGANDetector, AnoGAN: one score per image of the GAN's size",
    "9 · VAE": "VAEDetector: one score per image (ELBO / reconstruction probability)",
}


@dataclass
class Method:
    """One row of the table: ``build(setting, seed) -> detector``; ``setting`` is the value
    chosen on the validation images among ``candidates`` (``--choose`` redoes it, seed 0);
    ``tiled`` for per-location detectors (scored tile by tile); ``restarts`` > 1: for seed s,
    that many detectors (random_state 1000 s + k, k < restarts, on the seed's crops) of which
    adcourse.protocol.select_restart keeps the best on the validation images (fit time: all
    the restarts, their fits and their validation scoring); ``tune(detector, validation)``,
    if given, runs after every fit and sets what needs no refit on the validation images
    (evaluate_texture's ``tune``; the FC-GAN's weight alpha)."""

    build: object
    setting: object = None
    candidates: tuple = ()
    tiled: bool = False
    restarts: int = 1
    tune: object = None


def _tune(m, validation):
    """evaluate_texture's ``tune`` for method ``m`` on these validation images (None without one)."""
    return None if m.tune is None else (lambda det: m.tune(det, validation))


def _restart_states(seed, restarts):
    """The detectors' random states of one seed's restarts (the first is the seed itself)."""
    return [1000 * seed + k for k in range(restarts)]


def _methods():
    from adcourse.deep import AutoencoderDetector, FCGANDetector, InpaintingDetector
    from adcourse.deep.backbones import FeatureExtractor
    from adcourse.deep.latent import LatentPatchDetector
    from adcourse.deep.padim import PerLocationGaussian
    from adcourse.deep.student_teacher import StudentTeacher
    from adcourse.images import (
        ExpertFeatureDetector, KernelPCADetector, LocalFeatureDetector, PatchDetector,
        PCADetector, PCAFeatureDetector,
    )
    from adcourse.images.sparse import SEM_SETTING, sem_sparse_coding
    from adcourse.vectors.density import GaussianDetector, GMMDetector

    stack = ("stem", "layer1", "layer2")
    quiet = dict(progress=False)

    # the chapter 3-4 statistics whose decision rule is chosen: setting = (patch size, two_sided)
    def gaussian(s, rs):
        return PatchDetector(GaussianDetector(reg=1e-4), patch_size=s[0], two_sided=s[1], random_state=rs)

    def pca_residual(s, rs):
        return PatchDetector(PCADetector(20), patch_size=s[0], two_sided=s[1], random_state=rs)

    def kernel_pca(s, rs):
        return PatchDetector(KernelPCADetector(20, max_samples=600, random_state=rs), patch_size=s[0],
                             stride=2, two_sided=s[1], random_state=rs)

    return {
        # The chapter 3-4 statistics (raw Gaussian, PCA residual, kernel PCA): setting = (patch size,
        # two_sided), the decision rule chosen on the validation images with the patch size.
        # two_sided=True (PatchDetector(two_sided=True)) monitors the statistic by a Gaussian on its
        # log over held-out normal patches, so that "too normal" is anomalous too: these defects are
        # bright and *smoother* than the fibre texture, so their statistic is typical or low and the
        # lecture's one-sided rule falls below chance. The lecture's rule stays in the table as the
        # "(one-sided, the lecture's rule)" reference rows, at the best one-sided patch size of the
        # same validation run. `--choose` (2026-12-02, seed 0, 1 thread), validation pixel AUROC of
        # (9, one-sided), (9, two-sided), (15, one-sided), (15, two-sided):
        #   raw Gaussian  0.435 0.509 0.456 0.476 -> (9, two-sided); reference: one-sided p15
        #   PCA residual  0.486 0.549 0.356 0.521 -> (9, two-sided); reference: one-sided p9
        #   kernel PCA    0.286 0.649 0.270 0.660 -> (15, two-sided); reference: one-sided p9
        # Test (31 images, seeds 0-2): 0.577 / 0.603 / 0.712 +- 0.020 (PRO 0.093 / 0.101 / 0.221);
        # the references 0.386 / 0.413 / 0.258 (PRO 0.113 / 0.160 / 0.070).
        "3 · Gaussian, raw patches": Method(gaussian, (9, True), RULE_CANDIDATES),
        "3 · Gaussian, raw patches (one-sided, the lecture's rule)": Method(
            lambda p, rs: gaussian((p, False), rs), 15, (15,)),
        # a mixture (chapter 2) on the same raw patches: the normal texture's contrast grows with its
        # brightness (dark flat background, bright edged fibres), which one Gaussian cannot represent
        # and a bright flat clump breaks. Validation (2026-12-02): 4 components 0.608, 8: 0.634.
        "3 · GMM, raw patches": Method(
            lambda k, rs: PatchDetector(GMMDetector(k, covariance_reg=1e-4, max_iter=100, random_state=rs),
                                        patch_size=9, max_train_patches=10000, random_state=rs),
            8, (4, 8)),
        "3 · local statistics": Method(lambda w, rs: LocalFeatureDetector(window=w, random_state=rs), 15, (7, 11, 15)),
        "4 · PCA reconstruction error": Method(pca_residual, (9, True), RULE_CANDIDATES),
        "4 · PCA reconstruction error (one-sided, the lecture's rule)": Method(
            lambda p, rs: pca_residual((p, False), rs), 9, (9,)),
        "4 · PCA energies (two terms)": Method(
            lambda p, rs: PatchDetector(PCAFeatureDetector(20, random_state=rs), patch_size=p,
                                        random_state=rs), 9, (9, 15)),
        "4 · kernel PCA (RBF)": Method(kernel_pca, (15, True), RULE_CANDIDATES),
        "4 · kernel PCA (RBF) (one-sided, the lecture's rule)": Method(
            lambda p, rs: kernel_pca((p, False), rs), 9, (9,)),
        "4 · expert features": Method(lambda p, rs: ExpertFeatureDetector(patch_size=p, random_state=rs), 15, (9, 15, 21)),
        "4 · expert features + granulometry": Method(
            lambda p, rs: ExpertFeatureDetector(patch_size=p, random_state=rs, radii=(1, 2, 3, 4, 5, 6), standardize=True,
                                                density=GMMDetector(3, random_state=rs), sigma=4),
            11, (9, 11, 15)),
        # setting: (patch size, log_features, sigma, density of the indicators: None = Gaussian,
        # "knn" = KNNDetector(), brightness_weight, brightness_window). Validation (2026-12-01/02,
        # pixel AUROC): (15, plain, 0) 0.791, (15, log, 4) Gaussian 0.831, GMM(3) 0.835, KDE 0.824,
        # kNN 0.842; patch 13 0.813, 17 0.836; test stride 2 0.831; + the patch mean as third
        # indicator (indicators=) 0.823 (GMM 0.822, KDE 0.807, kNN 0.821, lam 0.02 / 0.1: 0.815 /
        # 0.830, 128 atoms 0.791, sigma 8 0.817); quarter scale p9 0.775, p15 0.726 (with the
        # half-scale map: 0.815); full scale p15 0.645.
        # 2026-12-02, validation, (15, log, 4, kNN) unless said: center=False (raw patches, the mean
        # left in the dictionary) is worse: Gaussian / kNN 0.691 / 0.717 (sigma 8: 0.695 / 0.720),
        # + the mean as indicator 0.790 / 0.774; center=False with lam 0.02 0.739 / 0.745 (+ mean
        # 0.797 / 0.781), lam 0.1 0.630 / 0.649, 128 atoms 0.642 / 0.657, plain features 0.655 /
        # 0.703. Centred, one indicator alone: error 0.519, l1 0.750, mean 0.742 (kNN; the density
        # flags dark patches as much as bright ones); kNN on standardised features changes nothing
        # (0.843). The mean intensity is a strong cue one-sided only: the local mean of the
        # validation images, uncalibrated, gives 0.836 / 0.848 / 0.797 (7 / 15 / 31 pixels), and
        # 0.863 once standardised and smoothed (brightness_weight=100, window 7). Hence the
        # brightness map (brightness_weight w, brightness_window): w = 1, window 15 (= patch)
        # 0.902, 11 0.909, 9 0.911, 7 0.913, 5 0.914; w = 0.5 / 1.5 (window 9 / 7) 0.905 / 0.912;
        # window 7 with sigma 8 0.891, plain features 0.908, GMM(3) 0.913; window 9 Gaussian
        # 0.910. Added at the patch level instead (the patch mean averaged over the covering
        # patches, a ~29-pixel support): w = 0.5 / 1 / 2 0.890 / 0.894 / 0.887. `--choose` rerun
        # (2026-12-02), the candidates below in order: 0.795, 0.808, 0.831, 0.782, 0.818, 0.836,
        # 0.842, 0.902, 0.911, 0.913, 0.914, 0.910 -> (15, log, 4, kNN, 1, 5). Test (31 images,
        # seeds 0-2): pixel AUROC 0.912 +- 0.001, PRO 0.481 +- 0.008 (without the brightness map:
        # 0.840 +- 0.005); fit 0.9 s, 210 ms per image.
        # 2026-12-04, validation, (15, log, 4) without the brightness map: the patch energy
        # ||s - mean||^2 as a third indicator (relative error and sparsity, in effect), an experiment
        # outside the detector: kNN 0.836 (the lecture's pair 0.842), Gaussian 0.823; (error,
        # energy) kNN 0.829; (l1, energy) kNN 0.778. No gain, so the detector has no such indicator.
        "4 · sparse coding": Method(
            # the chosen setting is SEM_SETTING of adcourse.images.sparse (chapter 4 runs it too)
            lambda s, rs: sem_sparse_coding(s, random_state=rs), SEM_SETTING,
            ((15, False, 0.0, None, 0.0, None), (15, False, 4.0, None, 0.0, None),
             (15, True, 4.0, None, 0.0, None), (9, True, 4.0, None, 0.0, None),
             (21, True, 4.0, None, 0.0, None), (17, True, 4.0, None, 0.0, None),
             (15, True, 4.0, "knn", 0.0, None), (15, True, 4.0, "knn", 1.0, None),
             (15, True, 4.0, "knn", 1.0, 9), (15, True, 4.0, "knn", 1.0, 7), (15, True, 4.0, "knn", 1.0, 5),
             (15, True, 4.0, None, 1.0, 9))),
        "5 · latent kNN": Method(
            lambda layers, rs: LatentPatchDetector(layers=layers, max_samples=10000, sigma=4,
                                                   random_state=rs),
            ("layer1", "layer2"), (("layer1", "layer2"),)),  # + stem: 0.828 vs 0.826, 4x slower
        "5 · per-location Gaussian": Method(
            lambda layers, rs: PerLocationGaussian(FeatureExtractor("course", layers=layers), sigma=4),
            stack, (stack,), tiled=True),
        "5 · student–teacher": Method(
            lambda layers, rs: StudentTeacher(teacher=FeatureExtractor("course", layers=layers),
                                              n_epochs=2, batch_size=8, lr=2e-3, sigma=4,
                                              random_state=rs, **quiet),
            ("layer1", "layer2"), (("layer1", "layer2"),)),
        # chapters 6-9: class defaults, the map smoothed as the chapters do on real images
        # (sigma 4, as chapter 7's real-SEM table); setting = sigma
        "6 · autoencoder (SSIM)": Method(
            lambda sigma, rs: AutoencoderDetector(loss="ssim", sigma=sigma, random_state=rs, **quiet),
            4.0, (4.0,)),
        "7 · inpainting (RIAD, MSGMS)": Method(
            # one mask set per tile size, as chapter 7 on the real images (scoring cost)
            lambda sigma, rs: InpaintingDetector(n_mask_sets=1, sigma=sigma, random_state=rs, **quiet),
            4.0, (4.0,)),
        "9 · FC-GAN (combined map, ω on validation)": Method(
            # chapter 9's settings (FC = 256 crops, batch 16, 6 epochs, mu = 1). Validation (2026-12-02,
            # seed 0 / seed 1, 1 thread): the combined map 0.751 / 0.592; the discriminator term alone
            # 0.732 / 0.696, the reconstruction term alone 0.691 / 0.369 (a bright smooth clump is easy
            # to reconstruct); mu 100: 0.688 / 0.489, mu 1000: 0.486 / 0.481; 20 epochs with mu 100:
            # 0.744 / 0.642. No setting is stable over the seeds, so none replaces the chapter's.
            # Hence 3 restarts per seed (random_state 1000 s + k), the best on validation kept
            # (select_restart). 2026-12-02, 1 thread: validation of the restarts seed 0: 0.580 / 0.486
            # / 0.464, seed 1: 0.813 / 0.338 / 0.512, seed 2: 0.686 / 0.432 / 0.365 (first kept each
            # time); test 0.494 / 0.796 / 0.627 = 0.639 +- 0.151, PRO 0.294 +- 0.092; fit + selection
            # 35 s. Better on average, still a large spread (seed 0 just below chance).
            # 2026-12-04: as in chapter 9, the weight ω (alpha) of the combined map is chosen after
            # each fit on the validation images (FCGANDetector.choose_alpha, the tune hook), each
            # restart measured with its own ω. Validation of the restarts seed 0: 0.597 / 0.540 /
            # 0.493, seed 1: 0.815 / 0.459 / 0.546, seed 2: 0.686 / 0.492 / 0.428 (first kept each
            # time); test 0.518 / 0.795 / 0.627 = 0.647 +- 0.139, PRO 0.299 +- 0.096 (alpha fixed at
            # 0.5, same machine and day: 0.639 +- 0.151, PRO 0.294 +- 0.092); fit + selection 22 s
            # instead of 14 s (the validation maps are computed once more). No seed below chance now;
            # the spread over the seeds is the initialisation's and stays large.
            lambda sigma, rs: FCGANDetector(n_crops=256, batch_size=16, n_epochs=6, reconstruction_weight=1.0,
                                            sigma=sigma, random_state=rs, **quiet),
            4.0, (4.0,), restarts=3,
            tune=lambda det, validation: det.choose_alpha(validation.images, validation.masks)),
    }


def _synthetic():
    """Synthetic micrographs for the same protocol: 4 large defect-free fields, 16 test images,
    8 validation images (for the restarts' selection)."""
    from adcourse.data import make_nanofibers

    fit = make_nanofibers(4, 512, anomaly_rate=0.0, random_state=11).images
    test = make_nanofibers(16, 256, anomaly_rate=1.0, random_state=12)
    validation = make_nanofibers(8, 256, anomaly_rate=1.0, random_state=13)
    return fit, test, validation


def _summary(runs):
    """Mean and sd (ddof=1; 0 for one run) of each measure over the seeds' results."""
    out = {}
    for key in ("pixel_auroc", "pro", "fit_s", "ms_per_image"):
        values = np.array([getattr(r, key) for r in runs], dtype=float)
        out[key] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return out


def _row(name, summary):
    def pm(key, fmt):
        mean, sd = summary[key]
        return f"{mean:{fmt}} ± {sd:{fmt}}"

    return (f"{name:{NAME_WIDTH}s} {pm('pixel_auroc', '.3f'):>13s} {pm('pro', '.3f'):>13s} "
            f"{summary['fit_s'][0]:8.1f} {summary['ms_per_image'][0]:9.0f}")


def _plot(out, names, images, masks, maps, titles):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(images), len(names) + 1, figsize=(3.6 * (len(names) + 1),
                                                                    2.6 * len(images)))
    axes = np.atleast_2d(axes)
    for i, (image, mask) in enumerate(zip(images, masks)):
        axes[i, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[i, 0].contour(mask, [0.5], colors="red", linewidths=0.6)
        axes[i, 0].set_title(titles[i], fontsize=8)
        for j, name in enumerate(names):
            axes[i, j + 1].imshow(maps[name][i], cmap="inferno")
            axes[i, j + 1].contour(mask, [0.5], colors="cyan", linewidths=0.5)
            axes[i, j + 1].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="NanoTWICE folder (default: $ADCOURSE_NANOTWICE)")
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 8 test images, 100 crops, no synthetic column")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {SEEDS}; --quick: 0)")
    parser.add_argument("--choose", action="store_true",
                        help="choose every method's setting on the validation images first (seed 0)")
    parser.add_argument("--only", nargs="*", help="run only these methods (names of _methods)")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic column")
    parser.add_argument("--out", default=".", help="folder of bench_real.png (default: here)")
    parser.add_argument("--json", help="also write the per-seed figures to this file")
    args = parser.parse_args(argv)

    from adcourse.data import (
        COURSE_SCALE, NANOTWICE_ENV, load_nanotwice, nanotwice_names, nanotwice_root,
        nanotwice_split,
    )
    from adcourse.protocol import choose_setting, evaluate_texture, select_restart

    root = args.root or nanotwice_root()
    if root is None:
        print(f"real SEM images: skipped ({NANOTWICE_ENV} is not set; the NanoTWICE images are "
              "not shipped with adcourse, see data/README.md)")
        return None
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    seeds = tuple(args.seeds) if args.seeds else ((0,) if args.quick else SEEDS)
    t0 = time.perf_counter()
    dataset = load_nanotwice(root, scale=COURSE_SCALE)
    split = nanotwice_split(dataset, nanotwice_names(root))
    test, test_names = split.test, list(split.names["test"])
    # the figure shows two defective test images: the large film of ITIA1101, clumps of ITIA1105
    shown = [n for n in ("ITIA1101", "ITIA1105") if n in test_names]
    if args.quick:
        keep = [test_names.index(n) for n in shown]
        keep += [i for i in range(len(test_names)) if i not in keep][:8 - len(keep)]
        test, test_names = test[np.array(keep)], [test_names[i] for i in keep]
    show = [test_names.index(n) for n in shown]
    print(f"NanoTWICE at scale {COURSE_SCALE}: fit on crops of {', '.join(split.names['fit'])}; "
          f"validation {len(split.validation)} images ({', '.join(split.names['validation'])}); "
          f"test {len(test)} images{' (--quick)' if args.quick else ''}; seeds {seeds} "
          f"({time.perf_counter() - t0:.1f} s to load)")
    methods = _methods()
    if args.only:
        unknown = sorted(set(args.only) - set(methods))
        if unknown:
            raise SystemExit(f"unknown methods {unknown}; known: {sorted(methods)}")
        methods = {k: v for k, v in methods.items() if k in args.only}
    else:
        for name, why in IMAGE_LEVEL.items():
            print(f"{name:{NAME_WIDTH}s} skipped: {why}; the protocol measures anomaly maps")
    protocol = dict(n_crops=100 if args.quick else 200, crop_size=128)

    if args.choose:
        print("== settings chosen on the validation images (pixel AUROC, seed 0) ==")
        for name, m in methods.items():
            if len(m.candidates) < 2:
                continue
            best, scores = choose_setting(lambda v, m=m: m.build(v, 0), m.candidates, split.fit,
                                          split.validation, tiled=m.tiled, random_state=0,
                                          tune=_tune(m, split.validation), **protocol)
            print(f"{name:{NAME_WIDTH}s} " + "  ".join(f"{v}: {r.pixel_auroc:.3f}" for v, r in scores.items())
                  + f"  -> {best}", flush=True)
            m.setting = best

    synthetic = None if (args.no_synthetic or args.quick) else _synthetic()
    header = (f"{'method':{NAME_WIDTH}s} {'pixel AUROC':>13s} {'PRO':>13s} {'fit (s)':>8s} {'ms/image':>9s}"
              "   (mean ± sd over the seeds; times: means)")
    results, plot_maps, per_seed = {}, {}, {}
    columns = [("real SEM", (split.fit, test, split.validation), seeds)]
    if synthetic is not None:
        columns.append(("synthetic", synthetic, seeds[:1]))
    for column, (fit, images, validation), column_seeds in columns:
        print(f"== {column} ({len(images)} test images; seeds {column_seeds}) ==")
        print(header)
        for name, m in methods.items():
            runs = []
            try:
                for seed in column_seeds:
                    keep_maps = column == "real SEM" and seed == column_seeds[0]
                    if m.restarts > 1:  # the best restart on the validation images, then the test
                        sel = select_restart(lambda rs, m=m: m.build(m.setting, rs),
                                             _restart_states(seed, m.restarts), fit, validation,
                                             tiled=m.tiled, random_state=seed, tune=_tune(m, validation),
                                             **protocol)
                        r = evaluate_texture(sel.detector, images, tiled=m.tiled, keep_maps=keep_maps)
                        r.fit_s = sel.fit_s
                        r.restart_validation = {k: v.pixel_auroc for k, v in sel.scores.items()}
                        r.restart_chosen = sel.random_state
                        print(f"  {name} seed {seed}: validation pixel AUROC of the restarts "
                              + ", ".join(f"{k}: {v:.3f}" for k, v in r.restart_validation.items())
                              + f" -> {sel.random_state}; test {r.pixel_auroc:.3f} (PRO {r.pro:.3f}, "
                              f"fit + selection {r.fit_s:.0f} s)", flush=True)
                    else:
                        r = evaluate_texture(m.build(m.setting, seed), images, fit, tiled=m.tiled,
                                             keep_maps=keep_maps, random_state=seed,
                                             tune=_tune(m, validation), **protocol)
                    if r.maps is not None:
                        plot_maps[name] = r.maps[show]
                        r.maps = None
                    runs.append(r)
            except Exception as exc:  # one failure must not hide the others
                print(f"{name:{NAME_WIDTH}s} error: {type(exc).__name__}: {exc}", flush=True)
                continue
            results[column, name] = _summary(runs)
            per_seed[f"{column} | {name}"] = [vars(r) for r in runs]
            print(_row(name, results[column, name]), flush=True)
    real = {n: results[c, n]["pixel_auroc"][0] for c, n in results if c == "real SEM"}
    if synthetic is not None:
        syn = {n: results[c, n]["pixel_auroc"][0] for c, n in results if c == "synthetic"}
        common = [n for n in real if n in syn]
        if len(common) >= 3:
            from scipy.stats import spearmanr

            rho = spearmanr([real[n] for n in common], [syn[n] for n in common]).statistic
            print(f"ordering of the methods (pixel AUROC), synthetic (seed 0) vs real (mean): "
                  f"Spearman rho {rho:.2f}")
            print("  real:      " + " < ".join(sorted(common, key=real.get)))
            print("  synthetic: " + " < ".join(sorted(common, key=syn.get)))
    best = sorted(plot_maps, key=real.get, reverse=True)[:3]
    if best and show:
        out = Path(args.out) / "bench_real.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        _plot(out, best, test.images[show], test.masks[show], plot_maps, [test_names[i] for i in show])
        print(f"maps of the best three methods ({', '.join(best)}; seed {seeds[0]}) -> {out}")
    if args.json:
        settings = {name: repr(m.setting) for name, m in methods.items()}
        Path(args.json).write_text(json.dumps({"seeds": seeds, "test": test_names, "settings": settings,
                                               "runs": per_seed}, indent=1))
        print(f"per-seed figures -> {args.json}")
    print(f"real-data bench: {time.perf_counter() - t0:.0f} s")
    return results


if __name__ == "__main__":
    main()
