"""The EventBridge publisher against moto's EventBridge and SQS, over HTTP."""

import json
import uuid

import boto3
import pytest

from scoring import events
from scoring.processing import DomainEvent

REGION = "us-east-1"


def domain_event(i: int) -> DomainEvent:
    applied = i % 3 != 0
    return DomainEvent(
        type="ScoreApplied" if applied else "ScoreRejected",
        submission_id=f"sub-{i}", player_id="p-ada", player_name="Ada", task="warm-up-sums",
        points=10 if applied else None, total=10 * i if applied else None,
        error=None if applied else "Task 'warm-up-sums' no longer exists.",
        submitted_at="2026-11-26T12:00:00+00:00", processed_at="2026-11-26T12:00:01+00:00",
    )


@pytest.fixture
def events_client(moto_server):
    return boto3.client("events", endpoint_url=moto_server, region_name=REGION)


@pytest.fixture
def bus_to_queue(moto_server, events_client):
    """(bus name, queue URL): a new bus whose rule sends our events to a new SQS queue."""
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    name = f"scores-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.create_event_bus(Name=name)
    events_client.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["gamescores.scoring"]}))
    events_client.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    yield name, queue_url
    events_client.remove_targets(Rule=name, EventBusName=name, Ids=["queue"])
    events_client.delete_rule(Name=name, EventBusName=name)
    events_client.delete_event_bus(Name=name)
    sqs.delete_queue(QueueUrl=queue_url)


def drain(moto_server, queue_url) -> list[dict]:
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
    return messages


class CountingClient:
    """A real client that records the entries of every PutEvents call, and can
    rewrite responses to mark entries as refused."""

    def __init__(self, real, refuse=lambda call, entries: set(), code="ThrottlingException"):
        self.real, self.refuse, self.calls, self.code = real, refuse, [], code

    def put_events(self, *, Entries):
        self.calls.append([json.loads(e["Detail"])["submission_id"] for e in Entries])
        response = self.real.put_events(Entries=Entries)
        refused = self.refuse(len(self.calls), self.calls[-1])
        for entry, sub_id in zip(response["Entries"], self.calls[-1], strict=True):
            if sub_id in refused:
                entry.clear()
                entry.update(ErrorCode=self.code, ErrorMessage="Refused by the test")
        response["FailedEntryCount"] = sum(1 for e in response["Entries"] if "ErrorCode" in e)
        return response


def test_23_events_go_out_in_3_calls_and_all_reach_the_queue(moto_server, events_client, bus_to_queue):
    bus_name, queue_url = bus_to_queue
    client = CountingClient(events_client)
    sent = [domain_event(i) for i in range(23)]

    events.eventbridge_publisher(bus_name=bus_name, client=client)(sent)

    assert [len(call) for call in client.calls] == [10, 10, 3]
    received = {m["detail"]["submission_id"]: m for m in drain(moto_server, queue_url)}
    assert len(received) == 23
    for event in sent:
        message = received[event.submission_id]
        assert message["detail-type"] == event.type
        assert message["source"] == "gamescores.scoring"
        assert message["detail"] == {
            "type": event.type, "submission_id": event.submission_id, "player_id": "p-ada", "player_name": "Ada",
            "task": "warm-up-sums", "points": event.points, "total": event.total, "error": event.error,
            "submitted_at": event.submitted_at, "processed_at": event.processed_at}


def test_only_refused_entries_are_sent_again(moto_server, events_client, bus_to_queue):
    bus_name, queue_url = bus_to_queue
    client = CountingClient(events_client, refuse=lambda call, ids: {"sub-2", "sub-5"} if call == 1 else set())
    sleeps = []

    events.eventbridge_publisher(bus_name=bus_name, client=client, sleep=sleeps.append)(
        [domain_event(i) for i in range(8)])

    assert client.calls[1] == ["sub-2", "sub-5"]
    assert len(client.calls) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= events.BACKOFF_CAP_SECONDS
    # The refused pair was also accepted by moto the first time: only our
    # rewrite refused it, so the queue sees those two twice.
    assert sorted(m["detail"]["submission_id"] for m in drain(moto_server, queue_url)) == sorted(
        [f"sub-{i}" for i in range(8)] + ["sub-2", "sub-5"])


