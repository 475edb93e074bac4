"""Every image method of the course on the real NanoTWICE SEM images. Figures, not tests.

Needs the images, which the project never ships: set ADCOURSE_NANOTWICE to their folder
(the authors' layout, see adcourse.data.load_nanotwice). Without it the script says so
and stops (exit status 0), so `make bench` runs everywhere.

Protocol (adcourse.protocol, the one the book uses), at the course's scale (half
resolution, 512 x 348 pixels), split by adcourse.data.nanotwice_split:

* fit on 200 random 128 x 128 crops of the 4 first defect-free images (ITIA1141-1144);
* settings (patch size, window, ...) chosen on the 10 *validation* images
  (ITIA1102, ITIA1106, ..., ITIA1138) with `--choose` (best pixel AUROC among the
  candidates); the values below are those it chose (2026-12-01);
* figures on the 31 *test* images (ITIA1145 and the 30 other defective ones), never used
  to choose anything: pixel AUROC and PRO (up to FPR 0.3) over all their pixels, the fit
  time and the scoring time per image;
* the same methods, same protocol, on synthetic micrographs of the same size
  (make_nanofibers: 4 defect-free 512 x 512 images to crop from, 16 test images of
  256 x 256), to compare the ordering of the methods;
* a figure of the maps of the best three methods on two test images (bench_real.png).

Adding a method is one line in METHODS.

Usage: python scripts/bench_real.py [--root FOLDER] [--choose] [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Method:
    """One row of the table: ``build(setting) -> detector``; ``setting`` is the value
    chosen on the validation images among ``candidates`` (``--choose`` redoes it);
    ``tiled`` for per-location detectors (scored tile by tile)."""

    build: object
    setting: object = None
    candidates: tuple = ()
    tiled: bool = False


def _methods():
    from adcourse.deep.backbones import FeatureExtractor
    from adcourse.deep.latent import LatentPatchDetector
    from adcourse.deep.padim import PerLocationGaussian
    from adcourse.deep.student_teacher import StudentTeacher
    from adcourse.images import (
        ExpertFeatureDetector, KernelPCADetector, LocalFeatureDetector, PatchDetector,
        PCADetector, PCAFeatureDetector, SparseCodingDetector,
    )
    from adcourse.vectors.density import GaussianDetector, GMMDetector

    stack = ("stem", "layer1", "layer2")
    return {
        "3 · Gaussian, raw patches": Method(
            lambda p: PatchDetector(GaussianDetector(reg=1e-4), patch_size=p), 15, (5, 9, 15)),
        "3 · local statistics": Method(lambda w: LocalFeatureDetector(window=w), 15, (7, 11, 15)),
        "4 · PCA reconstruction error": Method(
            lambda p: PatchDetector(PCADetector(20), patch_size=p), 9, (9, 15)),
        "4 · PCA energies (two terms)": Method(
            lambda p: PatchDetector(PCAFeatureDetector(20, random_state=0), patch_size=p), 9, (9, 15)),
        "4 · kernel PCA (RBF)": Method(
            lambda p: PatchDetector(KernelPCADetector(20, max_samples=600), patch_size=p, stride=2),
            9, (9, 15)),
        "4 · expert features": Method(lambda p: ExpertFeatureDetector(patch_size=p), 15, (9, 15, 21)),
        "4 · expert features + granulometry": Method(
            lambda p: ExpertFeatureDetector(patch_size=p, radii=(1, 2, 3, 4, 5, 6), standardize=True,
                                            density=GMMDetector(3, random_state=0), sigma=4),
            11, (9, 11, 15)),
        # setting: (patch size, log_features, sigma)
        "4 · sparse coding": Method(
            lambda s: SparseCodingDetector(patch_size=s[0], n_atoms=64, lam=0.05, stride=4, n_iter=5,
                                           n_train_patches=3000, n_val_patches=5000,
                                           log_features=s[1], sigma=s[2], random_state=0),
            (15, True, 4.0), ((15, False, 0.0), (15, False, 4.0), (15, True, 4.0), (9, True, 4.0),
                              (21, True, 4.0))),
        "5 · latent kNN": Method(
            lambda layers: LatentPatchDetector(layers=layers, max_samples=10000, sigma=4),
            ("layer1", "layer2"), (("layer1", "layer2"),)),  # + stem: 0.828 vs 0.826, 4x slower
        "5 · per-location Gaussian": Method(
            lambda layers: PerLocationGaussian(FeatureExtractor("course", layers=layers), sigma=4),
            stack, (stack,), tiled=True),
        "5 · student–teacher": Method(
            lambda layers: StudentTeacher(teacher=FeatureExtractor("course", layers=layers),
                                          n_epochs=2, batch_size=8, lr=2e-3, sigma=4,
                                          random_state=0, progress=False),
            ("layer1", "layer2"), (("layer1", "layer2"),)),
    }


def _synthetic():
    """Synthetic micrographs for the same protocol: 4 large defect-free fields, 16 test images."""
    from adcourse.data import make_nanofibers

    fit = make_nanofibers(4, 512, anomaly_rate=0.0, random_state=11).images
    test = make_nanofibers(16, 256, anomaly_rate=1.0, random_state=12)
    return fit, test


def _row(name, result):
    fit = "" if result.fit_s is None else f"{result.fit_s:7.1f}"
    return (f"{name:32s} {result.pixel_auroc:8.3f} {result.pro:7.3f} {fit:>8s} "
            f"{result.ms_per_image:9.0f}")


def _plot(out, names, images, masks, maps, titles):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(images), len(names) + 1, figsize=(3.6 * (len(names) + 1),
                                                                    2.6 * len(images)))
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
    parser.add_argument("--choose", action="store_true",
                        help="choose every method's setting on the validation images first")
    parser.add_argument("--only", nargs="*", help="run only these methods (names of METHODS)")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic column")
    parser.add_argument("--out", default=".", help="folder of bench_real.png (default: here)")
    args = parser.parse_args(argv)

    from adcourse.data import (
        COURSE_SCALE, NANOTWICE_ENV, load_nanotwice, nanotwice_names, nanotwice_root,
        nanotwice_split,
    )
    from adcourse.protocol import choose_setting, evaluate_texture

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
    t0 = time.perf_counter()
    dataset = load_nanotwice(root, scale=COURSE_SCALE)
    split = nanotwice_split(dataset, nanotwice_names(root))
    print(f"NanoTWICE at scale {COURSE_SCALE}: fit on crops of {', '.join(split.names['fit'])}; "
          f"validation {len(split.validation)} images ({split.names['validation'][0]}, ...); "
          f"test {len(split.test)} images ({time.perf_counter() - t0:.1f} s to load)")
    methods = _methods()
    if args.only:
        unknown = sorted(set(args.only) - set(methods))
        if unknown:
            raise SystemExit(f"unknown methods {unknown}; known: {sorted(methods)}")
        methods = {k: v for k, v in methods.items() if k in args.only}
    protocol = dict(n_crops=200, crop_size=128, random_state=0)

    if args.choose:
        print("== settings chosen on the validation images (pixel AUROC) ==")
        for name, m in methods.items():
            if len(m.candidates) < 2:
                continue
            best, scores = choose_setting(m.build, m.candidates, split.fit, split.validation,
                                          tiled=m.tiled, **protocol)
            print(f"{name:32s} " + "  ".join(f"{v}: {r.pixel_auroc:.3f}" for v, r in scores.items())
                  + f"  -> {best}")
            m.setting = best

    synthetic = None if args.no_synthetic else _synthetic()
    header = f"{'method':32s} {'pixel AUROC':>8s} {'PRO':>7s} {'fit (s)':>8s} {'ms/image':>9s}"
    results, plot_maps = {}, {}
    # the figure shows two defective test images: the large film of ITIA1101, clumps of ITIA1105
    show = [split.names["test"].index(n) for n in ("ITIA1101", "ITIA1105") if n in split.names["test"]]
    for column, (fit, test) in [("real SEM (31 test images)", (split.fit, split.test))] + (
            [] if synthetic is None else [("synthetic, same protocol (16 images)", synthetic)]):
        print(f"== {column} ==")
        print(header)
        for name, m in methods.items():
            try:
                r = evaluate_texture(m.build(m.setting), test, fit, tiled=m.tiled,
                                     keep_maps=column.startswith("real"), **protocol)
            except Exception as exc:  # one failure must not hide the others
                print(f"{name:32s} error: {type(exc).__name__}: {exc}")
                continue
            print(_row(name, r), flush=True)
            results[column, name] = r
            if r.maps is not None:
                plot_maps[name] = r.maps[show]
                r.maps = None
    real = {n: results[c, n].pixel_auroc for c, n in results if c.startswith("real")}
    if synthetic is not None:
        syn = {n: results[c, n].pixel_auroc for c, n in results if c.startswith("synthetic")}
        common = [n for n in real if n in syn]
        if len(common) >= 3:
            from scipy.stats import spearmanr

            rho = spearmanr([real[n] for n in common], [syn[n] for n in common]).statistic
            print(f"ordering of the methods (pixel AUROC), synthetic vs real: Spearman rho {rho:.2f}")
            print("  real:      " + " < ".join(sorted(common, key=real.get)))
            print("  synthetic: " + " < ".join(sorted(common, key=syn.get)))
    best = sorted(plot_maps, key=real.get, reverse=True)[:3]
    if best and show:
        out = Path(args.out) / "bench_real.png"
        test = split.test
        _plot(out, best, test.images[show], test.masks[show], plot_maps,
              [split.names["test"][i] for i in show])
        print(f"maps of the best three methods ({', '.join(best)}) -> {out}")
    print(f"real-data bench: {time.perf_counter() - t0:.0f} s")
    return results


if __name__ == "__main__":
    main()
