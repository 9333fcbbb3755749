from django.urls import path

from scoring import api, ops, views

api_urlpatterns = [
    path("token/", api.ThrottledObtainAuthToken.as_view(), name="api-token"),
    path("scores/", api.ScoreListCreateView.as_view(), name="score-list"),
    path("scores/<str:submission_id>/", api.ScoreDetailView.as_view(), name="score-detail"),
    path("players/me/ledger/", api.LedgerView.as_view(), name="ledger"),
    path("tasks/", api.TaskListView.as_view(), name="task-list"),
    path("tasks/<str:slug>/challenges/", api.ChallengeCreateView.as_view(), name="challenge-create"),
    path("leaderboard/", api.LeaderboardView.as_view(), name="leaderboard"),
    path("leaderboard/me/", api.LeaderboardMeView.as_view(), name="leaderboard-me"),
    path("leaderboard/history/", api.LeaderboardHistoryView.as_view(), name="leaderboard-history"),
    path("activity/", api.ActivityView.as_view(), name="activity"),
]

page_urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.SignupView.as_view(), name="signup"),
    path("play/", views.play, name="play"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard-page"),
    path("me/scores/", views.my_scores, name="my-scores"),
    path("ops/pipeline/", ops.pipeline, name="pipeline"),
    path("ops/pipeline/retry/<str:submission_id>/", ops.pipeline_retry, name="pipeline-retry"),
    path("ops/review/", ops.review_queue, name="review-queue"),
    path("ops/review/decide/", ops.review_decide, name="review-decide"),
]
