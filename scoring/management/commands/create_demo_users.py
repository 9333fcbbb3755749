from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERS = [
    # username, password, is_staff
    ("admin", "admin-demo-pass", True),
    ("player", "player-demo-pass", False),
]


class Command(BaseCommand):
    help = "Create (or reset) a demo admin and a demo player for local use, and print their logins."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo users have well-known passwords; refusing to create them with DEBUG off.")
        User = get_user_model()
        for username, password, staff in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = staff
            user.set_password(password)
            user.save()
            role = "admin " if staff else "player"
            self.stdout.write(f"  {role}  username: {username:<8} password: {password}")
