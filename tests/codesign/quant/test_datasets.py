import os
import pickle

import numpy as np
import pytest
import torch

from codesign.errors import InputError
from codesign.quant.datasets import load_cifar10, load_digits, load_image_folder


def test_digits_split_is_fixed_and_disjoint():
    a, b = load_digits(seed=0), load_digits(seed=0)
    assert torch.equal(a.test.labels, b.test.labels)
    assert a.image_shape == (1, 8, 8)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert 0 <= float(a.train.images.min()) and float(a.train.images.max()) <= 1
    assert not torch.equal(load_digits(seed=1).test.labels, a.test.labels)


def _write_cifar(root, per_batch=4):
    """Batches as CIFAR-10's are: dicts of bytes keys, a uint8 array and a list, pickled with protocol 2."""
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per_batch).tolist()}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]},
                                                     protocol=2))


def test_cifar10_batches_load(tmp_path):
    _write_cifar(tmp_path)
    data = load_cifar10(tmp_path, val_fraction=0.2)
    assert data.image_shape == (3, 32, 32)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 4, 4)
    assert data.classes[3] == "c3"
    first = pickle.loads((tmp_path / "test_batch").read_bytes())[b"data"][0]
    assert torch.allclose(data.test.images[0].flatten() * 255, torch.tensor(first, dtype=torch.float32))


def test_cifar10_missing_batch_names_it(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(InputError, match="data_batch_3"):
        load_cifar10(tmp_path)
    with pytest.raises(InputError, match="nowhere"):
        load_cifar10(tmp_path / "nowhere")


def test_cifar10_wrong_format_names_the_file(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="test_batch"):
        load_cifar10(tmp_path)


class _Exploit:
    """Pickles as a call of ``function(argument)``: what a crafted batch would run on a plain pickle.load."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, eval, np.load])
def test_a_cifar10_batch_that_calls_code_is_refused_and_nothing_runs(tmp_path, function):
    _write_cifar(tmp_path)
    marker = tmp_path / "ran"
    argument = f"touch {marker}" if function is os.system else (
        f"open({str(marker)!r}, 'w')" if function is eval else str(marker))
    batch = {b"data": _Exploit(function, argument), b"labels": [0]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(InputError, match=r"^cifar10 batch: '.*data_batch_1' is not allowed; .*is not allowed in a "
                                         r"data batch"):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_cifar10_meta_is_read_restrictedly_too(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": _Exploit(eval, "1")}, protocol=2))
    with pytest.raises(InputError, match="batches.meta"):
        load_cifar10(tmp_path)


def test_bytes_in_a_batch_decode_only_as_latin1(tmp_path):
    _write_cifar(tmp_path)
    # protocol 2 writes Python 3 bytes as _codecs.encode(text, 'latin1'): any other codec is refused
    crafted = pickle.dumps({b"x": 1}, protocol=2).replace(b"latin1", b"rot_13")
    (tmp_path / "test_batch").write_bytes(crafted)
    with pytest.raises(InputError, match="test_batch"):
        load_cifar10(tmp_path)


def _pgm(path, pixels):
    path.write_bytes(b"P5\n# comment\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0]) + pixels.tobytes())


def test_image_folder_reads_npy_and_pgm(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 256, (6, 6), dtype=np.uint8)
            if i % 2:
                _pgm(tmp_path / c / f"{i}.pgm", pixels)
            else:
                np.save(tmp_path / c / f"{i}.npy", pixels)
    data = load_image_folder(tmp_path, val_fraction=0.1, test_fraction=0.2)
    assert data.classes == ("cat", "dog") and data.image_shape == (1, 6, 6)
    assert len(data.train) + len(data.val) + len(data.test) == 10
    images = torch.cat([data.train.images, data.val.images, data.test.images])
    assert torch.equal(images * 255, torch.round(images * 255))


def test_image_folder_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "a" / "x.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match=r"[/\\]b"):
        load_image_folder(tmp_path)
    (tmp_path / "b" / "bad.pgm").write_bytes(b"P2\n4 4\n255\n")
    with pytest.raises(InputError, match="bad.pgm"):
        load_image_folder(tmp_path)
    (tmp_path / "b" / "bad.pgm").unlink()
    np.save(tmp_path / "b" / "y.npy", np.zeros((5, 5), np.uint8))
    with pytest.raises(InputError, match="one shape"):
        load_image_folder(tmp_path)
