from django.core.management.base import BaseCommand, CommandError

from scoring import ranking, store


class Command(BaseCommand):
    help = "Rebuild the Redis leaderboards (all time, this week, today) from DynamoDB's TOTAL items."

    def handle(self, *args, **options):
        try:
            count = ranking.boards_rebuild(store.totals_scan())
        except ranking.RankingUnavailable as exc:
            raise CommandError(f"Redis is unavailable: {exc}") from None
        except store.StoreError as exc:
            raise CommandError(f"DynamoDB is unavailable: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the leaderboards from {count} player total(s)."))
