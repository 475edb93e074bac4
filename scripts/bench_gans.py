"""Figures of chapter 9 (GANs), not tests. Prints AUROCs, times per image and the speed ratio.

1. AnoGAN against the BiGAN on the digits one-class protocol (16x16 digits; each digit normal
   in turn, fit on that digit's training half, AUROC on the test half: all digits): image AUROC
   of AnoGAN's score, of the BiGAN's A(s) and of its "AnoGAN improved" score, and the scoring
   time per image of each (AnoGAN: ``n_steps`` Adam steps per image, batched; the BiGAN: one
   pass). Issue target: the BiGAN >= 100x faster per image at a comparable AUROC. Both use the
   chapter's settings (20 training epochs, AnoGAN 100 steps) or, with ``--defaults``, the
   detectors' defaults (150 epochs, 200 steps). The BiGAN is fitted twice: the lecture's game
   alone, and with ALICE's cycle term (``reconstruction_weight=MU``); ``--choose`` picks ``MU``
   among ``MUS`` on validation problems made of the digits' *training* parts only
   (:func:`validation_split`, seeds 10-12) and stops. Each score is also compared with AnoGAN's
   run by run (same digit, seed and images).
2. The fully convolutional GAN on the synthetic nanofibres (chapter 9's draws and settings,
   omega chosen on validation images with defects) against PaDiM (``PerLocationGaussian()``,
   chapter 5) over 3 seeds: pixel AUROC, fit time and ms per test image.
3. No NaN in any score or training loss, and determinism: the same seed gives the same scores
   (BiGAN, AnoGAN, FC-GAN, each fitted twice).

Usage: python scripts/bench_gans.py [--quick] [--defaults] [--choose]
(--quick: digits 0-2 and AnoGAN on 150 test images per split instead of 10 digits on the whole
test split; the nanofibres part is the same.)
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

# the BiGAN's reconstruction weight mu (BiGANDetector(reconstruction_weight=)): candidates, and the
# one --choose picked on the validation splits (seeds 10-12, never a test split), 2026-12-02, mean
# validation AUROC over 10 digits x 3 seeds of "AnoGAN improved" / A(s) at 20 epochs:
# mu 0: 0.802 / 0.585, 1: 0.822 / 0.691, 10: 0.900 / 0.796, 30: 0.937 / 0.854, 100: 0.924 / 0.749,
# 300: 0.990 / 0.986, 1000: 0.991 / 0.989, 3000: 0.990 / 0.988, 10000: 0.989 / 0.987
# The same at 10 epochs (2026-12-03, `choose_mu(n_epochs=10)`, 261 s): mu 0: 0.592 / 0.158,
# 1: 0.539 / 0.149, 10: 0.620 / 0.191, 30: 0.631 / 0.255, 100: 0.970 / 0.928, 300: 0.978 / 0.950,
# 1000: 0.979 / 0.962, 3000: 0.979 / 0.964, 10000: 0.978 / 0.964. mu = 1000 again, but the lecture's
# game alone (mu 0) gives an A(s) far below chance after 10 epochs: halving chapter 9's epochs to
# save build time would change what its one-class table shows, so the chapter keeps 20.
MUS = (0.0, 1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
MU = 1000.0
VALIDATION_SEEDS = (10, 11, 12)
FC = dict(n_crops=256, batch_size=16, n_epochs=6, reconstruction_weight=1.0)   # chapter 9's settings


def _msd(values):
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def validation_split(normal_digit, seed, fraction=0.25, n_per_digit=20):
    """A validation problem from the *training* parts of the digits only (none of the test split).

    ``load_digits_oneclass(k, random_state=seed)`` splits every digit the same way whatever the
    normal digit, so its ``images_train`` for digit ``k`` is digit k's training part. The normal
    digit's training part loses ``fraction`` of its images to validation (the fit set is the
    rest); ``n_per_digit`` images of each other digit's training part are the anomalies.
    Returns (fit images, validation images, validation labels with 1 = anomaly).
    """
    from adcourse import data

    parts = {k: data.load_digits_oneclass(k, size=16, random_state=seed).images_train for k in range(10)}
    rng = np.random.default_rng(1000 + seed)
    normal = parts[normal_digit][rng.permutation(len(parts[normal_digit]))]
    n_val = int(round(fraction * len(normal)))
    anomalies = np.concatenate([parts[k][rng.choice(len(parts[k]), n_per_digit, replace=False)]
                                for k in range(10) if k != normal_digit])
    return (normal[n_val:], np.concatenate([normal[:n_val], anomalies]),
            np.r_[np.zeros(n_val, dtype=int), np.ones(len(anomalies), dtype=int)])


def choose_mu(classes=range(10), seeds=VALIDATION_SEEDS, mus=MUS, n_epochs=20):
    """The BiGAN's reconstruction weight with the best mean validation AUROC of "AnoGAN improved"."""
    from adcourse import metrics
    from adcourse.deep import BiGANDetector

    auc = {mu: {"anogan": [], "combined": []} for mu in mus}
    for c in classes:
        for seed in seeds:
            fit, X, y = validation_split(c, seed)
            for mu in mus:
                det = BiGANDetector(n_epochs=n_epochs, reconstruction_weight=mu, random_state=seed,
                                    progress=False).fit(fit)
                s = det.scores(X)
                for key in auc[mu]:
                    auc[mu][key].append(metrics.roc_auc(s[key], y))
    print(f"BiGAN reconstruction weight on the validation splits (training parts only; digits "
          f"{min(classes)}-{max(classes)} x seeds {', '.join(map(str, seeds))}, {n_epochs} epochs), mean AUROC:")
    for mu in mus:
        print(f"  mu {mu:7g}: AnoGAN improved {np.mean(auc[mu]['anogan']):.3f}, A(s) {np.mean(auc[mu]['combined']):.3f}")
    best = max(mus, key=lambda mu: np.mean(auc[mu]["anogan"]))
    print(f"  chosen: mu = {best:g} (MU in this script: {MU:g})")
    return best


