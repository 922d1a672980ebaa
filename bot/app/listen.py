"""Bind the service's port before anything else starts.

A port in use then reads as one line naming the port and how to pick another, instead of a multi-KB
traceback from a service that was already half up (``perfloop demo`` and ``perfloop run`` alike).
"""

from __future__ import annotations

import errno
import socket

from bot.core.config import Settings
from cards.catalogue import Translator


class ListenError(Exception):
    """The address cannot be listened on, already phrased as the one line the person should read."""


def listen(settings: Settings, *, texts: str) -> socket.socket:
    """A listening, non-blocking socket on ``[server] host:port``.

    ``texts`` is the catalogue prefix whose ``port_in_use`` / ``cannot_listen`` / ``bad_host`` say how this
    command changes its address (``sim.demo`` names ``--port``; ``server`` names ``PERFLOOP_SERVER__PORT``).
    """
    t = Translator(settings.i18n.default_locale)
    host, port = settings.server.host, settings.server.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(t(f"{texts}.bad_host", host=host, reason=exc.strerror or exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        key = "port_in_use" if exc.errno == errno.EADDRINUSE else "cannot_listen"
        nxt = port + 1 if port < 65535 else 8081
        raise ListenError(t(f"{texts}.{key}", host=host, port=port, next=nxt, reason=exc)) from None
    sock.setblocking(False)
    return sock
