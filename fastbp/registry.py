"""The one registry of built-in classes by name: layers, losses, optimizers.

A class joins with a decorator where it is defined (``@LAYERS.register()``), so the names a user
may give (``loss="mse"``), the names in a model file and the command line's choices all come
from here. Lookups of unknown names raise a ValueError that lists the known ones.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping


class Registry(Mapping):
    """Classes of one kind by name (a read-only mapping); `kind` names the kind in errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, *names: str):
        """Class decorator: register the class under `names` (default: its class name)."""
        def decorate(cls: type) -> type:
            for name in names or (cls.__name__,):
                if name in self._classes:
                    raise ValueError(f"{self.kind} {name!r} is registered twice")
                self._classes[name] = cls
            return cls
        return decorate

    def lookup(self, name) -> type:
        """The class registered as `name`; ValueError listing the known names otherwise."""
        if not isinstance(name, str) or name not in self._classes:
            raise ValueError(f"{self.kind}: expected one of {self.names()}, got {name!r}")
        return self._classes[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._classes)

    def classes(self) -> list[type]:
        """The registered classes, each once, in registration order."""
        return list(dict.fromkeys(self._classes.values()))

    def __getitem__(self, name: str) -> type:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


LAYERS = Registry("layer type")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
