"""Figures of chapter 7's inpainting detector (RIAD), not tests: how its settings were chosen.

Every setting is chosen on VALIDATION images (synthetic defects, drawn with seeds 50 + s, disjoint
from the test images 100 + s of the chapter's table); the test figures are printed next to them so
that the choice can be checked, never used to make it.

1. Settings (``--sweep``): for each candidate configuration of ``InpaintingDetector`` (training:
   widths, steps, batch, schedule, tile sizes, crops), over 3 data seeds of the chapter's nanofibre
   protocol (20 normal 64 x 64 training images; 12 validation and 16 test images, half with
   defects): fit time, and for each map (1 - MSGMS, 1 - SSIM, the loss) and smoothing sigma the
   validation and test pixel AUROC (mean ± sd over the seeds). The map of a configuration is the
   one with the best mean validation AUROC; the configuration is the one whose chosen map is best
   on validation among those that fit the chapter's budget (fit CPU seconds at most ~1.5 x OLD's).
   Each line also gives the per-seed test difference to chapter 6's autoencoder.
2. The chapter's settings (default): the same figures for ``BOOK`` (and the former ``OLD``), with
   chapter 6's autoencoder (the chapter's ``AE``, its sigma chosen on the same validation images) on
   the same images, on nanofibres and brick (brick's validation crops come from the training half).
3. ``--curve``: the chapter's settings with 2 ... 16 epochs (validation / test AUROC and fit time).

Usage: python scripts/bench_inpainting.py [--sweep] [--curve] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

#: the chapter's training settings (book/07-self-supervision.md: INP; the map and sigma are chosen there on
#: validation images), chosen by this script's --sweep: the best mean validation AUROC among the candidates
#: that cost at most ~1.5 times the former settings (OLD) to fit
BOOK = dict(tile_sizes=(2,), crop_size=24, n_crops=448, n_epochs=4, batch_size=16, progress=False)
#: the chapter's settings before the sweep (session 4)
OLD = dict(tile_sizes=(2, 4, 8), crop_size=32, n_crops=256, n_epochs=4, batch_size=16, progress=False)
#: chapter 6's autoencoder as the chapter trains it (its sigma is chosen on validation images too)
AE = dict(n_crops=256, n_epochs=10, batch_size=32, progress=False)
SCORES = ("msgms", "ssim", "loss")
SIGMAS = (2.0, 4.0, 6.0, 8.0)
SEEDS = (0, 1, 2)

_C24 = dict(crop_size=24, n_crops=448)
#: candidate configurations of the sweep (changes from OLD; widths (16, 32, 64) unless said)
CANDIDATES = {
    "old: tiles 2-4-8, crops 32, 4 ep": {},
    "old, 12 ep": dict(n_epochs=12),
    "old, widths 8-16-32, 12 ep": dict(widths=(8, 16, 32), n_epochs=12),
    "old, 8-16-32, 12 ep, cosine 3e-3": dict(widths=(8, 16, 32), n_epochs=12, lr=3e-3, schedule="cosine"),
    "old, 8-16-32, 12 ep, batch 8": dict(widths=(8, 16, 32), n_epochs=12, batch_size=8),
    "old, batch 8": dict(batch_size=8),
    "old, batch 4": dict(batch_size=4),
    "old, batch 8, lr 3e-3": dict(batch_size=8, lr=3e-3),
    "old, batch 8, 8 ep": dict(batch_size=8, n_epochs=8),
    "old, batch 8, 2 masks": dict(batch_size=8, n_masks=2),
    "old, batch 8, tiles 4-8-16": dict(batch_size=8, tile_sizes=(4, 8, 16)),
    "crops 24, tiles 2-4-8": dict(_C24),
    "crops 24, tiles 2-4": dict(_C24, tile_sizes=(2, 4)),
    "crops 24, tiles 2-4, 4 mask sets": dict(_C24, tile_sizes=(2, 4), n_mask_sets=4),
    "crops 24, tiles 2 (the chapter)": dict(_C24, tile_sizes=(2,)),
}


def dataset(name, seed):
    """Training images, validation set and test set of one seed (the chapter's protocol)."""
    from adcourse import data

    if name == "nanofibres":
        return (data.make_nanofibers(n_images=20, size=64, anomaly_rate=0.0, random_state=seed).images,
                data.make_nanofibers(n_images=12, size=64, anomaly_rate=0.5, random_state=50 + seed),
                data.make_nanofibers(n_images=16, size=64, anomaly_rate=0.5, random_state=100 + seed))
    return (data.make_textures("brick", n_images=20, size=64, anomaly_rate=0.0, split="train",
                               random_state=seed).images,
            data.make_textures("brick", n_images=12, size=64, anomaly_rate=0.5, split="train",
                               random_state=50 + seed),          # the test split is the bottom half
            data.make_textures("brick", n_images=16, size=64, anomaly_rate=0.5, split="test",
                               random_state=100 + seed))


def measure(settings, name="nanofibres", seeds=SEEDS, scores=SCORES, sigmas=SIGMAS, base=BOOK):
    """{(score, sigma): (val AUROCs, test AUROCs)} over the seeds, and the fit times."""
    from adcourse import metrics
    from adcourse.decision import smooth_maps
    from adcourse.deep.inpainting import InpaintingDetector

    out, seconds = {}, []
    for seed in seeds:
        train, val, test = dataset(name, seed)
        t0 = time.process_time()
        det = InpaintingDetector(**{**base, **settings}, random_state=seed).fit(train)
        seconds.append(time.process_time() - t0)
        for score in scores:
            det.set_params(score=score)
            raw = {part: det.tile_maps(s.images).mean(axis=0) for part, s in (("val", val), ("test", test))}
            for sigma in sigmas:
                v, t = out.setdefault((score, sigma), ([], []))
                v.append(metrics.pixel_roc_auc(smooth_maps(raw["val"], sigma), val.masks))
                t.append(metrics.pixel_roc_auc(smooth_maps(raw["test"], sigma), test.masks))
    return out, seconds


def measure_ae(name="nanofibres", seeds=SEEDS, sigmas=SIGMAS):
    """Chapter 6's autoencoder (the chapter's AE) on the same images: {sigma: (val, test)}, CPU seconds."""
    from adcourse import metrics
    from adcourse.deep.autoencoders import AutoencoderDetector

    out, seconds = {}, []
    for seed in seeds:
        train, val, test = dataset(name, seed)
        t0 = time.process_time()
        ae = AutoencoderDetector(**AE, random_state=seed).fit(train)
        seconds.append(time.process_time() - t0)
        for sigma in sigmas:
            v, t = out.setdefault(("ae", sigma), ([], []))
            ae.set_params(sigma=sigma)
            v.append(metrics.pixel_roc_auc(ae.anomaly_map(val.images), val.masks))
            t.append(metrics.pixel_roc_auc(ae.anomaly_map(test.images), test.masks))
    return out, seconds


def _ms(values):
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def report(label, out, seconds, reference=None):
    """Print a configuration's figures (its map chosen on validation); with ``reference`` = (val, test)
    of the autoencoder, the per-seed test differences. Returns (map, val, test)."""
    best = max(out, key=lambda key: np.mean(out[key][0]))
    v, t = out[best]
    line = (f"{label:30s} fit {np.mean(seconds):4.1f} cpu-s | val-chosen {best[0]:5s} sigma {best[1]:.0f} | "
            f"val {_ms(v)} | test {_ms(t)}")
    if reference is not None:
        d = np.asarray(t) - np.asarray(reference[1])
        line += f" | test - AE {_ms(d)} ({'+' if (d > 0).all() and d.mean() > d.std(ddof=1) else 'not'} separated)"
    print(line)
    return best, v, t


def sweep(candidates=CANDIDATES):
    print("== settings sweep, nanofibres, 3 seeds (pixel AUROC, mean ± sd; fit CPU seconds, 1 process) ==")
    ae_out, ae_seconds = measure_ae()
    _, *reference = report("autoencoder (ch. 6)", ae_out, ae_seconds)
    for label, settings in candidates.items():
        out, seconds = measure(settings, base=OLD)
        report(label, out, seconds, reference)
        for (score, sigma), (v, t) in out.items():
            print(f"    {score:5s} sigma {sigma:.0f}: val {_ms(v)}  test {_ms(t)}")


def curve(epochs=(2, 4, 8, 12, 16)):
    print("== epochs curve of the chapter's settings, nanofibres, 3 seeds: the map chosen on validation ==")
    ae_out, ae_seconds = measure_ae()
    _, *reference = report("autoencoder (ch. 6)", ae_out, ae_seconds)
    for n in epochs:
        out, seconds = measure({"n_epochs": n})
        report(f"{n:2d} epochs", out, seconds, reference)


def chapter():
    """The chapter's settings (and the former ones) against chapter 6's autoencoder, nanofibres and brick."""
    print("== the chapter's settings vs chapter 6's autoencoder (pixel AUROC, mean ± sd, 3 seeds) ==")
    for name in ("nanofibres", "brick"):
        ae_out, ae_seconds = measure_ae(name)
        _, *reference = report(f"autoencoder (ch. 6), {name}", ae_out, ae_seconds)
        for label, base in (("inpainting, former settings", OLD), ("inpainting, the chapter's", BOOK)):
            out, seconds = measure({}, name, base=base)
            report(f"{label}, {name}", out, seconds, reference)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="the candidate configurations")
    parser.add_argument("--curve", action="store_true", help="validation / test AUROC against epochs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the book runs with 2)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.sweep:
        sweep()
    if args.curve:
        curve()
    if not (args.sweep or args.curve):
        chapter()
    print(f"({time.perf_counter() - t0:.0f} s, {args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
