"""Benchmark of adcourse.images.sparse: our ADMM and dictionary learning against scikit-learn.

Usage::

    python scripts/bench_sparse.py            # BLAS threads as the environment sets them
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/bench_sparse.py

Prints, on 15x15 mean-subtracted patches of synthetic nanofibre images:

1. sparse coding of **all** the stride-1 patches of one 256x256 image (58 564 patches)
   with our batched ADMM (float32 as the detector runs it, and float64), against
   scikit-learn's ``SparseCoder`` (``lasso_lars`` and ``lasso_cd``) timed on a subset
   and extrapolated linearly to all patches (it codes patches independently, so its
   time is linear in their number); objectives side by side on that subset;
2. dictionary learning: ours (:func:`adcourse.images.sparse.learn_dictionary`) against
   ``MiniBatchDictionaryLearning``, time and objective on held-out patches;
3. the whole :class:`SparseCodingDetector`: fit, and score map of a 256x256 image.

Both sides use the same objective: ½||D a - s||² + lam ||a||_1 (scikit-learn's
``transform_alpha`` and ``alpha`` are our ``lam``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.decomposition import MiniBatchDictionaryLearning, SparseCoder

from adcourse.data import make_nanofibers
from adcourse.images.patches import extract_patches
from adcourse.images.sparse import SparseCodingDetector, bpdn_admm, bpdn_objective, learn_dictionary


def _columns(images, size):
    P = extract_patches(images, size).reshape(-1, size * size)
    P = P - P.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(P.T)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-atoms", type=int, default=32)
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--patch", type=int, default=15)
    parser.add_argument("--sklearn-subset", type=int, default=2000,
                        help="patches scikit-learn's SparseCoder is timed on (then extrapolated)")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_info

        threads = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    except ImportError:  # pragma: no cover
        threads = "?"
    print(f"cores: {os.cpu_count()}, BLAS/OpenMP threads: {threads}")
    lam, k, p = args.lam, args.n_atoms, args.patch

    normal = make_nanofibers(n_images=3, size=args.size, anomaly_rate=0.0, random_state=0).images
    rng = np.random.default_rng(0)
    S_pool = _columns(normal[:2], p)
    idx = rng.permutation(S_pool.shape[1])
    S_train, S_held = S_pool[:, idx[:5000]], S_pool[:, idx[5000:10000]]
    S_image = _columns(normal[2:], p)
    N = S_image.shape[1]
    print(f"patches {p}x{p} (d = {p * p}), {k} atoms, lam = {lam} (½ convention)")

    # ------------------------------------------------------------------ DL
    print("\n== dictionary learning on 5000 normal patches ==")
    result, t_ours = _timed(learn_dictionary, S_train, k, lam, n_iter=10, random_state=0)
    D = result.dictionary

    def held_out(D):
        A = bpdn_admm(D, S_held, lam, tol_rel=1e-5, tol_abs=1e-8, max_iter=3000)
        return bpdn_objective(D, S_held, A, lam).mean()

    print(f"ours (batch BCD, 10 iterations):   {t_ours:6.2f} s   objective train "
          f"{result.objective[0]:.5f} -> {result.objective[-1]:.5f}, held-out {held_out(D):.5f}")
    # (fit_algorithm="lars" reaches the same dictionary about 25 times slower)
    for algo in ("cd",):
        sk, t_sk = _timed(
            MiniBatchDictionaryLearning(n_components=k, alpha=lam, max_iter=10, batch_size=256,
                                        fit_algorithm=algo, random_state=0).fit, S_train.T
        )
        print(f"sklearn MiniBatchDL ({algo:4s}, {sk.n_iter_:.0f} epochs): {t_sk:6.2f} s   "
              f"held-out {held_out(sk.components_.T):.5f}")

    # ------------------------------------------------------------------ coding
    print(f"\n== sparse coding of all {N} patches of a {args.size}x{args.size} image ==")
    runs = {}
    for name, kw in (
        ("ADMM float32, tol_rel 1e-3 (detector)", dict(dtype=np.float32, tol_rel=1e-3, tol_abs=1e-5)),
        ("ADMM float64, tol_rel 1e-4", dict(dtype=np.float64, tol_rel=1e-4, tol_abs=1e-6)),
    ):
        (A, info), t = _timed(bpdn_admm, D, S_image, lam, return_info=True, **kw)
        runs[name] = A
        obj = bpdn_objective(D, S_image, A, lam).mean()
        print(f"{name:40s} {t:6.2f} s  ({info.n_iter} iterations max, mean objective {obj:.6f})")

    m = min(args.sklearn_subset, N)
    sub = np.random.default_rng(1).choice(N, m, replace=False)
    S_sub = S_image[:, sub]
    print(f"\nscikit-learn SparseCoder on {m} of the patches (time extrapolated x{N / m:.1f}):")
    ref_obj = None
    for algo in ("lasso_lars", "lasso_cd"):
        coder = SparseCoder(dictionary=D.T, transform_algorithm=algo, transform_alpha=lam,
                            transform_max_iter=5000)
        codes, t = _timed(coder.transform, S_sub.T)
        obj = bpdn_objective(D, S_sub, codes.T, lam).mean()
        ref_obj = obj if ref_obj is None else min(ref_obj, obj)
        print(f"  {algo:12s} {t:6.2f} s on {m} -> ~{t * N / m:7.1f} s for all; "
              f"mean objective on the subset {obj:.7f}")
    for name, A in runs.items():
        obj = bpdn_objective(D, S_sub, A[:, sub], lam).mean()
        print(f"  ours: {name:34s} mean objective on the subset {obj:.7f} "
              f"(relative gap {(obj - ref_obj) / ref_obj:+.1e})")

    # ------------------------------------------------------------------ detector
    print("\n== SparseCodingDetector (defaults) ==")
    train = make_nanofibers(n_images=4, size=args.size, anomaly_rate=0.0, random_state=1).images
    det, t_fit = _timed(SparseCodingDetector(patch_size=p, n_atoms=k, lam=lam).fit, train)
    maps, t_map = _timed(det.anomaly_map, normal[2:])
    print(f"fit on 4 images {args.size}x{args.size}: {t_fit:.2f} s; "
          f"score map of one {args.size}x{args.size} image (stride 1): {t_map:.2f} s")


if __name__ == "__main__":
    main()
