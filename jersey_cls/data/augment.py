"""The training augmentation and the evaluation transform: PIL RGB image in, uint8 CHW tensor out. The model
normalises, on the device."""

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from jersey_cls.messages import JerseyInputError


class RandomGaussianNoise(v2.Transform):
    """Additive Gaussian noise with sigma drawn per image on the 0-255 scale.

    torchvision's GaussianNoise takes one fixed sigma and float input; broadcast crops need a range on uint8.
    """

    def __init__(self, sigma: tuple[float, float] = (5.0, 30.0)) -> None:
        super().__init__()
        self.sigma = sigma

    def transform(self, inpt, params):
        if not isinstance(inpt, torch.Tensor) or inpt.dtype != torch.uint8:
            return inpt
        sigma = float(torch.empty(1).uniform_(*self.sigma))
        noisy = inpt.float() + torch.randn(inpt.shape) * sigma
        return noisy.round_().clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class Augment:
    """The training augmentation: the published ResNet18 recipe's at strength 1 (resized crop, affine,
    perspective, colour, blur, and JPEG, noise and erasing at the probabilities below); every magnitude and
    probability scales with the strength, down to none at 0. No horizontal flip: a mirrored digit is another digit.

    Args:
        strength: How much of the recipe's augmentation, from 0 (none) to 1.
        jpeg_quality: JPEG re-compression quality range.
        jpeg_p: Probability of JPEG re-compression per crop, at strength 1.
        noise_sigma: Gaussian noise sigma range on the 0-255 scale.
        noise_p: Probability of Gaussian noise per crop, at strength 1.
        erasing_p: Probability of random erasing per crop, at strength 1.
    """

    strength: float = 1.0
    jpeg_quality: tuple[int, int] = (15, 70)
    jpeg_p: float = 0.6
    noise_sigma: tuple[float, float] = (5.0, 30.0)
    noise_p: float = 0.5
    erasing_p: float = 0.2

    def __post_init__(self) -> None:
        problems = [
            f"--data.augment.{name} {getattr(self, name)}: give a value from 0 to 1"
            for name in ("strength", "jpeg_p", "noise_p", "erasing_p")
            if not 0 <= getattr(self, name) <= 1
        ]
        problems += [f"--data.augment.{name} {list(value)}: give [low, high] with {low} <= low <= high <= {high}"
                     for name, value, low, high in (("jpeg_quality", self.jpeg_quality, 1, 100),
                                                    ("noise_sigma", self.noise_sigma, 0, 255))
                     if not low <= value[0] <= value[1] <= high]  # fmt: skip
        if problems:
            raise JerseyInputError("\n".join(problems))


def train_transform(image_size: int, augment: Augment) -> v2.Compose:
    """``augment`` as torchvision transforms: a PIL crop in, a uint8 tensor of ``image_size`` out."""
    s = augment.strength
    if s == 0:
        return eval_transform(image_size)
    # JPEG and noise act on the crop at its own resolution, before resizing, as broadcast damage does; applied
    # after a resize to 32 px, JPEG's 8x8 blocks and sigma-30 noise erase the digits and training stalls.
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomApply([v2.JPEG(quality=augment.jpeg_quality)], p=augment.jpeg_p * s),
            v2.RandomApply([RandomGaussianNoise(augment.noise_sigma)], p=augment.noise_p * s),
            v2.RandomResizedCrop(image_size, scale=(1 - 0.3 * s, 1.0), ratio=(1 / (1 + 0.25 * s), 1 + 0.25 * s)),
            v2.RandomAffine(
                degrees=15 * s, translate=(0.05 * s, 0.05 * s), scale=(1 - 0.1 * s, 1 + 0.1 * s), shear=5 * s
            ),
            v2.RandomPerspective(distortion_scale=0.15 * s, p=0.3),
            v2.ColorJitter(brightness=0.3 * s, contrast=0.3 * s, saturation=0.3 * s, hue=0.05 * s),
            v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5))], p=0.3 * s),
            v2.RandomErasing(p=augment.erasing_p * s, scale=(0.02, 0.15), value=0),
        ]
    )


def eval_transform(image_size: int) -> v2.Compose:
    # Resizing the PIL image uses PIL's bilinear filter, so a deployment that preprocesses with PIL as
    # labels.json describes feeds the exported model exactly the pixels that validation saw.
    resize = v2.Resize((image_size, image_size), interpolation=v2.InterpolationMode.BILINEAR)
    return v2.Compose([resize, v2.PILToTensor()])