def digits(classes, seeds=(0, 1, 2), n_test=None, defaults=False):
    """AnoGAN vs BiGAN on the digits: AUROCs and ms per image, one row per (class, seed)."""
    from adcourse import data, metrics
    from adcourse.deep import AnoGAN, BiGANDetector

    load = functools.partial(data.load_digits_oneclass, size=16)
    gan_kw = {} if defaults else dict(n_epochs=20)
    ano_kw = {} if defaults else dict(n_steps=100)
    rows, nan = [], []
    for c in classes:
        for seed in seeds:
            split = load(c, random_state=seed)
            X, y = split.images_test, split.y_test
            if n_test is not None and n_test < len(y):
                pick = np.random.default_rng(seed).choice(len(y), n_test, replace=False)
                X, y = X[pick], y[pick]
            anogan = AnoGAN(**gan_kw, **ano_kw, random_state=seed, progress=False).fit(split.images_train)
            bigan = BiGANDetector(**gan_kw, random_state=seed, progress=False).fit(split.images_train)
            cycle = BiGANDetector(**gan_kw, reconstruction_weight=MU, random_state=seed,
                                  progress=False).fit(split.images_train)
            t0 = time.perf_counter()
            s_ano = anogan.anomaly_score(X)
            t_ano = time.perf_counter() - t0
            t0 = time.perf_counter()
            s_bi = bigan.scores(X)
            t_bi = time.perf_counter() - t0
            s_cy = cycle.scores(X)
            for name, s in [("AnoGAN", s_ano), *[(f"BiGAN {k}", v) for k, v in s_bi.items()],
                            *[(f"BiGAN + cycle {k}", v) for k, v in s_cy.items()]]:
                if not np.all(np.isfinite(s)):
                    nan.append(f"{name} digit {c} seed {seed}")
            for name, det in (("AnoGAN", anogan), ("BiGAN", bigan), ("BiGAN + cycle", cycle)):
                if not all(np.all(np.isfinite(v)) for v in det.history_.losses.values()):
                    nan.append(f"{name} training loss, digit {c} seed {seed}")
            rows.append(dict(digit=c, seed=seed, n=len(y),
                             anogan=metrics.roc_auc(s_ano, y),
                             bigan=metrics.roc_auc(s_bi["combined"], y),
                             improved=metrics.roc_auc(s_bi["anogan"], y),
                             cycle=metrics.roc_auc(s_cy["combined"], y),
                             cycle_improved=metrics.roc_auc(s_cy["anogan"], y),
                             ms_anogan=1000 * t_ano / len(y), ms_bigan=1000 * t_bi / len(y)))
    return rows, nan


