"""Print timings of the package and the book (`make bench`). Figures, not tests.

Usage: python scripts/bench.py [--no-book]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def timed(label, fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:58s} {best * 1000:9.1f} ms")
    return out


def bench_chapter2():
    """Isolation forest, EM and LOF against scikit-learn, same data, same run."""
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import LocalOutlierFactor

    import bench_isolation
    from adcourse.vectors.density import GMMDetector
    from adcourse.vectors.distance import LOFDetector

    bench_isolation.timing(repeat=3)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3, size=(5, 10))
    X = centres[rng.integers(5, size=10_000)] + rng.normal(size=(10_000, 10))
    ours = timed("GMMDetector (our EM), K=5, tol 1e-3", lambda: GMMDetector(5, tol=1e-3, history=True,
                                                                           random_state=0).fit(X), 1)
    w, m, c = ours.history_[0]
    sk = timed("sklearn GaussianMixture, same initial parameters", lambda: GaussianMixture(
        5, reg_covar=1e-6, tol=1e-3, weights_init=w, means_init=m,
        precisions_init=np.linalg.inv(c)).fit(X), 1)
    print(f"   EM iterations: ours {ours.n_iter_}, sklearn {sk.n_iter_}; mean log-likelihood "
          f"ours {ours.lower_bound_:.6f}, sklearn {sk.score(X):.6f}")
    X_new = rng.normal(size=(10_000, 10))
    timed("LOFDetector(20) fit + score", lambda: LOFDetector(20).fit(X).anomaly_score(X_new), 1)
    timed("sklearn LocalOutlierFactor(20, novelty=True) fit + score",
          lambda: -LocalOutlierFactor(20, novelty=True).fit(X).score_samples(X_new), 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-book", action="store_true", help="skip executing the chapters")
    args = parser.parse_args(argv)

    from sklearn import metrics as skm

    from adcourse import data, metrics
    from adcourse.decision import Threshold
    from adcourse.images.features import LocalFeatureDetector

    rng = np.random.default_rng(0)
    n = 1_000_000
    y = (rng.random(n) < 0.05).astype(int)
    s = rng.normal(size=n) + 2 * y
    print(f"== metrics on {n:,} scores ==")
    timed("adcourse.metrics.roc_auc", lambda: metrics.roc_auc(s, y))
    timed("sklearn.metrics.roc_auc_score", lambda: skm.roc_auc_score(y, s))
    timed("adcourse.metrics.average_precision", lambda: metrics.average_precision(s, y))
    timed("sklearn.metrics.average_precision_score", lambda: skm.average_precision_score(y, s))
    maps = rng.random((32, 256, 256))
    masks = np.zeros(maps.shape, bool)
    masks[:, 100:140, 60:90] = True
    masks[::2, 10:20, 200:230] = True
    maps += masks
    timed("adcourse.metrics.pro_auc, 32 maps 256x256", lambda: metrics.pro_auc(maps, masks))
    # the size of the real SEM test set at the course's scale (31 images of 348 x 512)
    maps = rng.random((31, 348, 512))
    masks = np.zeros(maps.shape, bool)
    masks[:, 100:120, 200:230] = True
    masks[::3, 10:15, 10:12] = True
    maps += 0.3 * masks
    timed("adcourse.metrics.pixel_roc_auc + pro_auc, 31 maps 348x512",
          lambda: (metrics.pixel_roc_auc(maps, masks), metrics.pro_auc(maps, masks)), 1)
    timed("adcourse.metrics.pixel_measures (one sort), same maps",
          lambda: metrics.pixel_measures(maps, masks), 1)
    print("== decision rules on 10,000 normal scores ==")
    normal = rng.normal(size=10_000)
    timed("Threshold.from_fpr", lambda: Threshold.from_fpr(normal, 0.01))
    timed("Threshold.bootstrap (2000 resamples)", lambda: Threshold.bootstrap(normal, 0.01), 1)
    print("== data and the chapter-1 image detector ==")
    timed("make_nanofibers, 16 images 128x128", lambda: data.make_nanofibers(16, 128), 1)
    train = data.make_nanofibers(8, 128, anomaly_rate=0.0, random_state=1)
    test = data.make_nanofibers(24, 128, anomaly_rate=0.5, random_state=3)
    det = timed("LocalFeatureDetector.fit, 8 images", lambda: LocalFeatureDetector(11).fit(train.images))
    timed("LocalFeatureDetector.anomaly_map, 24 images", lambda: det.anomaly_map(test.images))

    print("== chapter 2: our detectors vs scikit-learn on 10,000 x 10 ==")
    bench_chapter2()
    print("== chapters 3-4: score map of one 256x256 image, 15x15 patches, stride 1 ==")
    import bench_images
    import bench_sparse

    bench_images.main([])
    bench_sparse.main([])
    print("== chapter 5: CNN features ==")
    import bench_cnn

    bench_cnn.main([])
    print("== chapter 6: autoencoders, image losses, DAGMM ==")
    import bench_autoencoders

    bench_autoencoders.main(["--quick"])  # the tables: python scripts/bench_autoencoders.py
    print("== chapter 7: inpainting (RIAD) against chapter 6's autoencoder ==")
    import bench_inpainting

    bench_inpainting.main([])  # the settings sweep: python scripts/bench_inpainting.py --sweep
    print("== chapter 8: Deep SVDD ==")
    import bench_deep_svdd

    bench_deep_svdd.main([])
    print("== chapter 9: GANs (AnoGAN vs BiGAN, FC-GAN vs PaDiM) ==")
    import bench_gans

    bench_gans.main(["--quick"])  # all ten digits: python scripts/bench_gans.py
    print("== grading: 30 submissions of exercise 1 ==")
    import bench_grading

    bench_grading.main(["--n", "30"])
    print("== real SEM images (NanoTWICE): every image method, the real-data protocol ==")
    import bench_real

    bench_real.main(["--quick"])  # 3 seeds, all 31 test images (hours): python scripts/bench_real.py

    if not args.no_book:
        print("== chapters (execution, cold kernel) ==")
        for md in sorted((ROOT / "book").glob("[0-9]*.md")):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "jupytext", "--to", "ipynb", "--execute", "-o", "-", str(md)],
                capture_output=True, text=True,
            )
            status = "ok" if proc.returncode == 0 else "FAILED"
            print(f"{md.name:58s} {time.perf_counter() - t0:9.1f} s  {status}")


if __name__ == "__main__":
    main()