def test_entries_still_refused_after_max_attempts_raise(events_client, bus_to_queue):
    bus_name, _ = bus_to_queue
    client = CountingClient(events_client, refuse=lambda call, ids: {"sub-1", "sub-12", "sub-13"})
    sleeps = []
    publish = events.eventbridge_publisher(bus_name=bus_name, client=client, max_attempts=3, sleep=sleeps.append)

    with pytest.raises(events.EventPublishError, match=r"3 of 14 events failed .* 3 attempts .*ThrottlingException"):
        publish([domain_event(i) for i in range(14)])

    # Both chunks were tried: each three times, the retries carrying only the refused ids.
    assert client.calls == [[f"sub-{i}" for i in range(10)], ["sub-1"], ["sub-1"],
                            [f"sub-{i}" for i in range(10, 14)], ["sub-12", "sub-13"], ["sub-12", "sub-13"]]
    # Exponential backoff with full jitter: never above the cap for its attempt.
    assert all(0 <= s <= events.BACKOFF_BASE_SECONDS * 2**n for s, n in zip(sleeps, [1, 2, 1, 2], strict=True))


def test_entries_refused_for_good_fail_the_batch_rather_than_wait(events_client, bus_to_queue):
    from scoring import store

    bus_name, _ = bus_to_queue
    client = CountingClient(events_client, refuse=lambda call, ids: {"sub-1"}, code="AccessDeniedException")
    publish = events.eventbridge_publisher(bus_name=bus_name, client=client, max_attempts=2, sleep=lambda s: None)
    with pytest.raises(events.EventsRefused, match="AccessDeniedException") as refused:
        publish([domain_event(i) for i in range(3)])
    assert not isinstance(refused.value, store.StoreUnavailable)  # the failure policy's, not an outage


def test_an_unreachable_eventbridge_is_an_outage_not_the_records_fault():
    from botocore.config import Config

    from scoring import store
    from tests.conftest import free_port

    nowhere = boto3.client("events", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name=REGION,
                           config=Config(retries={"total_max_attempts": 1}, connect_timeout=1))
    publish = events.eventbridge_publisher(bus_name="any", client=nowhere)
    # A StoreUnavailable: the failure policy re-raises it and the consumer backs
    # off, instead of bisecting and dead-lettering every record of the batch.
    with pytest.raises(store.StoreUnavailable, match=r"1 of 1 events failed .*EndpointConnectionError"):
        publish([domain_event(1)])


def test_publisher_from_settings_uses_the_configured_bus_and_endpoint(moto_server, bus_to_queue, settings):
    bus_name, queue_url = bus_to_queue
    settings.DYNAMODB_ENDPOINT_URL = moto_server
    settings.EVENT_BUS_NAME = bus_name

    events.publisher_from_settings()([domain_event(1)])

    assert [m["detail"]["submission_id"] for m in drain(moto_server, queue_url)] == ["sub-1"]


def test_no_bus_configured_means_no_publisher(settings):
    settings.EVENT_BUS_NAME = None
    assert events.publisher_from_settings() is None


def test_eventbridge_and_sqs_have_endpoints_of_their_own_when_set(moto_server, bus_to_queue, settings):
    """DynamoDB Local (compose) serves DynamoDB alone: events must not go to it."""
    from scoring import store

    bus_name, queue_url = bus_to_queue
    settings.EVENT_BUS_NAME, settings.AWS_REGION = bus_name, REGION
    settings.DYNAMODB_ENDPOINT_URL = "http://127.0.0.1:1"  # DynamoDB elsewhere; nothing here serves events
    settings.EVENTBRIDGE_ENDPOINT_URL = settings.SQS_ENDPOINT_URL = moto_server
    events.publisher_from_settings()([domain_event(1)])
    assert [m["detail"]["submission_id"] for m in drain(moto_server, queue_url)] == ["sub-1"]
    assert store.sqs_client().get_queue_url(QueueName=queue_url.rsplit("/", 1)[1])["QueueUrl"].endswith(
        queue_url.rsplit("/", 1)[1])
