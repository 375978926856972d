"""A real SMTP relay (aiosmtpd) on loopback, up for a block of a test: the mails the
platform sends while it is up leave; before and after, nobody listens and they wait."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Relay:
    """aiosmtpd handler keeping every message it takes (its subject, recipients and body)."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.messages: list[tuple[list[str], EmailMessage]] = []  # (envelope recipients, mail)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        self.subjects.append(message["Subject"])
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def relay_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENDATA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPENDATA_SMTP_PORT", str(free_port()))  # nobody listens


@contextmanager
def relay_up(monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    relay, port = Relay(), free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OPENDATA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPENDATA_SMTP_PORT", str(port))
    try:
        yield relay
    finally:
        controller.stop()
        relay_down(monkeypatch)
