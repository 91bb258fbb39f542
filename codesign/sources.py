"""`source_digest`: one hash of the Python sources that decide a cached result (a simulation build, a measurement,
a trained model), so that a cache entry is used only by the code that made it.

A package counts with every module below it, subpackages included; each file enters the hash with its path
relative to its package (module names, never checkout paths), so the digest is the same in every clone and changes
when any file is edited, added, removed or renamed. `HARDWARE_CONTRACT` is the one list of the modules the RTL
generator reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType

from codesign.hw import config, csr, isa, operands, reference, timing

#: The hardware contract (`codesign.hw`): every module `rtl_gen` reads, so the key of anything built from it.
HARDWARE_CONTRACT = (config, isa, csr, timing, operands, reference)


def source_files(module: ModuleType) -> list[tuple[str, Path]]:
    """The files of ``module``, sorted, each with the name it is hashed under: ``pkg.sub/path/to/file.py`` for the
    files of a package, ``pkg.module`` for a plain module."""
    path = Path(module.__file__)
    if path.name != "__init__.py":
        return [(module.__name__, path)]
    root = path.parent
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.relative_to(root).parts)
    return [(f"{module.__name__}/{p.relative_to(root).as_posix()}", p) for p in files]


def source_digest(*modules: ModuleType) -> str:
    """sha256 (hex) of the sources of ``modules`` (packages recursively), in the order given."""
    digest = hashlib.sha256()
    for module in modules:
        for name, path in source_files(module):
            data = path.read_bytes()
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()
