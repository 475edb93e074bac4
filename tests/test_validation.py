"""adcourse.validation: the checks every detector's input goes through."""

import numpy as np
import pytest

from adcourse.validation import check_images


def test_check_images_requires_the_given_image_shape():
    images = np.zeros((2, 8, 8))
    assert check_images(images, shape=(8, 8)).shape == (2, 8, 8)
    with pytest.raises(ValueError, match=r"test must have the shape of the training images \(8, 9\), got \(8, 8\)"):
        check_images(images, "test", shape=(8, 9))
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        check_images(images, shape=(1, 8, 8))  # (n, H, W) is not (n, 1, H, W)
