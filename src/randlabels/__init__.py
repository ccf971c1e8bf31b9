"""randlabels: what neural networks learn when trained with random labels.

Reproduces and measures the findings of Maennel et al., "What Do Neural
Networks Learn When Trained With Random Labels?" (NeurIPS 2020).
"""

import os as _os

# PyTorch's CPU allocator backs large tensors with transparent huge pages when
# this is set (read once, at its first allocation). Activations of a conv layer
# are hundreds of MB per batch; with 4 KB pages every fresh allocation pays tens
# of thousands of page faults, which made simple_cnn's training step ~2x slower
# on the 2-core CI machines (measured in benchmarks/loader_throughput.py).
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
