"""Image transforms (torchvision v2): train = resize, random crop, flip, colour jitter; eval =
resize, centre crop. A horizontal flip keeps AU labels because the AUs used are bilateral."""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_transform(mean=IMAGENET_MEAN, std=IMAGENET_STD, size: int = 224, resize: int = 256,
                    jitter: float = 0.3, flip: bool = True):
    import torch
    from torchvision.transforms import v2

    steps = [
        v2.ToImage(),
        v2.Resize(resize, antialias=True),
        v2.RandomCrop(size),
    ]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if jitter > 0:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter,
                                    hue=min(0.05, jitter / 6)))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def eval_transform(mean=IMAGENET_MEAN, std=IMAGENET_STD, size: int = 224, resize: int = 256):
    import torch
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        v2.Resize(resize, antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ])
