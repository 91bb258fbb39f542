"""Image classification data sets, all local: nothing is downloaded at run time.

Every loader returns a `DataSplit` of three `ImageSet`s (train / val / test) with images as float32 NCHW tensors in
[0, 1] and int64 labels. Images in [0, 1] are what the quantized network's fixed 8-bit input quantizer expects
(step 1/255, so an 8-bit pixel is represented exactly).

- `load_digits`: scikit-learn's bundled 8x8 digits (1797 images, one channel), split with a fixed seed.
- `load_cifar10`: the CIFAR-10 "python version" batches (``data_batch_1..5``, ``test_batch``) in a user directory,
  read by `_ArrayUnpickler`, which builds numpy arrays and plain containers and nothing else, so a crafted batch
  cannot run code.
- `load_image_folder`: one sub-folder per class, images as ``.npy`` arrays (H x W or H x W x C, uint8 or float in
  [0, 1]) or binary netpbm ``.pgm`` / ``.ppm``; PIL is not a dependency, and these two formats cover exported data
  sets without it.

A missing path or a file in the wrong format raises `InputError` naming the path and what was expected.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct

from codesign.errors import InputError
from codesign.hw.config import ceil_div

IMAGE_SUFFIXES = (".npy", ".pgm", ".ppm")
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor      # float32, N x C x H x W, values in [0, 1]
    labels: torch.Tensor      # int64, N

    def __len__(self) -> int:
        return len(self.labels)

    def batch_count(self, batch_size: int) -> int:
        """How many batches `batches` yields (the last one may be short)."""
        return ceil_div(len(self), batch_size)

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None):
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size]
            yield self.images[index], self.labels[index]


@dataclass(frozen=True)
class DataSplit:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    classes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])


def load_digits(*, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2) -> DataSplit:
    """scikit-learn's 8x8 digits (pixel values 0..16, scaled to [0, 1]) with a seeded stratification-free split."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    return _split(images, labels, tuple(str(c) for c in digits.target_names), seed, val_fraction, test_fraction)


def load_cifar10(path: str | Path, *, seed: int = 0, val_fraction: float = 0.1) -> DataSplit:
    """CIFAR-10's python pickle batches; the validation set is a seeded slice of the five training batches."""
    root = Path(path)
    expected = f"a directory with the CIFAR-10 python batches {', '.join(CIFAR10_TRAIN)} and {CIFAR10_TEST}"
    missing = [name for name in (*CIFAR10_TRAIN, CIFAR10_TEST) if not (root / name).is_file()]
    if not root.is_dir() or missing:
        raise InputError("cifar10 path", str(root / missing[0]) if root.is_dir() else str(root), expected)
    train_x, train_y = zip(*(_cifar_batch(root / name) for name in CIFAR10_TRAIN))
    test_x, test_y = _cifar_batch(root / CIFAR10_TEST)
    train = ImageSet(torch.cat(train_x), torch.cat(train_y))
    classes = _cifar_classes(root)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    n_val = int(round(val_fraction * len(train)))
    return DataSplit(train=_subset(train, order[n_val:]), val=_subset(train, order[:n_val]),
                     test=ImageSet(test_x, test_y), classes=classes)


