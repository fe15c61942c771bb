"""Shared PyTorch machinery for the CNN methods (SRCNN, FSRCNN, ESPCN).

The package is split so that importing it stays cheap: :mod:`srbench.cnn.data` needs only
numpy, while :mod:`srbench.cnn.models`, :mod:`srbench.cnn.train` and
:mod:`srbench.cnn.infer` import torch and are imported lazily by the method plugins.
"""
