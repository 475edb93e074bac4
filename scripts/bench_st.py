"""How well the student-teacher of chapter 5 is trained: figures, not tests.

The chapter's setup: 128-px nanofibres, the first 80 normal training images (60 for the
students, 20 to validate), the course backbone's layer1 + layer2 as the teacher, sigma 4.
For each recipe and each seed of the students (random_state 0, 1, 2) it prints the final
training and validation losses (mean squared error to the standardised teacher: 1 = a student
that predicts the mean), the image and pixel AUROC and the PRO on the chapter's test set
(24 images, seed 1), the pixel AUROC of e, v and e + v on sets with one defect type each
(24 images, seed 11), and the fit time (process CPU seconds with one thread, and wall time).

Recipes:

* ``chapter``  -- the chapter's call before the new recipe: whole images, 2 epochs of
  batch 8 (16 steps per student), lr 2e-3;
* ``light``    -- the new recipe with 5 epochs (320 steps of 4 crops of 64 px);
* ``default``  -- the new defaults (10 epochs: 640 steps of 4 crops of 64 px).

Usage: python scripts/bench_st.py [--recipes chapter,light,default] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

RECIPES = {
    "chapter": {"crop_size": None, "n_epochs": 2, "batch_size": 8, "lr": 2e-3},
    "light": {"n_epochs": 5},
    "default": {},
}


def main():
    import torch

    from adcourse import data, metrics
    from adcourse.decision import upsample_maps
    from adcourse.deep.backbones import FeatureExtractor
    from adcourse.deep.pretrain import load_course_backbone
    from adcourse.deep.student_teacher import StudentTeacher

    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = data.make_nanofibers(n_images=80, size=128, anomaly_rate=0.0, random_state=0)
    test = data.make_nanofibers(n_images=24, size=128, anomaly_rate=0.5, random_state=1)
    by_type = {t: data.make_nanofibers(n_images=24, size=128, anomaly_rate=0.5, defect_types=(t,),
                                       random_state=11) for t in ("film", "bead", "clump")}
    backbone = load_course_backbone()
    for name in args.recipes.split(","):
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            st = StudentTeacher(teacher=FeatureExtractor(backbone, layers=("layer1", "layer2")), sigma=4,
                                random_state=seed, progress=False, **RECIPES[name])
            cpu, wall = time.process_time(), time.perf_counter()
            st.fit(train.images)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            maps = st.anomaly_map(test.images)
            row = {
                "loss": np.mean([h.loss[-1] for h in st.histories_]),
                "val": np.mean([h.val_loss[-1] for h in st.histories_]),
                "image": metrics.roc_auc(maps.max(axis=(1, 2)), test.labels),
                "pixel": metrics.pixel_roc_auc(maps, test.masks),
                "PRO": metrics.pro_auc(maps, test.masks),
                "cpu s": cpu, "wall s": wall,
            }
            for t, ds in by_type.items():
                e, v = st.normalized_scores(ds.images)
                for stat, m in (("e", e), ("v", v), ("e+v", e + v)):
                    row[f"{t} {stat}"] = metrics.pixel_roc_auc(upsample_maps(m, ds.images.shape[-2:], 4), ds.masks)
            rows.append(row)
            curve = " ".join(f"{x:.3f}" for x in st.histories_[0].loss)
            print(f"{name:8s} seed {seed}: {st.histories_[0].n_steps} steps/student, student 1 loss per epoch: {curve}")
        print(f"== {name}: mean ± sd over {len(rows)} seeds")
        for key in rows[0]:
            vals = np.array([r[key] for r in rows])
            print(f"   {key:10s} {vals.mean():7.3f} ± {vals.std(ddof=1) if len(vals) > 1 else 0:.3f}")


if __name__ == "__main__":
    main()
