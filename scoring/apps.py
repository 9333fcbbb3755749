from django.apps import AppConfig


class ScoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save
        from rest_framework.authtoken.models import Token

        from scoring.authentication import token_cache_clear
        from scoring.models import Difficulty, RulesChange, Task
        from scoring.selectors import task_cache_clear

        # A RulesChange is recorded by bulk updates of the rules too, which
        # send no post_save of their own.
        for model in (Task, Difficulty, RulesChange):
            post_save.connect(lambda **kwargs: task_cache_clear(), sender=model, weak=False)
            post_delete.connect(lambda **kwargs: task_cache_clear(), sender=model, weak=False)
        for model in (Token, get_user_model()):
            post_save.connect(token_cache_clear, sender=model, weak=False)
            post_delete.connect(token_cache_clear, sender=model, weak=False)
