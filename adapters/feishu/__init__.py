"""Feishu / Lark: callbacks (webhook or long connection), card JSON 2.0, and the open-apis calls.

``crypto`` verifies and decrypts, ``inbound`` parses envelopes into neutral events, ``render`` turns neutral
cards into card JSON 2.0, ``client`` is the only outbound path, ``websocket`` runs lark-oapi's long-connection
client, and ``adapter`` ties them into the ``Adapter`` interface.
"""
