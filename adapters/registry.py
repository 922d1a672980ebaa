"""Platform name → adapter instance. Concrete adapters are imported lazily here and nowhere in handlers."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from adapters.base import Adapter, AppLinks

if TYPE_CHECKING:
    from bot.core.config import Settings

FACTORIES: dict[str, str] = {
    "sim": "adapters.sim.adapter:SimAdapter",
    "wecom": "adapters.wecom.adapter:WeComAdapter",
    "feishu": "adapters.feishu.adapter:FeishuAdapter",
    "dingtalk": "adapters.dingtalk.adapter:DingTalkAdapter",
}


class AdapterRegistry:
    def __init__(self) -> None:
        self._adapters: dict[str, Adapter] = {}

    def add(self, adapter: Adapter) -> None:
        self._adapters[adapter.platform] = adapter

    def get(self, platform: str) -> Adapter:
        try:
            return self._adapters[platform]
        except KeyError:
            raise LookupError(f"no adapter enabled for platform {platform!r}") from None

    def __contains__(self, platform: object) -> bool:
        return platform in self._adapters

    def __iter__(self) -> Iterator[Adapter]:
        return iter(list(self._adapters.values()))

    def attach(self, links: AppLinks) -> None:
        """Give every adapter what the app lends it (adapters/base.py ``AppLinks``)."""
        for adapter in self._adapters.values():
            adapter.attach(links)

    def recipients_per_call(self) -> dict[str, int]:
        return {name: a.max_recipients_per_call for name, a in self._adapters.items()}

    def interactive_recipients_per_call(self) -> dict[str, int]:
        """Recipients per outbox row for a card with buttons (see the ``Adapter`` class variable)."""
        return {
            name: a.max_recipients_per_interactive_call or a.max_recipients_per_call
            for name, a in self._adapters.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> AdapterRegistry:
        registry = cls()
        names = list(settings.enabled_platforms)
        if settings.sim_enabled:
            names.append("sim")
        for name in names:
            module_name, _, class_name = FACTORIES[name].partition(":")
            adapter_cls = getattr(importlib.import_module(module_name), class_name)
            registry.add(adapter_cls.from_settings(settings))
        return registry
