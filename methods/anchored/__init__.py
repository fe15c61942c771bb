"""Anchored regression on the K-SVD dictionary: GR, ANR (Timofte et al. 2013) and A+ (2014).

``regressors`` computes the ridge maps; ``methods`` holds the registered classes.
"""
