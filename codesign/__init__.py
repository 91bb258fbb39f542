"""codesign: joint search of a quantized CNN and a systolic low-bit accelerator, and the software side of its flow."""

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig

__all__ = ["HardwareConfig", "InputError"]
__version__ = "0.1.0"