def _per_seed_means(rows, key):
    """Mean over the digits of ``key`` for each seed (the spread of the one-class protocol)."""
    seeds = sorted({r["seed"] for r in rows})
    return [np.mean([r[key] for r in rows if r["seed"] == s]) for s in seeds]


def print_digits(rows, nan, settings):
    classes = sorted({r["digit"] for r in rows})
    n = sorted({r["n"] for r in rows})
    print(f"digits one-class, 16x16, digits {classes[0]}-{classes[-1]} x seeds 0-2, {settings}; "
          f"{n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'} test images per split; "
          f"mean over the digits, ± sd over the 3 seeds:")
    print(f"  {'method':32s} {'image AUROC':>16s} {'ms / image':>12s}")
    ms_a, ms_b = [r["ms_anogan"] for r in rows], [r["ms_bigan"] for r in rows]
    for label, key, ms in (("AnoGAN (optimised z)", "anogan", ms_a), ("BiGAN A(s)", "bigan", ms_b),
                           ("BiGAN AnoGAN improved (z = E(s))", "improved", ms_b),
                           (f"BiGAN + cycle (mu {MU:g}) A(s)", "cycle", ms_b),
                           (f"BiGAN + cycle (mu {MU:g}) improved", "cycle_improved", ms_b)):
        print(f"  {label:32s} {_msd(_per_seed_means(rows, key)):>16s} {np.mean(ms):12.3f}")
    ratio = float(np.sum(ms_a) / np.sum(ms_b))
    print(f"  speed ratio AnoGAN / BiGAN per image: {ratio:.0f}x (target >= 100x; the same networks with "
          f"or without the cycle term)")
    for key in ("bigan", "improved", "cycle", "cycle_improved"):
        diff = np.array([r[key] - r["anogan"] for r in rows])
        print(f"  {key:15s} - AnoGAN, run by run: mean {diff.mean():+.3f}, ahead in {int((diff > 0).sum())} "
              f"of {len(diff)} runs, per-seed means {_msd(np.array(_per_seed_means(rows, key)) - np.array(_per_seed_means(rows, 'anogan')))}")
    print(f"  NaN: {'none' if not nan else ', '.join(nan)}")
    return ratio


def nanofibres(seeds=(0, 1, 2)):
    """FC-GAN (omega on validation) vs PaDiM on chapter 9's nanofibre draws."""
    from adcourse import data, metrics
    from adcourse.deep import FCGANDetector, PerLocationGaussian

    out = {"FC-GAN": [], "PaDiM": []}
    nan = []
    for seed in seeds:
        train = data.make_nanofibers(n_images=8, size=128, anomaly_rate=0.0, random_state=seed).images
        test = data.make_nanofibers(n_images=12, size=128, anomaly_rate=0.5, random_state=100 + seed)
        validation = data.make_nanofibers(n_images=6, size=128, anomaly_rate=1.0, random_state=50 + seed)
        t0 = time.perf_counter()
        fc = FCGANDetector(**FC, random_state=seed, progress=False).fit(train)
        fit_fc = time.perf_counter() - t0
        omega = fc.choose_alpha(validation.images, validation.masks)[0]   # sets alpha
        t0 = time.perf_counter()
        maps = fc.anomaly_map(test.images)
        ms_fc = 1000 * (time.perf_counter() - t0) / len(test.images)
        if not np.all(np.isfinite(maps)) or not all(np.all(np.isfinite(v)) for v in fc.history_.losses.values()):
            nan.append(f"FC-GAN seed {seed}")
        out["FC-GAN"].append((metrics.pixel_roc_auc(maps, test.masks), fit_fc, ms_fc, omega))
        t0 = time.perf_counter()
        padim = PerLocationGaussian().fit(train)
        fit_p = time.perf_counter() - t0
        t0 = time.perf_counter()
        maps = padim.anomaly_map(test.images)
        ms_p = 1000 * (time.perf_counter() - t0) / len(test.images)
        out["PaDiM"].append((metrics.pixel_roc_auc(maps, test.masks), fit_p, ms_p, None))
    return out, nan


