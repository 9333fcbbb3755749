"""The DynamoDB clients, and the one door every call goes through."""

import contextlib
import functools
import queue
import threading
import time
from collections.abc import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from scoring.backoff import backoff_seconds
from scoring.domain import Submission

# Errors that mean "DynamoDB cannot take this right now"; botocore has already
# retried them (bounded, with jitter) by the time we see them.
_UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
    "LimitExceededException",  # DynamoDB Streams' throttling
}


class StoreError(Exception):
    """DynamoDB or DynamoDB Streams refused a call. ``code`` is AWS's error
    code. The subclasses say what the caller can do about it; a bare
    StoreError is a request we got wrong: a bug, not an outage."""

    service = "DynamoDB"  # what failed, as an operator's log line names it

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.code = code


class StoreUnavailable(StoreError):
    """DynamoDB is unreachable, throttling, or the table is missing: wait and
    try again."""


class ConditionFailed(StoreError):
    """A write was refused by its ConditionExpression. ``item`` is the item
    as stored, when the call asked for it back."""

    def __init__(self, message: str, *, code: str = "", item: dict | None = None):
        super().__init__(message, code=code)
        self.item = item


class IteratorExpired(StoreError):
    """A shard iterator is older than 15 minutes: get a new one from the checkpoint."""


class DataTrimmed(StoreError):
    """The records asked for are past the stream's 24 h retention."""


class SubmissionExists(Exception):
    """A SCORE item with this id is already stored."""

    def __init__(self, existing: Submission):
        super().__init__(existing.id)
        self.existing = existing


_BY_CODE = {"ExpiredIteratorException": IteratorExpired, "TrimmedDataAccessException": DataTrimmed}


@contextlib.contextmanager
def errors_mapped(what: str, *, table: str | None = None) -> Iterator[None]:
    """Turn botocore's errors raised inside the block into the store's.
    ``table``: the table the request names, for the message if it is missing."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = f"{what} failed: {code or exc}"
        # Without a table in the request (a Streams call) the missing
        # resource is a stream or a shard, which init_dynamodb cannot help.
        if code == "ResourceNotFoundException" and table:
            init = "manage.py init_dynamodb" + ("" if table == settings.DYNAMODB_TABLE else f" --table {table}")
            message = f"{what} failed: table {table!r} not found ({code}); `{init}` creates it"
        if code in _UNAVAILABLE_CODES:
            raise StoreUnavailable(message, code=code) from exc
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(message, code=code, item=exc.response.get("Item")) from exc
        raise _BY_CODE.get(code, StoreError)(message, code=code) from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"{what} failed: {exc}", code=type(exc).__name__) from exc


def client():
    """The DynamoDB client for the current settings (built lazily, cached)."""
    return _client(
        settings.DYNAMODB_ENDPOINT_URL,
        settings.AWS_REGION,
        settings.DYNAMODB_MAX_ATTEMPTS,
        settings.DYNAMODB_CONNECT_TIMEOUT,
        settings.DYNAMODB_READ_TIMEOUT,
    )


# Connections each client keeps; a parallel scan reads each segment in a
# thread of its own, so it takes at most this many segments
# (TOTALS_SCAN_SEGMENTS and the commands' --segments are bounded by it).
MAX_POOL_CONNECTIONS = 64
SCAN_SEGMENTS_MAX = MAX_POOL_CONNECTIONS


@functools.lru_cache(maxsize=16)
def _client(endpoint_url, region, max_attempts, connect_timeout, read_timeout):
    config = Config(
        region_name=region,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        # Requests are built here, not from user input, and DynamoDB validates
        # them anyway; skipping botocore's client-side check is ~0.2 ms a call
        # on the submit path (bench/api_submit.py).
        parameter_validation=False,
    )
    return boto3.session.Session().client("dynamodb", endpoint_url=endpoint_url, config=config)


# A full-table Scan page (1 MB) can take seconds to read back: moto walks
# the whole table for each, and a busy DynamoDB table is slow to fill one.
# Scans are ops paths (rebuilds, previews, re-scoring), never the submit
# path, so they read with this longer timeout.
SCAN_READ_TIMEOUT = 30.0


def scan_client():
    """The DynamoDB client for full scans: as ``client()``, with a read
    timeout of at least SCAN_READ_TIMEOUT."""
    return _client(
        settings.DYNAMODB_ENDPOINT_URL,
        settings.AWS_REGION,
        settings.DYNAMODB_MAX_ATTEMPTS,
        settings.DYNAMODB_CONNECT_TIMEOUT,
        max(settings.DYNAMODB_READ_TIMEOUT, SCAN_READ_TIMEOUT),
    )


def _dynamodb():
    return client()  # call()'s own ``client`` argument hides the function there


def streams_client():
    """The DynamoDB Streams client for the current settings (cached)."""
    return _streams_client(settings.DYNAMODB_ENDPOINT_URL, settings.AWS_REGION)


@functools.lru_cache(maxsize=16)
def _streams_client(endpoint_url, region):
    config = Config(region_name=region, retries={"total_max_attempts": 5, "mode": "standard"},
                    connect_timeout=2, read_timeout=10)
    return boto3.session.Session().client("dynamodbstreams", endpoint_url=endpoint_url, config=config)


def sqs_client():
    """SQS, for the consumer's on-failure destination when one is configured."""
    return _sqs_client(settings.SQS_ENDPOINT_URL or settings.DYNAMODB_ENDPOINT_URL, settings.AWS_REGION)


@functools.lru_cache(maxsize=4)
def _sqs_client(endpoint_url, region):
    return boto3.session.Session().client("sqs", endpoint_url=endpoint_url, region_name=region)


def table_name() -> str:
    return settings.DYNAMODB_TABLE