def load_image_folder(path: str | Path, *, seed: int = 0, val_fraction: float = 0.1,
                      test_fraction: float = 0.2) -> DataSplit:
    """One sub-folder per class (sorted names are the classes); every image must have the same shape."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("image folder", str(root), "an existing directory with one sub-folder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if len(class_dirs) < 2:
        raise InputError("image folder", str(root), "at least two class sub-folders")
    images, labels = [], []
    for label, folder in enumerate(class_dirs):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError("image folder", str(folder), f"images with a suffix in {list(IMAGE_SUFFIXES)}")
        for file in files:
            images.append(_read_image(file))
            labels.append(label)
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        raise InputError("image folder", str(root), f"images of one shape (found {sorted(shapes)})")
    stacked = torch.from_numpy(np.stack(images))
    return _split(stacked, torch.tensor(labels, dtype=torch.int64), tuple(p.name for p in class_dirs),
                  seed, val_fraction, test_fraction)


# ---- formats


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as a pickle of protocol 2 calls it for bytes written by Python 3: latin-1 only."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"bytes encoded as {encoding!r}, not latin1")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays only: the globals an array needs to be rebuilt
    (under numpy 1's and numpy 2's module names) and latin-1 bytes. Any other global, such as ``os.system`` or
    ``builtins.eval``, is refused before it is looked up, so nothing named in the file runs."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1}

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data batch") from None


# How a damaged, truncated or foreign pickle fails, in the unpickler or in reading what it returned.
DAMAGED_PICKLE = (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError,
                  OSError)


def _load_pickle(file: Path) -> object:
    with file.open("rb") as handle:
        return _ArrayUnpickler(handle, encoding="bytes").load()


def _cifar_batch(file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        batch = _load_pickle(file)
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except DAMAGED_PICKLE as exc:
        raise InputError("cifar10 batch", str(file),
                         f"a CIFAR-10 python pickle with b'data' (N x 3072 uint8) and b'labels' ({exc})") from None
    if len(labels) != len(data):
        raise InputError("cifar10 batch", str(file), f"as many labels as images ({len(labels)} vs {len(data)})")
    return torch.from_numpy(data.astype(np.float32) / 255.0), torch.from_numpy(labels)


def _cifar_classes(root: Path) -> tuple[str, ...]:
    meta = root / "batches.meta"
    if meta.is_file():
        try:
            return tuple(name.decode() for name in _load_pickle(meta)[b"label_names"])
        except DAMAGED_PICKLE as exc:
            raise InputError("cifar10 batches.meta", str(meta), f"a CIFAR-10 python pickle with b'label_names' "
                                                                  f"({type(exc).__name__}: {exc})") from None
    return tuple(str(i) for i in range(10))


def _read_image(file: Path) -> np.ndarray:
    """One image as float32 C x H x W in [0, 1]."""
    try:
        pixels = np.load(file, allow_pickle=False) if file.suffix.lower() == ".npy" else _read_netpbm(file)
    except (ValueError, OSError) as exc:
        raise InputError("image", str(file), f"a readable .npy or binary .pgm / .ppm image ({exc})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise InputError("image", str(file), f"H x W or H x W x C with C in (1, 3) (shape {pixels.shape})")
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.float32) / 255.0
    elif np.issubdtype(pixels.dtype, np.floating) and pixels.size and 0 <= pixels.min() and pixels.max() <= 1:
        pixels = pixels.astype(np.float32)
    else:
        raise InputError("image", str(file), f"uint8 pixels or floats in [0, 1] (dtype {pixels.dtype})")
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _read_netpbm(file: Path) -> np.ndarray:
    """Binary PGM (P5) or PPM (P6) with maxval <= 255."""
    data = file.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:           # magic, width, height, maxval, separated by whitespace and comments
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        if end == pos:
            raise ValueError("truncated header")
        fields.append(data[pos:end])
        pos = end
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    channels = {b"P5": 1, b"P6": 3}.get(magic)
    if channels is None or maxval > 255:
        raise ValueError(f"not a binary 8-bit PGM / PPM (magic {magic!r}, maxval {maxval})")
    pixels = np.frombuffer(data, dtype=np.uint8, count=width * height * channels, offset=pos + 1)
    return pixels.reshape(height, width, channels)


# ---- splitting

def _split(images, labels, classes, seed, val_fraction, test_fraction) -> DataSplit:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 0.5:
            raise InputError(name, value, "a fraction in (0, 0.5)")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(labels)))
    n_val = int(round(val_fraction * len(labels)))
    whole = ImageSet(images, labels)
    return DataSplit(train=_subset(whole, order[n_test + n_val:]), val=_subset(whole, order[n_test:n_test + n_val]),
                     test=_subset(whole, order[:n_test]), classes=classes)


def _subset(data: ImageSet, index: torch.Tensor) -> ImageSet:
    return ImageSet(data.images[index], data.labels[index])