def print_nanofibres(out, nan):
    print("synthetic nanofibres 128x128 (chapter 9's draws: 8 normal training images, 12 test images, 6 "
          "validation images with defects for omega), 3 seeds, mean ± sd:")
    print(f"  {'method':30s} {'pixel AUROC':>16s} {'fit (s)':>14s} {'ms / image':>14s}")
    for name, label in (("FC-GAN", "FC-GAN, omega on validation"), ("PaDiM", "PaDiM (per-location Gaussian)")):
        auc, fit, ms, _ = zip(*out[name])
        print(f"  {label:30s} {_msd(auc):>16s} {_msd(fit):>14s} {_msd(ms):>14s}")
    print(f"  omega chosen per seed: {', '.join(f'{o:g}' for *_, o in out['FC-GAN'])}; per-seed pixel AUROC "
          f"FC-GAN {', '.join(f'{a:.3f}' for a, *_ in out['FC-GAN'])}, PaDiM "
          f"{', '.join(f'{a:.3f}' for a, *_ in out['PaDiM'])}")
    print(f"  NaN: {'none' if not nan else ', '.join(nan)}")


def determinism():
    """Each GAN detector fitted twice with one seed gives identical scores."""
    from adcourse import data
    from adcourse.deep import AnoGAN, BiGANDetector, FCGANDetector

    split = data.load_digits_oneclass(3, size=16, random_state=0)
    X = split.images_test[:40]
    nano = data.make_nanofibers(n_images=4, size=64, anomaly_rate=0.0, random_state=0).images
    test = data.make_nanofibers(n_images=3, size=64, anomaly_rate=1.0, random_state=9).images
    cases = {
        "BiGAN (10 epochs)": lambda: BiGANDetector(n_epochs=10, random_state=5, progress=False)
        .fit(split.images_train).anomaly_score(X),
        "AnoGAN (10 epochs, 30 steps)": lambda: AnoGAN(n_epochs=10, n_steps=30, random_state=5, progress=False)
        .fit(split.images_train).anomaly_score(X),
        "FC-GAN (2 epochs)": lambda: FCGANDetector(n_epochs=2, n_crops=64, random_state=5, progress=False)
        .fit(nano).anomaly_map(test),
    }
    print("determinism (each fitted twice with random_state=5):")
    for name, run in cases.items():
        a, b = run(), run()
        print(f"  {name:30s} {'identical' if np.array_equal(a, b) else f'DIFFERENT (max {np.abs(a - b).max():.2e})'}"
              f"{'' if np.all(np.isfinite(a)) else ', NaN!'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits 0-2, AnoGAN on 150 test images per split")
    parser.add_argument("--defaults", action="store_true", help="the detectors' default epochs and steps")
    parser.add_argument("--choose", action="store_true",
                        help="choose the BiGAN's reconstruction weight on the validation splits, then stop")
    args = parser.parse_args(argv)
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    print(f"(torch on {threads} thread(s), device 'auto'; times are wall-clock, upper bounds on a loaded machine)")
    if args.choose:
        choose_mu()
        return
    settings = "detector defaults (150 epochs; AnoGAN 200 steps)" if args.defaults else \
        "chapter 9's settings (20 epochs; AnoGAN 100 steps)"
    t0 = time.perf_counter()
    rows, nan = digits(range(3) if args.quick else range(10), n_test=150 if args.quick else None,
                       defaults=args.defaults)
    print_digits(rows, nan, settings)
    print(f"  ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    print_nanofibres(*nanofibres())
    print(f"  ({time.perf_counter() - t0:.0f} s)")
    determinism()


if __name__ == "__main__":
    main()
