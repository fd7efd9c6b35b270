"""Image transforms (torchvision v2): train = pad to a square, resize, random crop, flip, colour
jitter; eval = pad to a square, resize, centre crop. Padding first keeps the whole frame: a tall
or wide frame (an unaligned whole video frame) is centred on a square of constant fill (the
normalisation mean, ~0 after ``Normalize``) instead of losing its top and bottom (brows, chin) to
the centre crop; an aligned square crop passes through unchanged. A horizontal flip keeps AU
labels because the AUs used are bilateral. Landmarks passed with the image as
``tv_tensors.KeyPoints`` follow every geometric step (so AU regions follow the face)."""

from __future__ import annotations

# torchvision at import: this module is only imported inside the functions that build transforms.
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import query_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PadToSquare(v2.Transform):
    """Pad an image (and any landmarks passed with it as ``tv_tensors.KeyPoints``) to a centred
    square with a constant ``fill`` (one value per channel, in the image's own scale: 0..255 for
    uint8). A module-level class, so DataLoader workers started by spawn can pickle it."""

    def __init__(self, fill=0):
        super().__init__()
        self.fill = fill

    def make_params(self, flat_inputs):
        h, w = query_size(flat_inputs)
        side = max(h, w)
        left, top = (side - w) // 2, (side - h) // 2
        return {"padding": [left, top, side - w - left, side - h - top]}

    def transform(self, inpt, params):
        if not any(params["padding"]):
            return inpt
        return self._call_kernel(F.pad, inpt, padding=params["padding"], fill=self.fill)

    def extra_repr(self) -> str:
        return f"fill={self.fill}"


def pad_fill(mean) -> list[int]:
    return [round(255 * m) for m in mean]


def pad_resize(fill, resize: int) -> list:
    """The steps every transform starts with, none of them random: to a tensor, pad to a square
    of ``fill``, resize to ``resize``. ``hiva data pack`` stores their output; on it they do
    nothing (already square, already that size), so a pack gives the tensors its images give."""
    return [v2.ToImage(), PadToSquare(list(fill)), v2.Resize(resize, antialias=True)]


def _scaled(mean, std, normalise: bool) -> list:
    """The last steps: to float in 0..1, then the backbone's normalisation; none with
    ``normalise`` False (uint8 out: the trainer's loader, whose model scales and normalises a
    batch on its device with the same operations, ``AUNet.pixels``)."""
    import torch

    if not normalise:
        return []
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def train_transform(mean=IMAGENET_MEAN, std=IMAGENET_STD, size: int = 224, resize: int = 256,
                    jitter: float = 0.3, flip: bool = True, normalise: bool = True):
    steps = [*pad_resize(pad_fill(mean), resize), v2.RandomCrop(size)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if jitter > 0:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter,
                                    hue=min(0.05, jitter / 6)))
    return v2.Compose(steps + _scaled(mean, std, normalise))


def eval_transform(mean=IMAGENET_MEAN, std=IMAGENET_STD, size: int = 224, resize: int = 256,
                   normalise: bool = True):
    return v2.Compose([*pad_resize(pad_fill(mean), resize), v2.CenterCrop(size),
                       *_scaled(mean, std, normalise)])
