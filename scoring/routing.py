from django.urls import path, re_path

from scoring.consumers import LeaderboardConsumer, unknown_path_refuse

websocket_urlpatterns = [
    path("ws/leaderboard/", LeaderboardConsumer.as_asgi()),
    # Last: any other path (an empty pattern is found in every one).
    re_path(r"", unknown_path_refuse),
]
