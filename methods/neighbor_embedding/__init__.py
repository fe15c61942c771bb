"""Neighbour embedding on the K-SVD dictionary atoms: NE+LLE and NE+NNLS.

``embedding`` holds the neighbour search and the LLE weights, ``nnls`` the batched
non-negative least squares; ``methods`` holds the registered classes.
"""
