"""Figures of chapter 8 (Deep SVDD), not tests. Prints time, the nu bound and the digits ordering.

1. Fit time of ``DeepSVDD()`` (defaults: 50 epochs, batches of 64) on 3000 images of 28x28
   (target: <= 60 s on 2 cores). The images are scikit-learn's digits resized to 28x28 and
   shifted by up to 2 pixels (to make 3000 different ones); only the time matters here.
2. Soft-boundary Deep SVDD on the digits (16x16): fraction of training images outside the
   sphere against nu (target: <= nu + 0.02) and the false-positive rate on fresh normal
   images (the normal digits of the test split), for several nu, mean over the ten digits.
3. The digits one-class protocol (10 digits x 3 seeds): mean AUROC of Deep SVDD (one-class
   and soft-boundary) against kernel SVDD and the one-class SVM (the paper's ordering:
   Deep SVDD >= both), with the spread over the seeds.

Usage: python scripts/bench_deep_svdd.py [--quick]   (--quick: only 1)
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np


def fit_time(n_images=3000, size=28):
    import torch

    from adcourse import data
    from adcourse.deep import DeepSVDD

    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    base = data.load_digits_oneclass(0, size=size, test_size=0.5, random_state=0)
    pool = np.concatenate([base.images_train, base.images_test])
    rng = np.random.default_rng(0)
    pick = rng.integers(len(pool), size=n_images)
    shifts = rng.integers(-2, 3, size=(n_images, 2))
    images = np.stack([np.roll(pool[i], tuple(s), axis=(0, 1)) for i, s in zip(pick, shifts)])
    t0 = time.perf_counter()
    det = DeepSVDD(progress=False, device="cpu").fit(images)
    seconds = time.perf_counter() - t0
    print(f"DeepSVDD() fit on {n_images} images {size}x{size}: {seconds:.1f} s "
          f"({det.history_.n_steps} steps, {det.n_epochs} epochs, {threads} thread(s); target <= 60 s "
          f"on 2 quiet cores)")
    return seconds


def nu_bound(nus=(0.05, 0.1, 0.2, 0.4), size=16, n_epochs=100):
    from adcourse import data
    from adcourse.deep import DeepSVDD

    print(f"soft-boundary Deep SVDD on the digits ({size}x{size}, {n_epochs} epochs, batches of 32), "
          "mean over the 10 digits:")
    for nu in nus:
        outside, fpr = [], []
        for digit in range(10):
            split = data.load_digits_oneclass(digit, size=size, random_state=0)
            det = DeepSVDD("soft-boundary", nu=nu, n_epochs=n_epochs, batch_size=32, progress=False,
                           device="cpu").fit(split.images_train)
            outside.append(det.training_outlier_fraction_)
            normal = split.images_test[split.y_test == 0]
            fpr.append(float(np.mean(det.sphere_threshold().predict(det.anomaly_score(normal)))))
        print(f"  nu {nu:4.2f}: training images outside R {np.mean(outside):.3f} (max {np.max(outside):.3f}, "
              f"target <= {nu + 0.02:.2f}); FPR on fresh normal images {np.mean(fpr):.3f}")


def digits_ordering(size=16, n_epochs=100):
    from adcourse import data
    from adcourse.compare import one_class
    from adcourse.deep import DeepSVDD
    from adcourse.vectors import OneClassSVMDetector, SVDDDetector

    deep = one_class({
        "Deep SVDD (one-class)": lambda: DeepSVDD(n_epochs=n_epochs, batch_size=32, progress=False, device="cpu"),
        "Deep SVDD (soft-boundary)": lambda: DeepSVDD("soft-boundary", n_epochs=n_epochs, batch_size=32,
                                                      progress=False, device="cpu"),
    }, functools.partial(data.load_digits_oneclass, size=size), inputs="images")
    kernel = one_class({"kernel SVDD": SVDDDetector, "OC-SVM": OneClassSVMDetector}, data.load_digits_oneclass)
    print(f"digits one-class protocol (10 digits x 3 seeds; networks on {size}x{size}, kernels on 8x8):")
    for table in (deep, kernel):
        for m in table.methods:
            print(f"  {m:28s} mean AUROC {table.mean(m):.4f} ± {table.spread(m):.4f}   ({table.time(m):.1f} s)")
    best_kernel = max(kernel.mean(m) for m in kernel.methods)
    for m in deep.methods:
        verdict = ">=" if deep.mean(m) >= best_kernel else "<"
        print(f"  {m} {verdict} the best kernel method ({best_kernel:.4f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the fit time")
    args = parser.parse_args(argv)
    fit_time()
    if not args.quick:
        nu_bound()
        digits_ordering()


if __name__ == "__main__":
    main()
