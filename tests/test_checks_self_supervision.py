"""Exercise 7 (self-supervision): the checks of adcourse.course.checks.self_supervision pass the
reference solution everywhere and name the typical mistakes."""

from pathlib import Path

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import dirichlet
from test_checks import fails, passes_everywhere, solution_functions  # tests/ is on sys.path

from adcourse.course import checks
from adcourse.course.checks import self_supervision as ex7

EX7 = "07-self-supervision"
SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / f"{EX7}.ipynb"


@pytest.fixture(scope="module")
def ref7():
    """The reference functions of exercise 7, from its solution notebook."""
    return solution_functions(SOLUTION)


def test_exercise_7_registry():
    tasks = checks.TASKS[EX7]
    assert list(tasks) == [f"task-{i}" for i in range(1, 6)]
    assert all(f.task == t for t, f in tasks.items())
    assert all(f.allow == ex7.ALLOW[t] for t, f in tasks.items())


@pytest.mark.parametrize("task", [f"task-{i}" for i in range(1, 6)])
def test_exercise_7_reference_passes(ref7, capsys, task):
    passes_everywhere(checks.TASKS[EX7][task], ref7, capsys)


def test_the_references_of_the_judges_are_the_course_functions(ref7):
    # the judges compare with adcourse; adcourse agrees with scipy and with the solution
    from adcourse.deep.selfsup import dirichlet_log_pdf

    rng = np.random.default_rng(0)
    eta = rng.uniform(0.3, 4.0, size=5)
    p = rng.dirichlet(np.ones(5), size=7)
    expected = [dirichlet.logpdf(row, eta) for row in p]
    np.testing.assert_allclose(dirichlet_log_pdf(np.log(p), eta), expected, rtol=1e-10)
    np.testing.assert_allclose(ref7["dirichlet_log_pdf"](p, eta), expected, rtol=1e-10)
    # the masks given to task 5 partition the image into whole tiles, as task 4 asks
    M = ex7._reference_masks((8, 10), 4, 3, seed=3)
    assert M.shape == (3, 8, 10) and np.all((1 - M).sum(axis=0) == 1)


# ---- task 1 ---------------------------------------------------------------------------


def _tr_new(mode):
    def build_tr_new(images, transformations):
        T = len(transformations)
        if mode == "by_transformation":
            X = np.stack([t(s) for t in transformations for s in images])
        else:
            X = np.stack([t(s) for s in images for t in transformations])
        y = np.tile(np.arange(T), len(images))
        if mode == "from_one":
            y = y + 1
        if mode == "by_transformation":
            y = np.repeat(np.arange(T), len(images))
        if mode == "no_tuple":
            return X
        return X, y
    return build_tr_new


@pytest.mark.parametrize("mode, pattern", [
    ("by_transformation", ["labels y", "rows go image by image"]),
    ("from_one", "count from 0"),
    ("no_tuple", "pair"),
])
def test_ex7_task1_mistakes(mode, pattern):
    fails(checks.check_build_tr_new, _tr_new(mode), match=pattern)


def test_ex7_task1_images_in_the_wrong_order_are_named():
    def build_tr_new(images, transformations):  # right labels, images looped the wrong way
        T = len(transformations)
        return np.stack([t(s) for t in transformations for s in images]), np.tile(np.arange(T), len(images))
    fails(checks.check_build_tr_new, build_tr_new, match=["images X", "transformations first"])


# ---- task 2 ---------------------------------------------------------------------------


def _simple(mode):
    def simple_score(posteriors):
        p = np.asarray(posteriors, dtype=float)
        diag = np.einsum("sii->si", p)
        return {"mean_right": diag.mean(axis=1), "max": 1 - p.max(axis=2).mean(axis=1),
                "sum": 1 - diag.sum(axis=1), "all": 1 - p.mean(axis=(1, 2))}[mode]
    return simple_score


@pytest.mark.parametrize("mode, pattern", [
    ("mean_right", "1 minus it"),
    ("max", "RIGHT"),
    ("sum", "divide by T"),
    ("all", "only the\\s+diagonal"),
])
def test_ex7_task2_mistakes(mode, pattern):
    fails(checks.check_simple_score, _simple(mode), match=["wrong scores", pattern])


# ---- task 3 ---------------------------------------------------------------------------


def _log_pdf(mode):
    def dirichlet_log_pdf(p, eta):
        p, eta = np.asarray(p, float), np.asarray(eta, float)
        const = gammaln(eta.sum()) - gammaln(eta).sum()
        data = ((eta - 1) * np.log(p)).sum(axis=1)
        return {"exponent": const + (eta * np.log(p)).sum(axis=1), "no_const": data,
                "sign": -const + data, "density": np.exp(const + data)}[mode]
    return dirichlet_log_pdf


