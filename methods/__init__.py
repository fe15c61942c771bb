"""srbench's first-party methods, one package per family.

Each family keeps its algorithm code, its registered method classes and its trained
artifacts (``weights/<name>/``) together, and is built only on srbench's public API. The
package is installed as ``srbench._methods`` and its classes reach the registry through
srbench's own entry points (``pyproject.toml``), the same way a third-party plugin does.
"""
