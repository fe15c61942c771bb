"""CNN super-resolution: SRCNN (9-1-5 and 9-5-5), FSRCNN and ESPCN.

``models`` defines the networks (imports torch); ``methods`` holds the registered classes,
which train and run them through srbench's shared torch machinery (:mod:`srbench.nn`).
"""