@pytest.mark.parametrize("mode, pattern", [
    ("exponent", "eta_j - 1"),
    ("no_const", "normalising constant"),
    ("sign", "wrong sign"),
    ("density", "not its logarithm"),
])
def test_ex7_task3_mistakes(mode, pattern):
    fails(checks.check_dirichlet_log_pdf, _log_pdf(mode), match=["wrong log-densities", pattern])


# ---- task 4 ---------------------------------------------------------------------------


def _masks(mode):
    def tile_masks(shape, tile_size, n_masks, seed):
        H, W = shape
        rows, cols = -(-H // tile_size), -(-W // tile_size)
        n = rows * cols
        rng = np.random.default_rng(None if mode == "global" else 0 if mode == "fixed" else seed)
        order = rng.permutation(n)
        owner = np.empty(n, int)
        owner[order] = np.arange(n) * n_masks // n
        if mode == "unbalanced":
            owner = np.where(np.arange(n) < n // 2, 0, owner)
        grid = owner.reshape(rows, cols)
        if mode == "pixels":  # every pixel dealt on its own, not whole tiles
            pix = np.random.default_rng(seed).permutation(H * W) * n_masks // (H * W)
            owner_px = pix.reshape(H, W)
        else:
            owner_px = np.repeat(np.repeat(grid, tile_size, 0), tile_size, 1)[:H, :W]
        M = np.stack([(owner_px != k).astype(float) for k in range(n_masks)])
        if mode == "inverted":
            M = 1 - M
        return M
    return tile_masks


@pytest.mark.parametrize("mode, pattern", [
    ("inverted", "hidden by 2 masks"),
    ("pixels", "not hidden as a whole"),
    ("unbalanced", "equal numbers"),
    ("global", "same arguments"),
    ("fixed", "gave the same masks"),
])
def test_ex7_task4_mistakes(mode, pattern):
    fails(checks.check_tile_masks, _masks(mode), match=pattern)


def test_ex7_task4_any_fair_random_partition_passes(capsys):
    def tile_masks(shape, tile_size, n_masks, seed):  # another algorithm: round-robin over a shuffle
        H, W = shape
        rows, cols = -(-H // tile_size), -(-W // tile_size)
        order = np.random.default_rng(seed).permutation(rows * cols)
        owner = np.empty(rows * cols, int)
        owner[order] = np.arange(rows * cols) % n_masks
        px = np.kron(owner.reshape(rows, cols), np.ones((tile_size, tile_size), int))[:H, :W]
        return np.stack([(px != k).astype(float) for k in range(n_masks)])
    checks.check_tile_masks(tile_masks)
    assert "✓ Task 4 passed" in capsys.readouterr().out


# ---- task 5 ---------------------------------------------------------------------------


def _inpaint(mode):
    def inpaint(f, image, masks):
        s = np.asarray(image, float)
        parts = {"visible": [f(s * m) * m for m in masks], "unmasked": [f(s) * (1 - m) for m in masks],
                 "mean": [f(s * m) * (1 - m) / len(masks) for m in masks],
                 "plus_image": [f(s * m) * (1 - m) for m in masks]}[mode]
        out = sum(parts)
        return out + s if mode == "plus_image" else out
    return inpaint


@pytest.mark.parametrize("mode, pattern", [
    ("visible", "VISIBLE"),
    ("unmasked", "masked image"),
    ("mean", "SUM the kept parts"),
    ("plus_image", "added the visible pixels"),
])
def test_ex7_task5_mistakes(mode, pattern):
    fails(checks.check_inpaint, _inpaint(mode), match=["wrong inpainted image", pattern])


def test_ex7_task5_reference_is_the_course_inpaint():
    """The judge's formula is adcourse.deep.inpainting.inpaint's, on a network given as a function."""
    import torch

    from adcourse.deep.inpainting import inpaint

    masks = ex7._reference_masks((8, 8), 2, 3, seed=1)
    image = np.random.default_rng(0).random((8, 8))
    net = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    f = lambda s: net(torch.as_tensor(s)[None, None])[0, 0].detach().numpy()  # noqa: E731
    with torch.no_grad():
        got = inpaint(net, torch.as_tensor(image)[None, None], torch.as_tensor(masks)[None])[0, 0].numpy()
    np.testing.assert_allclose(got, sum(f(image * m) * (1 - m) for m in masks), rtol=1e-12)
