"""The method registry: one place every method comes from, whichever way it came in.

Two ways in, loaded in this order:

1. an installed package's entry point in the group ``srbench.methods``; srbench's own
   methods (the ``methods/`` folder, installed as ``srbench._methods``) come in this way too,
2. ``--plugin FILE_OR_MODULE`` on the command line, or ``@register`` in any imported module.

Loading follows flake8's plugin loading: discover, then load each origin on its own,
wrap any failure with the origin it came from, and go on with the rest.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from srbench.method import Method, MethodError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "Registry",
    "UnknownMethodError",
    "get_registry",
    "register",
]

ENTRY_POINT_GROUP = "srbench.methods"
#: Where srbench's own methods are installed; their entry points name it.
BUILTIN_PACKAGE = "srbench._methods"
M = TypeVar("M", bound=type[Method])


class UnknownMethodError(MethodError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class PluginError:
    """A plugin that failed to load, with where it came from."""

    origin: str
    message: str
    detail: str = ""

    def __str__(self) -> str:
        return f"plugin {self.origin}: {self.message}"


@dataclass
class Entry:
    cls: type[Method]
    origin: str

    @property
    def builtin(self) -> bool:
        """Whether the method is one of srbench's own (installed as ``srbench._methods``)."""
        return self.cls.__module__.startswith(BUILTIN_PACKAGE + ".")


