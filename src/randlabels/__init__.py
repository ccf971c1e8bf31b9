"""randlabels: what neural networks learn when trained with random labels.

Reproduces and measures the findings of Maennel et al., "What Do Neural
Networks Learn When Trained With Random Labels?" (NeurIPS 2020).
"""

__version__ = "0.1.0"
