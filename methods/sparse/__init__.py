"""Sparse coding: Yang et al.'s SC and Zeyde et al.'s K-SVD, with their shared building blocks.

``coding`` holds the L1SR building blocks of SC; ``zeyde`` the feature extraction, OMP and
K-SVD that K-SVD and every method on its dictionary (NE, GR, ANR, A+) build on.
"""
