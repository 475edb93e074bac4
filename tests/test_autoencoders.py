"""Autoencoder building blocks (shapes, options) and the autoencoder detectors."""

import numpy as np
import pytest
import torch

from adcourse.deep.autoencoders import (
    ConvAutoencoder,
    ConvDecoder,
    ConvEncoder,
    MLPAutoencoder,
    conv_block,
    mlp,
)
from adcourse.deep.training import seeded

torch.set_num_threads(1)


# --------------------------------------------------------------------------- #
# building blocks
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("size", [(28, 28), (31, 17), (64, 48), (9, 9)])
@pytest.mark.parametrize("skips", [False, True])
def test_conv_autoencoder_any_size(size, skips):
    with seeded(0):
        ae = ConvAutoencoder(widths=(4, 8, 8), strides=(1, 2, 2), latent_channels=3, skips=skips)
    x = torch.rand(2, 1, *size)
    out = ae(x)
    assert out.shape == x.shape
    assert float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1  # sigmoid output
    code = ae.encode(x)
    assert code.shape == (2, 3, -(-size[0] // 4), -(-size[1] // 4))


def test_bottleneck_set_by_channels_and_strides():
    enc = ConvEncoder(in_channels=3, widths=(8, 16, 32), strides=(2, 2, 1), latent_channels=5)
    assert enc(torch.rand(1, 3, 32, 32)).shape == (1, 5, 8, 8)
    assert enc.stage_sizes(33, 20) == [(33, 20), (17, 10), (9, 5), (9, 5)]
    assert [f.shape[1] for f in enc.features(torch.rand(1, 3, 32, 32))] == [8, 16, 32]
    assert ConvEncoder(widths=(8,), latent_channels=None)(torch.rand(1, 1, 8, 8)).shape == (1, 8, 4, 4)


def test_vector_code_bias_free_and_non_affine():
    with seeded(0):
        ae = ConvAutoencoder(widths=(8, 16), latent_dim=2, image_size=28, bias=False, affine=False)
    x = torch.rand(6, 1, 28, 28)
    assert ae.encode(x).shape == (6, 2) and ae(x).shape == x.shape
    names = [n for n, _ in ae.encoder.named_parameters()]
    assert names and not any(n.endswith("bias") for n in names)
    bns = [m for m in ae.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.weight is None and m.bias is None for m in bns)  # affine=False: no scale/shift
    # an encoder without biases and without affine batch norm maps 0 to 0 (in eval mode, centred stats)
    enc = ae.encoder.eval()
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.zero_()
    assert torch.allclose(enc(torch.zeros(1, 1, 28, 28)), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="image_size"):
        ConvEncoder(latent_dim=2)
    with pytest.raises(ValueError, match="linear bottleneck"):
        ae.encode(torch.rand(1, 1, 32, 32))


def test_blocks_options():
    b = conv_block(1, 4, stride=2, batch_norm=False, bias=False)
    assert len(b) == 2 and b[0].bias is None and b[0].stride == (2, 2)
    assert b(torch.rand(1, 1, 9, 9)).shape == (1, 4, 5, 5)
    net = mlp((5, 7, 3), dropout=0.5)
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "Dropout", "Linear"]
    net = mlp((5, 7, 3), batch_norm=True, last_activation=True, activation="relu")
    assert [type(m).__name__ for m in net] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU"]
    ae = MLPAutoencoder(12, hidden=(6,), latent_dim=3, output="sigmoid")
    assert ae(torch.rand(4, 12)).shape == (4, 12) and ae.encode(torch.rand(4, 12)).shape == (4, 3)
    dec = ConvDecoder(widths=(4, 8), latent_channels=2, skips=True)
    with pytest.raises(ValueError, match="feature maps"):
        dec(torch.rand(1, 2, 4, 4), [(16, 16), (8, 8)])


def test_seeded_construction_is_reproducible():
    def build():
        with seeded(3):
            return ConvAutoencoder(widths=(4, 8))

    a, b = build(), build()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"widths": ()}, "widths"),
        ({"widths": (8, 0)}, "widths"),
        ({"strides": (2,)}, "strides must have"),
        ({"latent_channels": 0}, "latent_channels"),
        ({"output": "tanh"}, "output"),
        ({"in_channels": 1.5}, "in_channels"),
    ],
)
def test_bad_architecture(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvAutoencoder(**{"widths": (8, 16), **kwargs})
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        ConvEncoder(widths=(4,))(torch.rand(4, 4))


def test_mlp_checks():
    with pytest.raises(ValueError, match="sizes"):
        mlp((5,))
    with pytest.raises(ValueError, match="activation"):
        mlp((5, 2), activation="gelu")
    with pytest.raises(ValueError, match="dropout"):
        mlp((5, 2), dropout=1.0)
    assert np.isfinite(MLPAutoencoder(3)(torch.rand(2, 3)).detach().numpy()).all()
