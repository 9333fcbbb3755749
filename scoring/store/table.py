"""The table itself: its definition, creation, Time to Live and stream."""

from scoring.store.base import StoreError, StoreUnavailable, call, client, errors_mapped, paginate, table_name
from scoring.store.keys import GSI_LEADERBOARD, GSI_PLAYER_SCORES, PURGE_AT


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
    """Create the table with its stream and Time to Live if missing.
    Returns (stream ARN, created).

    Idempotent: an existing table is left alone, except that a disabled
    stream or TTL is switched on, because the product depends on both.
    """
    name = name or table_name()
    created = False
    try:
        call("create_table", **table_definition(name))
        created = True
    except StoreError as exc:
        if exc.code != "ResourceInUseException":
            raise
    with errors_mapped("waiting for the table"):
        client().get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    description = call("describe_table", TableName=name)["Table"]
    if not description.get("StreamSpecification", {}).get("StreamEnabled"):
        call("update_table", TableName=name,
             StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        description = call("describe_table", TableName=name)["Table"]
    ttl_ensure(name=name)
    return description["LatestStreamArn"], created


def ttl_ensure(*, name: str | None = None) -> None:
    """Switch on Time to Live on ``purge_at`` unless it is on (or on its way).
    DynamoDB deletes an item some time, typically within days, after the
    epoch second in that attribute; items without it never expire."""
    name = name or table_name()
    if ttl_attribute(name=name) != PURGE_AT:  # on another attribute, DynamoDB refuses: a StoreError says so
        call("update_time_to_live", TableName=name,
             TimeToLiveSpecification={"Enabled": True, "AttributeName": PURGE_AT})


def ttl_attribute(*, name: str | None = None) -> str | None:
    """The attribute TTL is enabled on, or None."""
    ttl = call("describe_time_to_live", TableName=name or table_name())["TimeToLiveDescription"]
    return ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None


def table_delete(*, name: str) -> None:
    call("delete_table", TableName=name)


def table_item_count(*, name: str | None = None) -> int:
    """Exact item count by a full scan; DescribeTable's count is approximate."""
    return sum(page["Count"] for page in paginate("scan", TableName=name or table_name(), Select="COUNT"))


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
    return call("describe_table", TableName=table_name())["Table"].get("ItemCount", 0)
