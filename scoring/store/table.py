"""The table itself: its definition, creation and stream."""

from botocore.exceptions import ClientError

from scoring.store.base import StoreUnavailable, call, client, table_name
from scoring.store.keys import GSI_LEADERBOARD, GSI_PLAYER_SCORES


def table_definition(name: str) -> dict:
    """CreateTable arguments: keys, both GSIs, on-demand billing, a stream."""

    def gsi(index: str) -> dict:
        return {
            "IndexName": index,
            "KeySchema": [
                {"AttributeName": f"{index}PK", "KeyType": "HASH"},
                {"AttributeName": f"{index}SK", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [gsi(GSI_LEADERBOARD), gsi(GSI_PLAYER_SCORES)],
        "BillingMode": "PAY_PER_REQUEST",
        # NEW_AND_OLD_IMAGES lets filters and the Lambda path see whole items.
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def table_ensure(*, name: str | None = None) -> tuple[str, bool]:
    """Create the table with its stream if missing. Returns (stream ARN, created).

    Idempotent: an existing table is left alone, except that a disabled
    stream is switched on, because the whole product depends on it.
    """
    name = name or table_name()
    ddb = client()
    created = False
    try:
        ddb.create_table(**table_definition(name))
        created = True
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    description = ddb.describe_table(TableName=name)["Table"]
    if not description.get("StreamSpecification", {}).get("StreamEnabled"):
        ddb.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        description = ddb.describe_table(TableName=name)["Table"]
    return description["LatestStreamArn"], created


def table_delete(*, name: str) -> None:
    client().delete_table(TableName=name)


def table_item_count(*, name: str | None = None) -> int:
    """Exact item count by a full scan; DescribeTable's count is approximate."""
    paginator = client().get_paginator("scan")
    return sum(page["Count"] for page in paginator.paginate(TableName=name or table_name(), Select="COUNT"))


def stream_arn() -> str:
    """The table's current stream ARN."""
    table = call("describe_table", TableName=table_name())["Table"]
    arn = table.get("LatestStreamArn")
    if not arn or not table.get("StreamSpecification", {}).get("StreamEnabled"):
        raise StoreUnavailable(f"Table {table_name()} has no enabled stream; run manage.py init_dynamodb")
    return arn



def table_item_count_approx() -> int:
    """DescribeTable's item count: cheap, but refreshed only about every six
    hours on AWS. For progress bars, never for decisions."""
    return client().describe_table(TableName=table_name())["Table"].get("ItemCount", 0)
