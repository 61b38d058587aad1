"""Digit-safe transforms: PIL RGB image in, uint8 CHW tensor out. The model normalises, on the device."""

import torch
from torchvision.transforms import v2


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


def train_transform(
    image_size: int,
    strength: float,
    jpeg_quality: tuple[int, int],
    jpeg_p: float,
    noise_sigma: tuple[float, float],
    noise_p: float,
    erasing_p: float,
) -> v2.Compose:
    """The published recipe's augmentation at ``strength`` 1: geometric and colour magnitudes and every
    probability scale with it, down to none at 0."""
    if strength == 0:
        return eval_transform(image_size)
    s = strength
    # No horizontal flip: a mirrored digit is another digit (6/9, 2/5).
    # JPEG and noise act on the crop at its own resolution, before resizing, as broadcast damage does; applied
    # after a resize to 32 px, JPEG's 8x8 blocks and sigma-30 noise erase the digits and training stalls.
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomApply([v2.JPEG(quality=jpeg_quality)], p=jpeg_p * s),
            v2.RandomApply([RandomGaussianNoise(noise_sigma)], p=noise_p * s),
            v2.RandomResizedCrop(image_size, scale=(1 - 0.3 * s, 1.0), ratio=(1 / (1 + 0.25 * s), 1 + 0.25 * s)),
            v2.RandomAffine(
                degrees=15 * s, translate=(0.05 * s, 0.05 * s), scale=(1 - 0.1 * s, 1 + 0.1 * s), shear=5 * s
            ),
            v2.RandomPerspective(distortion_scale=0.15 * s, p=0.3),
            v2.ColorJitter(brightness=0.3 * s, contrast=0.3 * s, saturation=0.3 * s, hue=0.05 * s),
            v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5))], p=0.3 * s),
            v2.RandomErasing(p=erasing_p * s, scale=(0.02, 0.15), value=0),
        ]
    )


def eval_transform(image_size: int) -> v2.Compose:
    # Resizing the PIL image uses PIL's bilinear filter, so a deployment that preprocesses with PIL as
    # labels.json describes feeds the exported model exactly the pixels that validation saw.
    resize = v2.Resize((image_size, image_size), interpolation=v2.InterpolationMode.BILINEAR)
    return v2.Compose([resize, v2.PILToTensor()])
