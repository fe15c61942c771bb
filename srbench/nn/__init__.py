"""Shared PyTorch machinery for networks: training-pair pipeline, training loop, inference.

Our CNN methods and users' own networks use the same code. The package is split so that
importing it stays cheap: :mod:`srbench.nn.data` needs only numpy, while
:mod:`srbench.nn.train` and :mod:`srbench.nn.infer` import torch and are imported lazily.
"""
