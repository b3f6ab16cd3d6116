"""arcdemo: an interactive lab for margin-based softmax losses (ArcFace and its family)."""

__version__ = "0.1.0"
