"""spatialvlm: point-cloud and panorama VLM inference and evaluation with swappable positional encodings.

Importing the package is cheap: torch, transformers and open3d are imported by the stages that need them.
"""

__version__ = "0.1.0"
