"""Timing of the patch-based PCA detector (chapter 4). Figures, not tests.

Score map of one 256x256 image with 15x15 patches, stride 1 (58,564 patches of
225 pixels), by PCA reconstruction error with ``n_components`` = 10 and 20.
Budget (DESIGN / issue 4): <= 0.5 s per map on the 2-core machine. The fit on
other normal images is timed separately and not part of the budget.

Usage: python scripts/bench_images.py [--repeat 3]
(the sparse-coding timings are in scripts/bench_sparse.py)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from adcourse.data import make_nanofibers
from adcourse.images.patches import PatchDetector, extract_patches, patches_as_vectors
from adcourse.images.subspace import PCADetector

BUDGET_S = 0.5


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    train = make_nanofibers(n_images=4, size=128, anomaly_rate=0.0, random_state=0)
    test = make_nanofibers(n_images=1, size=256, anomaly_rate=1.0, random_state=1)
    n_patches = int(np.prod(extract_patches(test.images, 15).shape[:3]))
    print(f"one 256x256 image, 15x15 patches, stride 1: {n_patches} patches of 225 pixels")

    t, _ = best_of(lambda: patches_as_vectors(extract_patches(test.images, 15)), args.repeat)
    print(f"{'extract + copy all patches as vectors (reference)':58s} {t * 1000:8.1f} ms")
    for m in (10, 20):
        det = PatchDetector(PCADetector(n_components=m), patch_size=15)
        t_fit, _ = best_of(lambda: det.fit(train.images), 1)
        t_map, maps = best_of(lambda: det.anomaly_map(test.images), args.repeat)
        verdict = "ok" if t_map <= BUDGET_S else "OVER BUDGET"
        print(f"{f'PCA m={m}: fit on 4 normal 128x128 images (20k patches)':58s} {t_fit * 1000:8.1f} ms")
        print(f"{f'PCA m={m}: score map 256x256 (budget {BUDGET_S:.1f} s)':58s} "
              f"{t_map * 1000:8.1f} ms  {verdict}")
        assert maps.shape == (1, 256, 256)


if __name__ == "__main__":
    main()
