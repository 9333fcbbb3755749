from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scoring import store


class Command(BaseCommand):
    help = "Create the DynamoDB table, its indexes and its stream, if missing. Safe to run repeatedly."

    def add_arguments(self, parser):
        parser.add_argument("--table", help="Table name (default: settings.DYNAMODB_TABLE).")

    def handle(self, *args, table=None, **options):
        if table is not None and not table.strip():
            raise CommandError("--table is empty: give a table name, or leave --table out for "
                               f"settings.DYNAMODB_TABLE ({settings.DYNAMODB_TABLE}).")
        name = settings.DYNAMODB_TABLE if table is None else table
        where = settings.DYNAMODB_ENDPOINT_URL or f"AWS {settings.AWS_REGION}"
        try:
            stream_arn, created = store.table_ensure(name=name)
        except store.StoreError as exc:
            raise CommandError(f"Could not create table {name!r} at {where}: {exc}") from exc
        verb = "Created" if created else "Table already exists:"
        self.stdout.write(self.style.SUCCESS(f"{verb} {name} at {where}; stream {stream_arn}"))
