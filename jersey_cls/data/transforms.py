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
    jpeg_quality: tuple[int, int],
    jpeg_p: float,
    noise_sigma: tuple[float, float],
    noise_p: float,
    erasing_p: float,
) -> v2.Compose:
    # No horizontal flip: a mirrored digit is another digit (6/9, 2/5).
    # JPEG and noise act on the crop at its own resolution, before resizing, as broadcast damage does; applied
    # after a resize to 32 px, JPEG's 8x8 blocks and sigma-30 noise erase the digits and training stalls.
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomApply([v2.JPEG(quality=jpeg_quality)], p=jpeg_p),
            v2.RandomApply([RandomGaussianNoise(noise_sigma)], p=noise_p),
            v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), ratio=(0.8, 1.25), antialias=True),
            v2.RandomAffine(degrees=15, translate=(0.05, 0.05), scale=(0.9, 1.1), shear=5),
            v2.RandomPerspective(distortion_scale=0.15, p=0.3),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
            v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5))], p=0.3),
            v2.RandomErasing(p=erasing_p, scale=(0.02, 0.15), value=0),
        ]
    )


def eval_transform(image_size: int) -> v2.Compose:
    # Resizing the PIL image uses PIL's bilinear filter, so a deployment that preprocesses with PIL as
    # labels.json describes feeds the exported model exactly the pixels that validation saw.
    resize = v2.Resize((image_size, image_size), interpolation=v2.InterpolationMode.BILINEAR)
    return v2.Compose([resize, v2.PILToTensor()])
