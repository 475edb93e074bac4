"""Figures of chapter 5 (CNN features), not tests. Prints quality, time and memory.

1. The per-location Gaussian (PaDiM) with the course backbone on nanofibres:
   pixel AUROC (target >= 0.95), image AUROC, PRO, fit and scoring time, on two
   test sets (seeds 1 and 7, 24 images of 128x128 each, half with defects).
2. Its peak memory (max RSS of a fresh process) for growing training sets: flat.
3. Real textures (brick, gravel, grass crops with synthetic defects): pixel AUROC
   of the per-location Gaussian against every chapter-3/4 method (target: above
   the best of them).
4. Latent kNN and student-teacher on the nanofibres, for reference.

Usage: python scripts/bench_cnn.py [--quick]   (--quick: skips 3)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

STACK = ("stem", "layer1", "layer2")


def padim_nanofibres(n_train=200):
    from adcourse import data, metrics
    from adcourse.deep.backbones import FeatureExtractor
    from adcourse.deep.padim import PerLocationGaussian

    train = data.make_nanofibers(n_images=n_train, size=128, anomaly_rate=0.0, random_state=0).images
    t0 = time.perf_counter()
    det = PerLocationGaussian(FeatureExtractor("course", layers=STACK), sigma=4).fit(train)
    fit_s = time.perf_counter() - t0
    c, h, w = det.feature_shape_
    print(f"per-location Gaussian, course backbone {STACK}: {c} channels x {h}x{w} locations, "
          f"eps_ {det.eps_:.2e}, fit on {n_train} images {fit_s:.1f} s")
    for seed in (1, 7):
        test = data.make_nanofibers(n_images=24, size=128, anomaly_rate=0.5, random_state=seed)
        t0 = time.perf_counter()
        maps = det.anomaly_map(test.images)
        score_s = time.perf_counter() - t0
        print(f"  test seed {seed}: pixel AUROC {metrics.pixel_roc_auc(maps, test.masks):.4f}  "
              f"image AUROC {metrics.roc_auc(maps.max(axis=(1, 2)), test.labels):.3f}  "
              f"PRO {metrics.pro_auc(maps, test.masks):.3f}  (24 maps {score_s:.1f} s)")


_MEMORY_CHILD = """
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(2)
from adcourse import data
from adcourse.deep.backbones import FeatureExtractor
from adcourse.deep.padim import PerLocationGaussian
n = int(sys.argv[1])
det = PerLocationGaussian(FeatureExtractor("course", layers=%r), sigma=4)
t0 = time.perf_counter()
for k in range(n // 25):   # stream 25 freshly generated images at a time
    chunk = data.make_nanofibers(n_images=25, size=128, anomaly_rate=0.0, random_state=1000 + k).images
    det.partial_fit(chunk)
state = det.mean_.nbytes + det.scatter_.nbytes + det.chol_inv_.nbytes   # factorised here, once
print(json.dumps({"n": n, "seconds": time.perf_counter() - t0, "state_mib": state / 2**20,
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""" % (STACK,)


def padim_memory(sizes=(25, 50, 100, 200)):
    print("per-location Gaussian, peak memory of a fresh process streaming N training images:")
    for n in sizes:
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(n)], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  N = {r['n']:4d}: max RSS {r['max_rss_mib']:7.0f} MiB, model state "
              f"{r['state_mib']:6.0f} MiB, {r['seconds']:5.1f} s")


def textures():
    from adcourse import data
    from adcourse.deep.backbones import FeatureExtractor
    from adcourse.compare import compare
    from adcourse.vectors.density import GaussianDetector
    from adcourse.images.features import ExpertFeatureDetector, LocalFeatureDetector
    from adcourse.deep.padim import PerLocationGaussian
    from adcourse.images.patches import PatchDetector
    from adcourse.images.sparse import SparseCodingDetector
    from adcourse.images.subspace import KernelPCADetector, PCADetector, PCAFeatureDetector

    methods = {
        "Gaussian, raw 9x9 patches": lambda: PatchDetector(GaussianDetector(reg=1e-4), patch_size=9),
        "local statistics": lambda: LocalFeatureDetector(window=11),
        "PCA reconstruction error": lambda: PatchDetector(PCADetector(20), patch_size=9),
        "PCA energies": lambda: PatchDetector(PCAFeatureDetector(20, random_state=0), patch_size=9),
        "expert features": lambda: ExpertFeatureDetector(patch_size=15),
        "kernel PCA": lambda: PatchDetector(KernelPCADetector(20, max_samples=1000), patch_size=9, stride=2),
        "sparse coding": lambda: SparseCodingDetector(patch_size=9, n_atoms=64, lam=0.05, stride=3, n_iter=5,
                                                      n_train_patches=3000, n_val_patches=5000,
                                                      random_state=0),
        "PaDiM (course backbone)": lambda: PerLocationGaussian(FeatureExtractor("course", layers=STACK),
                                                               sigma=4),
    }
    sets = {}
    for name in ("brick", "gravel", "grass"):
        train = data.make_textures(name, n_images=60, size=64, anomaly_rate=0.0, split="train", random_state=0)
        test = data.make_textures(name, n_images=24, size=64, anomaly_rate=0.5, split="test", random_state=1)
        sets[name] = (train.images, test)
    table = compare(methods, sets)
    print("textures (60 training crops 64x64, 24 test crops): pixel AUROC")
    for name in sets:
        values = {m: table.value(m, name, "pixel_auroc") for m in methods}
        best34 = max((m for m in methods if not m.startswith("PaDiM")), key=values.get)
        print(f"  {name:7s} PaDiM {values['PaDiM (course backbone)']:.3f}   best of chapters 3-4: "
              f"{best34} {values[best34]:.3f}")


def others():
    from adcourse import data, metrics
    from adcourse.deep.backbones import FeatureExtractor
    from adcourse.deep.latent import LatentPatchDetector
    from adcourse.deep.student_teacher import StudentTeacher

    train = data.make_nanofibers(n_images=200, size=128, anomaly_rate=0.0, random_state=0).images
    test = data.make_nanofibers(n_images=24, size=128, anomaly_rate=0.5, random_state=1)
    for name, det, imgs in [
        ("latent kNN (layer1+layer2)", LatentPatchDetector(layers=("layer1", "layer2"), max_samples=5000,
                                                           sigma=4), train),
        ("student-teacher, 3 students, 2 epochs", StudentTeacher(
            teacher=FeatureExtractor("course", layers=("layer1", "layer2")), n_epochs=2, batch_size=8,
            lr=2e-3, sigma=4, random_state=0, progress=False), train[:120]),
    ]:
        t0 = time.perf_counter()
        det.fit(imgs)
        fit_s = time.perf_counter() - t0
        maps = det.anomaly_map(test.images)
        print(f"{name:40s} fit {fit_s:5.1f} s  pixel AUROC {metrics.pixel_roc_auc(maps, test.masks):.3f}  "
              f"image AUROC {metrics.roc_auc(maps.max(axis=(1, 2)), test.labels):.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the texture comparison")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    padim_nanofibres()
    padim_memory()
    if not args.quick:
        textures()
    others()


if __name__ == "__main__":
    main()