@dataclass
class Registry:
    """Registered methods by name, plus the plugin failures met while loading."""

    entries: dict[str, Entry] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)
    _current_origin: str = "python"
    _loaded_origins: set[str] = field(default_factory=set)
    _discovered: bool = False

    # -------------------------------------------------------------- registration
    def add(self, cls: type[Method], origin: str | None = None) -> type[Method]:
        origin = origin or self._current_origin
        problem = _metadata_problem(cls)
        if problem:
            raise MethodError(f"{cls.__module__}.{cls.__qualname__}: {problem}")
        existing = self.entries.get(cls.name)
        if existing is not None and existing.cls is not cls:
            raise MethodError(f"method name {cls.name!r} is already registered by {existing.origin}")
        if existing is None:
            self.entries[cls.name] = Entry(cls, origin)
        return cls

    # -------------------------------------------------------------- discovery
    def discover(self) -> Registry:
        """Load the installed entry points (srbench's own methods among them) once."""
        if self._discovered:
            return self
        self._discovered = True
        try:
            points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken installed distribution must not stop us
            self._fail("entry points", exc)
            points = []
        for point in sorted(points, key=lambda p: p.name):
            self._load_entry_point(point)
        return self

    def load_plugin(self, spec: str) -> None:
        """Load ``--plugin`` ``spec``: a ``.py`` file path or an importable module name."""
        path = Path(spec)
        if spec.endswith(".py") or path.exists():
            if not path.is_file():
                self.errors.append(PluginError(spec, "no such plugin file"))
                return
            self._load_file(path.resolve())
        else:
            self._load_module(spec, origin=f"module {spec}")

    def _load_file(self, path: Path) -> None:
        origin = str(path)
        if origin in self._loaded_origins:
            return
        self._loaded_origins.add(origin)
        module_name = f"srbench_plugin_{path.stem}_{abs(hash(origin)) % 10**8}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            with self._origin(origin):
                spec.loader.exec_module(module)
        except BaseException as exc:  # noqa: BLE001 - any plugin failure is reported, not fatal
            sys.modules.pop(module_name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._fail(origin, exc)

    def _load_module(self, name: str, origin: str) -> ModuleType | None:
        if origin in self._loaded_origins:
            return sys.modules.get(name)
        self._loaded_origins.add(origin)
        try:
            with self._origin(origin):
                return importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._fail(origin, exc)
            return None

    def _load_entry_point(self, point: metadata.EntryPoint) -> None:
        dist = getattr(point.dist, "name", "?") if getattr(point, "dist", None) else "?"
        origin = f"entry point {point.name} = {point.value} ({dist})"
        if origin in self._loaded_origins:
            return
        self._loaded_origins.add(origin)
        try:
            with self._origin(origin):
                loaded = point.load()
                if isinstance(loaded, type):
                    self.add(loaded, origin)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._fail(origin, exc)

    def _fail(self, origin: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        detail = "".join(traceback.format_exception(exc))
        self.errors.append(PluginError(origin, message, detail))

    class _OriginContext:
        def __init__(self, registry: Registry, origin: str) -> None:
            self.registry, self.origin = registry, origin

        def __enter__(self) -> None:
            # @register inside the module being loaded adds to this registry, with this origin.
            self.previous = self.registry._current_origin
            self.registry._current_origin = self.origin
            _LOADING.append(self.registry)

        def __exit__(self, *exc: object) -> None:
            self.registry._current_origin = self.previous
            _LOADING.pop()

    def _origin(self, origin: str) -> Registry._OriginContext:
        return Registry._OriginContext(self, origin)

    # -------------------------------------------------------------- look-up
    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in a stable order."""
        return sorted(n for n in self.entries if fnmatch.fnmatchcase(n, pattern.lower()))

    def get(self, name: str) -> type[Method]:
        key = name.strip().lower()
        entry = self.entries.get(key)
        if entry is not None:
            return entry.cls
        by_label = {e.cls.label.lower(): e.cls for e in self.entries.values()}
        if key in by_label:
            return by_label[key]
        close = self._suggestions(key, by_label)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        failed = [e for e in self.errors if key in e.origin.lower()]
        if failed:
            hint += f" (a plugin that may define it failed to load: {failed[0]})"
        raise UnknownMethodError(f"unknown method {name!r}{hint}")

    def _suggestions(self, key: str, by_label: dict[str, type[Method]], n: int = 3) -> list[str]:
        """Method names close to ``key``, by name or by label, each once, best first.

        A label close to ``key`` suggests its method's name: the name is what ``-m`` and
        ``check`` document, and a label such as "SC" lowercases to its own name, which
        would otherwise be offered twice.
        """
        matches = difflib.get_close_matches(key, list(self.entries) + list(by_label), n=2 * n, cutoff=0.5)
        names = [by_label[m].name if m not in self.entries else m for m in matches]
        return list(dict.fromkeys(names))[:n]

    def origin(self, name: str) -> str:
        return self.entries[self.get(name).name].origin

    def resolve(self, names: Iterable[str]) -> list[type[Method]]:
        """Turn user-given names and wildcards ("bicubic,a*") into method classes."""
        out: list[type[Method]] = []
        for raw in names:
            raw = raw.strip()
            if not raw:
                continue
            if any(ch in raw for ch in "*?["):
                matched = self.names(raw)
                if not matched:
                    raise UnknownMethodError(f"no method matches {raw!r}")
                classes = [self.entries[n].cls for n in matched]
            else:
                classes = [self.get(raw)]
            out.extend(c for c in classes if c not in out)
        return out


def _metadata_problem(cls: object) -> str:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        return "is not a subclass of srbench.Method"
    if not cls.name or cls.name != cls.name.lower() or not cls.name.replace("_", "").isalnum():
        return f"needs a short lowercase name (got {cls.name!r})"
    if not cls.label:
        return "needs a label"
    if not cls.scales or not all(isinstance(s, int) and s >= 1 for s in cls.scales):
        return f"needs a set of integer scales (got {cls.scales!r})"
    return ""


_REGISTRY = Registry()
_LOADING: list[Registry] = []


def get_registry() -> Registry:
    """The process-wide registry, with built-ins and entry points discovered."""
    return _REGISTRY.discover()


def register(cls: M) -> M:
    """Class decorator that registers a :class:`~srbench.method.Method` subclass."""
    (_LOADING[-1] if _LOADING else _REGISTRY).add(cls)
    return cls
