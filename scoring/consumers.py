"""Websocket endpoints (Channels consumers). No domain logic here."""

from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from scoring import broadcast, selectors
from scoring.domain import WINDOWS

# Close code for a bad request, in the 4000-4999 range kept for applications.
CLOSE_BAD_REQUEST = 4400


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/leaderboard/?window=all|week|day``: a snapshot, then deltas.

    The snapshot is read after joining the group, so no delta can fall
    between the two; both carry the board's ``seq``, and the browser drops
    deltas not newer than its snapshot. A logged-in player's socket also
    joins their own group and receives their submissions' outcomes.
    """

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        window = (query.get("window") or ["all"])[0]
        if window not in WINDOWS:
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.window = window
        self.joined = [broadcast.leaderboard_group(window)]
        user = self.scope.get("user")
        self.player_id = str(user.pk) if user is not None and user.is_authenticated else None
        if self.player_id:
            self.joined.append(broadcast.player_group(self.player_id))
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        snapshot = await sync_to_async(selectors.leaderboard_snapshot)(window=window, player_id=self.player_id)
        await self.send_json({"type": "snapshot", "window": window, **snapshot})

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The socket is server-to-browser; a browser may ping to keep it open.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def leaderboard_delta(self, event):
        await self.send_json({"type": "delta", **{k: v for k, v in event.items() if k != "type"}})

    async def player_submission(self, event):
        await self.send_json({"type": "submission", "submission": event["submission"]})
