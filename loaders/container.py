"""The per-request Loaders container."""

from __future__ import annotations

from typing import Any, TypeVar

from loaders.base import Loader
from models.db import Database
from models.users import Viewer

L = TypeVar("L", bound=Loader)


class Loaders:
    """Every loader of one request (or of one subscription event).

    Loaders cache by key for the life of the request, so they must never outlive it:
    a new container per request keeps one request's reads out of the next one's.
    """

    def __init__(
        self, db: Database, viewer: Viewer, *, default_page_size: int = 50,
        max_page_size: int = 500,
    ) -> None:
        self.db = db
        self.viewer = viewer
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self._instances: dict[tuple[type[Loader], str], Loader] = {}

    def get(self, loader_class: type[L], *args: Any) -> L:
        # Arguments are GraphQL inputs (plain dataclasses): their repr is their value.
        key = (loader_class, repr(args))
        loader = self._instances.get(key)
        if loader is None:
            loader = loader_class(self, *args)
            self._instances[key] = loader
        return loader  # type: ignore[return-value]
