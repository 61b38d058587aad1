"""The training augmentation, in one of two places: all of it per crop in the loader workers (torchvision: a PIL
crop in, a uint8 CHW tensor out), or batched on the training device (kornia), the workers then only damaging
each crop at its own resolution (JPEG, noise) and resizing it. Both draw each crop's own parameters from the same
ranges and probabilities. The evaluation transform resizes. The model normalises, on the device."""

from dataclasses import dataclass

import kornia.augmentation as K
import torch
from kornia.augmentation.container import ImageSequential
from torchvision.transforms import v2

from jersey_cls.messages import JerseyInputError


class RandomGaussianNoise(v2.Transform):
    """Additive Gaussian noise with sigma drawn per image on the 0-255 scale.

    torchvision's GaussianNoise takes one fixed sigma and float input; broadcast crops need a range on uint8.
    """

    def __init__(self, sigma: tuple[float, float] = (5.0, 30.0)) -> None:
        super().__init__()
        self.sigma = sigma

    def make_params(self, flat_inputs) -> dict:
        return {"sigma": float(torch.empty(1).uniform_(*self.sigma))}

    def transform(self, inpt, params):
        if not isinstance(inpt, torch.Tensor) or inpt.dtype != torch.uint8:
            return inpt
        noisy = inpt.float() + torch.randn(inpt.shape) * params["sigma"]
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


PERSPECTIVE_P = 0.3
BLUR_P, BLUR_SIGMA = 0.3, (0.1, 1.5)
ERASED_AREA = (0.02, 0.15)


class Magnitudes:
    """The geometric and colour ranges at strength ``s``, the published recipe's at 1, for an input of ``shape``
    (height, width): one source for both places. The random crop's aspect ratio varies around the input's."""

    def __init__(self, s: float, shape: tuple[int, int] = (1, 1)) -> None:
        aspect = shape[1] / shape[0]
        self.crop_scale = (1 - 0.3 * s, 1.0)
        self.crop_ratio = (aspect / (1 + 0.25 * s), aspect * (1 + 0.25 * s))
        self.degrees, self.shear = 15 * s, 5 * s
        self.translate = (0.05 * s, 0.05 * s)
        self.scale = (1 - 0.1 * s, 1 + 0.1 * s)
        self.distortion = 0.15 * s
        self.colour, self.hue = 0.3 * s, 0.05 * s


def train_transform(shape: tuple[int, int], augment: Augment, batched: bool = False) -> v2.Compose:
    """``augment`` as torchvision transforms: a PIL crop in, a uint8 tensor of ``shape`` (height, width) out.
    ``batched``: only the damage that must happen at the crop's own resolution (JPEG, noise), then the resize; the
    rest is batch_augmentation's, on the device."""
    s = augment.strength
    if s == 0:
        return eval_transform(shape)
    m = Magnitudes(s, shape)
    # JPEG and noise act on the crop at its own resolution, before resizing, as broadcast damage does; applied
    # after a resize to 32 px, JPEG's 8x8 blocks and sigma-30 noise erase the digits and training stalls.
    damage = [
        v2.PILToTensor(),
        v2.RandomApply([v2.JPEG(quality=augment.jpeg_quality)], p=augment.jpeg_p * s),
        v2.RandomApply([RandomGaussianNoise(augment.noise_sigma)], p=augment.noise_p * s),
    ]
    if batched:
        return v2.Compose([*damage, v2.Resize(shape, antialias=True)])
    # A tall input (player thumbnails) is cropped from the crop resized to its shape, so that the random crop's
    # aspect ratio is the input's; torchvision's would be drawn around 1 in the original and fall back to a
    # centre square.
    to_shape = [v2.Resize(shape, antialias=True)] if shape[0] != shape[1] else []
    return v2.Compose(
        [
            *damage,
            *to_shape,
            v2.RandomResizedCrop(shape, scale=m.crop_scale, ratio=m.crop_ratio),
            v2.RandomAffine(degrees=m.degrees, translate=m.translate, scale=m.scale, shear=m.shear),
            v2.RandomPerspective(distortion_scale=m.distortion, p=PERSPECTIVE_P),
            v2.ColorJitter(brightness=m.colour, contrast=m.colour, saturation=m.colour, hue=m.hue),
            v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=BLUR_SIGMA)], p=BLUR_P * s),
            v2.RandomErasing(p=augment.erasing_p * s, scale=ERASED_AREA, value=0),
        ]
    )


def batch_augmentation(shape: tuple[int, int], augment: Augment) -> ImageSequential | None:
    """The rest of ``augment`` after train_transform(batched=True), as kornia modules over a batch of 0-1 float
    crops of ``shape`` (height, width): train_transform's transforms from the resized crop on, with its ranges and
    probabilities, in its order, each crop drawing its own parameters. None at strength 0.

    Where kornia differs: ColorJitter draws the order of its four adjustments once a batch, not once a crop;
    RandomErasing draws the aspect ratio of the erased box another way (the area, which the strength scales,
    alike); and a crop of another shape than the input's is squashed to it before the random crop, as evaluation
    sees it, where torchvision crops the original and falls back to its centre."""
    s = augment.strength
    if s == 0:
        return None
    m = Magnitudes(s, shape)
    return ImageSequential(
        K.RandomResizedCrop(shape, scale=m.crop_scale, ratio=m.crop_ratio),
        # torchvision's RandomAffine samples the nearest pixel; kornia's default would interpolate
        K.RandomAffine(m.degrees, m.translate, m.scale, m.shear, resample="nearest", p=1.0),
        K.RandomPerspective(distortion_scale=m.distortion, p=PERSPECTIVE_P),
        K.ColorJitter(brightness=m.colour, contrast=m.colour, saturation=m.colour, hue=m.hue, p=1.0),
        K.RandomGaussianBlur((3, 3), sigma=BLUR_SIGMA, p=BLUR_P * s),
        K.RandomErasing(scale=ERASED_AREA, value=0.0, p=augment.erasing_p * s),
    )


def eval_transform(shape: tuple[int, int]) -> v2.Compose:
    # Resizing the PIL image uses PIL's bilinear filter, so a deployment that preprocesses with PIL as
    # labels.json describes feeds the exported model exactly the pixels that validation saw.
    resize = v2.Resize(tuple(shape), interpolation=v2.InterpolationMode.BILINEAR)
    return v2.Compose([resize, v2.PILToTensor()])
