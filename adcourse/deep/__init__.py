"""Part 3 of the lecture (chapters 5-9): deep learning for anomaly detection.

* :mod:`~adcourse.deep.training` -- the one training loop every network of the course uses;
* :mod:`~adcourse.deep.backbones` -- CNN feature extraction (course backbone, torchvision ResNets);
* :mod:`~adcourse.deep.pretrain` -- how the course backbone was trained (offline, on generated textures);
* :mod:`~adcourse.deep.latent` -- detectors in the latent space of a CNN (chapter 5);
* :mod:`~adcourse.deep.padim` -- the per-location Gaussian of CNN features (chapter 5);
* :mod:`~adcourse.deep.student_teacher` -- uninformed students (chapter 5);
* :mod:`~adcourse.deep.losses` -- SSIM, MS-SSIM, GMS, MSGMS as differentiable losses (chapters 6-7);
* :mod:`~adcourse.deep.autoencoders` -- conv / MLP encoder-decoder blocks and autoencoder detectors (chapter 6);
* :mod:`~adcourse.deep.dagmm` -- the deep autoencoding Gaussian mixture model (chapter 6);
* :mod:`~adcourse.deep.selfsup` -- self-supervision by transformations: GEOM, two-step (chapter 7);
* :mod:`~adcourse.deep.inpainting` -- self-supervision by inpainting: RIAD (chapter 7);
* :mod:`~adcourse.deep.deep_svdd` -- Deep SVDD, one-class and soft-boundary, guarded against collapse (chapter 8);
* :mod:`~adcourse.deep.gans` -- GANs: generator, AnoGAN, BiGAN / EGBAD, a fully convolutional LS-GAN (chapter 9);
* :mod:`~adcourse.deep.vae` -- a variational autoencoder detector, ELBO and reconstruction probability (chapter 9).

Torch is imported here: ``import adcourse`` alone stays light.
"""

from adcourse.deep.autoencoders import (
    AutoencoderDetector,
    AutoencoderGMMDetector,
    ConvAutoencoder,
    ConvDecoder,
    ConvEncoder,
    MLPAutoencoder,
)
from adcourse.deep.backbones import FeatureExtractor
from adcourse.deep.dagmm import DAGMM
from adcourse.deep.deep_svdd import DeepSVDD, deep_svdd_network
from adcourse.deep.gans import GAN, AnoGAN, BiGANDetector, FCGANDetector
from adcourse.deep.inpainting import InpaintingDetector
from adcourse.deep.latent import LatentImageDetector, LatentPatchDetector
from adcourse.deep.losses import cw_ssim, gms, ms_ssim, msgms, reconstruction_loss, ssim
from adcourse.deep.padim import PerLocationGaussian
from adcourse.deep.selfsup import GeomDetector, TwoStepSelfSupervised
from adcourse.deep.student_teacher import StudentTeacher
from adcourse.deep.training import History, fit_adversarial, fit_model, predict
from adcourse.deep.vae import VAEDetector

__all__ = [
    "AutoencoderDetector",
    "AutoencoderGMMDetector",
    "DAGMM",
    "ConvAutoencoder",
    "ConvDecoder",
    "ConvEncoder",
    "MLPAutoencoder",
    "ssim",
    "ms_ssim",
    "gms",
    "msgms",
    "cw_ssim",
    "reconstruction_loss",
    "FeatureExtractor",
    "LatentImageDetector",
    "LatentPatchDetector",
    "PerLocationGaussian",
    "StudentTeacher",
    "GeomDetector",
    "TwoStepSelfSupervised",
    "InpaintingDetector",
    "DeepSVDD",
    "deep_svdd_network",
    "GAN",
    "AnoGAN",
    "BiGANDetector",
    "FCGANDetector",
    "VAEDetector",
    "History",
    "fit_model",
    "fit_adversarial",
    "predict",
]
