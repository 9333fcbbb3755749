"""Pushing to browsers through the Channels layer.

The only module that imports ``channels.layers``. One coalesced message per
changed board per batch, never one per record: channels_redis drops a
message silently once a channel holds ``capacity`` of them (100 by default:
channels_redis 4.x's ``group_send`` returns normally and logs it only at INFO).
"""

import logging
import re

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def leaderboard_group(window: str) -> str:
    return f"leaderboard.{window}"


def player_group(player_id: str) -> str:
    """A player's own group. Group names allow only ``[a-zA-Z0-9_.-]`` and
    fewer than 100 characters, so a raw key like ``PLAYER#42`` would not do."""
    return "player." + _UNSAFE.sub("_", player_id)[:80]


def push(messages: list[tuple[str, dict]]) -> None:
    """Send (group, message) pairs, in order, in one trip to the event loop."""
    if messages:
        async_to_sync(_send_all)(messages)


async def _send_all(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    for group, message in messages:
        await layer.group_send(group, message)
