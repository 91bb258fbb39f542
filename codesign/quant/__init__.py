"""Quantizers, the quantized network, the supernet with CSQ, integer export, data sets and the one training loop."""