def call(method: str, *, client=None, **kwargs) -> dict:
    """Call DynamoDB (or ``client``, any boto3 client), through the error mapping."""
    with errors_mapped(f"DynamoDB {method}", table=_table_named(kwargs)):
        return getattr(client or _dynamodb(), method)(**kwargs)


def _table_named(request: dict) -> str | None:
    """The table a request names: its TableName, or a batch call's one table."""
    return request.get("TableName") or next(iter(request.get("RequestItems") or {}), None)


def call_if(method: str, **kwargs) -> bool:
    """A conditional write through call(): True if it was made, False if its
    ConditionExpression refused it."""
    try:
        call(method, **kwargs)
    except ConditionFailed:
        return False
    return True


def paginate(method: str, *, client=None, **kwargs) -> Iterator[dict]:
    """Every page of a paginated call (Scan, Query), through the error
    mapping: botocore fetches the next page inside the iteration."""
    with errors_mapped(f"DynamoDB {method}", table=_table_named(kwargs)):
        yield from (client or _dynamodb()).get_paginator(method).paginate(**kwargs)


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_SEGMENT_DONE = object()

# Items a page of a segmented Scan asks for. Segments read at once share
# the server: moto (one process, its time going into serializing the items
# it returns) answers four 1 MB pages at once in over SCAN_READ_TIMEOUT, so
# a page is kept small enough to come back in time however many run. On
# AWS, 250 items of ~1 KB is a quarter of a full page: more requests, the
# same read units.
SEGMENT_PAGE_ITEMS = 250


def scan_parallel(*, segments: int, client=None, **kwargs) -> Iterator[list[dict]]:
    """Every page of a Scan (its items), read as ``segments`` parallel
    segments (``Segment``/``TotalSegments``), one thread each, and yielded
    in the caller's thread as they arrive, in no particular order.

    Threads share the one boto3 client (clients are thread-safe; resources
    are not). A bounded queue holds what the caller has not taken yet, so
    a slow caller slows the reads instead of filling memory. A segment's
    error is raised in the caller; closing the iterator early stops the
    other segments after their page in flight.
    """
    if segments <= 1:
        for page in paginate("scan", client=client, **kwargs):
            yield page.get("Items", [])
        return
    pages: queue.Queue = queue.Queue(maxsize=2 * segments)
    stop = threading.Event()

    def put(thing) -> bool:
        while not stop.is_set():
            try:
                pages.put(thing, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(segment: int) -> None:
        try:
            for page in paginate("scan", client=client, Segment=segment, TotalSegments=segments,
                                 Limit=SEGMENT_PAGE_ITEMS, **kwargs):
                if not put(page.get("Items", [])):
                    return
        except BaseException as exc:  # noqa: BLE001 (handed to the caller, which raises it)
            put(_Failed(exc))
        finally:
            put(_SEGMENT_DONE)

    for segment in range(segments):
        threading.Thread(target=read, args=(segment,), name=f"scan-{segment}-of-{segments}", daemon=True).start()
    try:
        done = 0
        while done < segments:
            got = pages.get()
            if got is _SEGMENT_DONE:
                done += 1
            elif isinstance(got, _Failed):
                raise got.error
            else:
                yield got
    finally:
        stop.set()


def query_all(pk: str, sk_prefix: str) -> Iterator[dict]:
    """Every item of one partition (with an SK prefix, if given), consistent.
    A Query: moto answers it by walking the whole table, so ops pages and
    tests only, never a hot path."""
    values = {":pk": {"S": pk}}
    condition = "PK = :pk"
    if sk_prefix:
        condition += " AND begins_with(SK, :sk)"
        values[":sk"] = {"S": sk_prefix}
    for page in paginate("query", TableName=table_name(), KeyConditionExpression=condition,
                         ExpressionAttributeValues=values, ConsistentRead=True):
        yield from page.get("Items", [])


def items_get_many(keys: list[dict], *, attributes: tuple[str, ...] = ()) -> list[dict]:
    """Raw items for these keys, missing ones left out: BatchGetItem in pages
    of 100, consistent reads, retrying unprocessed keys. ``attributes``: only
    these (a ProjectionExpression; the read costs the same capacity, but
    DynamoDB sends, and the caller parses, only them)."""
    items: list[dict] = []
    projection = {}
    if attributes:
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        projection = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    for start in range(0, len(keys), 100):
        request = {table_name(): {"Keys": keys[start:start + 100], "ConsistentRead": True, **projection}}
        for response in batch_until_done("batch_get_item", request, unprocessed="UnprocessedKeys"):
            items += response.get("Responses", {}).get(table_name(), [])
    return items


def batch_until_done(method: str, request: dict, *, unprocessed: str) -> Iterator[dict]:
    """Call a batch operation, resending what DynamoDB left unprocessed
    (with backoff), up to 10 times; yields each response."""
    for attempt in range(10):
        response = call(method, RequestItems=request)
        yield response
        request = response.get(unprocessed) or {}
        if not request:
            return
        time.sleep(backoff_seconds(attempt, base=0.05, cap=1.0))
    raise StoreUnavailable(f"{method} left requests unprocessed after 10 attempts")


def items_put_many(items: list[dict], *, delete_keys: list[dict] = ()) -> None:
    """BatchWriteItem puts (and deletes, by key) in pages of 25, retrying
    unprocessed items."""
    writes = [{"PutRequest": {"Item": item}} for item in items]
    writes += [{"DeleteRequest": {"Key": key}} for key in delete_keys]
    for start in range(0, len(writes), 25):
        request = {table_name(): writes[start:start + 25]}
        for _ in batch_until_done("batch_write_item", request, unprocessed="UnprocessedItems"):
            pass

