"""The sharded leaderboard index (GSI1) and the parallel scan of totals,
against a real moto server: each shard's top N merged, the migration of
tables written with the unsharded key, and rebuild_leaderboard's progress."""

import threading
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from scoring import ranking, selectors, store
from scoring.domain import PlayerTotal, Submission
from tests.waiting import wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]


def total(player_id: str, points: int, *, reached: int = 1_000, version: int = 1,
          listed: bool = True) -> PlayerTotal:
    return PlayerTotal(player_id=player_id, player_name=player_id.upper(), total=points, version=version,
                       reached_at_ms=reached, on_leaderboard=listed)


def field() -> list[PlayerTotal]:
    """Players with spread totals, ties on total (who got there first wins)
    and ties on both (the player id decides, as on the Redis boards)."""
    totals = [total(f"p{i:03d}", (i * 37) % 50 + 1, reached=1_000 + i % 3) for i in range(60)]
    totals += [total("tie-a", 60, reached=500), total("tie-b", 60, reached=500), total("tie-early", 60, reached=400)]
    totals.append(total("nobody", 0, listed=False))  # rejections only: has a TOTAL, no rank
    return totals


def put_totals(totals: list[PlayerTotal], *, gsi1pk: str | None = None, shards: int | None = None) -> None:
    """Write TOTAL items as the product does, or in an older table's shape:
    every listed one under ``gsi1pk`` (the unsharded index was "LEADERBOARD")."""
    items = [store.total_to_item(t, index_shards=shards) for t in totals]
    if gsi1pk:
        for item in items:
            if "GSI1PK" in item:
                item["GSI1PK"] = {"S": gsi1pk}
    store.items_put_many(items)


def raw_gsi1pk(player_id: str) -> str | None:
    item = store.call("get_item", TableName=store.table_name(), Key=store.total_key(player_id),
                      ConsistentRead=True)["Item"]
    return item.get("GSI1PK", {}).get("S")


def expected_top(totals: list[PlayerTotal], n: int) -> list[tuple[int, str, int]]:
    listed = [t for t in totals if t.on_leaderboard]
    listed.sort(key=lambda t: (t.total, -t.reached_at_ms, t.player_id), reverse=True)
    return [(rank, t.player_id, t.total) for rank, t in enumerate(listed[:n], start=1)]


def top(n: int, **kwargs) -> list[tuple[int, str, int]]:
    return [(e.rank, e.player_id, e.total) for e in store.leaderboard_top(limit=n, **kwargs)]


def partition(gsi1pk: str) -> list[dict]:
    return store.call("query", TableName=store.table_name(), IndexName=store.GSI_LEADERBOARD,
                      KeyConditionExpression="GSI1PK = :pk",
                      ExpressionAttributeValues={":pk": {"S": gsi1pk}})["Items"]


# --- the shards ----------------------------------------------------------------


def test_a_players_shard_never_changes():
    # The key of every listed TOTAL already written: a different hash would
    # strand them in shards the reads no longer look at.
    assert [store.leaderboard_shard(p, shards=10) for p in ("p1", "ada", "player-0000042")] == [7, 2, 5]
    assert store.leaderboard_pk("p1", shards=4) == "LEADERBOARD#3"


def test_totals_are_listed_in_their_players_shard_and_spread_over_all(settings):
    settings.LEADERBOARD_INDEX_SHARDS = 4
    totals = field()
    put_totals(totals)
    for t in totals:
        assert raw_gsi1pk(t.player_id) == (store.leaderboard_pk(t.player_id, shards=4) if t.on_leaderboard else None)
    sizes = [len(partition(f"LEADERBOARD#{n}")) for n in range(4)]
    assert sum(sizes) == len(totals) - 1 and min(sizes) >= 5, sizes  # 63 players: none of 4 shards near empty
    assert partition("LEADERBOARD") == []


def test_the_merged_top_n_is_the_whole_boards_top_n(settings):
    settings.LEADERBOARD_INDEX_SHARDS = 4
    totals = field()
    put_totals(totals)
    assert top(10) == expected_top(totals, 10)
    assert top(1000) == expected_top(totals, 1000)  # fewer listed than asked: all of them, "nobody" left out
    assert top(10)[:3] == [(1, "tie-early", 60), (2, "tie-b", 60), (3, "tie-a", 60)]


@pytest.mark.usefixtures("redis_url")
def test_the_index_ranks_exactly_as_the_redis_boards_do(settings):
    settings.LEADERBOARD_INDEX_SHARDS = 3
    totals = field()
    put_totals(totals)
    ranking.boards_rebuild(store.totals_scan())
    boards, _ = ranking.top("all", 25)
    assert top(25) == [(e.rank, e.player_id, e.total) for e in boards]


def test_without_redis_the_all_time_board_is_the_merged_index(settings):
    settings.LEADERBOARD_INDEX_SHARDS = 5
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    totals = field()
    put_totals(totals)
    entries = selectors.leaderboard_top(window="all", limit=5)
    assert [(e["rank"], e["player_id"], e["total"]) for e in entries] == expected_top(totals, 5)


def test_a_page_of_a_shard_is_read_to_the_limit_when_dynamodb_stops_it_short(settings, monkeypatch):
    # DynamoDB ends a Query page at 1 MB, before the Limit; the read asks
    # for the rest. Shown with pages of 2 items.
    settings.LEADERBOARD_INDEX_SHARDS = 2
    totals = field()
    put_totals(totals)
    real_call = store.leaderboard.call

    def short_pages(method, **kwargs):
        return real_call(method, **{**kwargs, "Limit": min(2, kwargs["Limit"])})

    monkeypatch.setattr(store.leaderboard, "call", short_pages)
    assert top(7) == expected_top(totals, 7)


# --- migrating an older table -----------------------------------------------------


def test_migrating_an_unsharded_table_moves_every_listed_total_and_the_top_n_stays(settings):
    settings.LEADERBOARD_INDEX_SHARDS = 4
    totals = field()
    put_totals(totals, gsi1pk="LEADERBOARD")
    before = top(10)
    assert before == expected_top(totals, 10)  # read from the old partition until it is migrated

    dry = store.leaderboard_index_migrate(dry_run=True, segments=3)
    assert (dry.read, dry.moved, dry.in_place) == (63, 63, 0)
    assert len(partition("LEADERBOARD")) == 63  # a dry run writes nothing

    result = store.leaderboard_index_migrate(segments=3)
    assert (result.read, result.moved, result.in_place, result.changed) == (63, 63, 0, 0)
    assert partition("LEADERBOARD") == []
    for t in totals:
        assert raw_gsi1pk(t.player_id) == (store.leaderboard_pk(t.player_id, shards=4) if t.on_leaderboard else None)
    assert top(10) == before
    # Only the key moved: every TOTAL is otherwise as it was.
    assert sorted(store.totals_scan(), key=lambda t: t.player_id) == sorted(totals, key=lambda t: t.player_id)

    again = store.leaderboard_index_migrate(segments=3)
    assert (again.read, again.moved, again.in_place) == (63, 0, 63)


def test_changing_the_shard_count_and_migrating_keeps_the_top_n(settings):
    totals = field()
    put_totals(totals, shards=4)
    settings.LEADERBOARD_INDEX_SHARDS = 7
    result = store.leaderboard_index_migrate(segments=2)
    assert result.moved + result.in_place == 63 and result.moved > 0
    for t in (t for t in totals if t.on_leaderboard):
        assert raw_gsi1pk(t.player_id) == store.leaderboard_pk(t.player_id, shards=7)
    assert top(10) == expected_top(totals, 10)


def moving_after(monkeypatch, player_id: str, write) -> None:
    """Run ``write`` (a consumer's TOTAL write) after the migration read the
    player's item and before it moves it: the race a running consumer makes."""
    real = store.leaderboard.leaderboard_index_move

    def then_write(item, *, shards):
        found = real(item, shards=shards)
        if item["player_id"]["S"] == player_id:
            write()
        return found

    monkeypatch.setattr(store.leaderboard, "leaderboard_index_move", then_write)


def test_a_total_a_consumer_rewrites_during_the_migration_is_not_undone(settings, monkeypatch):
    settings.LEADERBOARD_INDEX_SHARDS = 4
    put_totals([total("a", 10), total("b", 20)], gsi1pk="LEADERBOARD")
    # An upgraded consumer folds a batch for "a": a newer total, keyed right.
    moving_after(monkeypatch, "a", lambda: store.total_put_if_version(total=total("a", 90, version=2),
                                                                      expected_version=1))
    result = store.leaderboard_index_migrate(segments=1)
    assert (result.moved, result.changed) == (1, 1)
    [current] = store.totals_get_many(player_ids=["a"]).values()
    assert (current.total, current.version) == (90, 2)
    assert raw_gsi1pk("a") == store.leaderboard_pk("a", shards=4)
    assert top(2) == [(1, "a", 90), (2, "b", 20)]


def test_a_total_an_old_consumer_rewrites_during_the_migration_is_moved_with_its_new_total(settings, monkeypatch):
    settings.LEADERBOARD_INDEX_SHARDS = 4
    put_totals([total("a", 10)], gsi1pk="LEADERBOARD")
    # A consumer not yet upgraded still writes the unsharded key.
    moving_after(monkeypatch, "a", lambda: put_totals([total("a", 90, version=2)], gsi1pk="LEADERBOARD"))
    result = store.leaderboard_index_migrate(segments=1)
    assert (result.moved, result.changed) == (1, 0)
    [current] = store.totals_get_many(player_ids=["a"]).values()
    assert (current.total, current.version, raw_gsi1pk("a")) == (90, 2, store.leaderboard_pk("a", shards=4))
    # The consumer's next write goes through its version check as usual.
    assert store.total_put_if_version(total=total("a", 95, version=3), expected_version=2)


def test_the_migration_command_dry_runs_reports_progress_and_is_idempotent(settings):
    settings.LEADERBOARD_INDEX_SHARDS = 4
    put_totals(field(), gsi1pk="LEADERBOARD")
    out, err = StringIO(), StringIO()
    call_command("migrate_leaderboard_index", "--dry-run", "--segments", "2", "--progress-every", "0",
                 stdout=out, stderr=err)
    assert "would move 63 of 63 listed total(s) into 4 shard(s)" in out.getvalue()
    assert "read 63 listed totals (2 segments) ... would move 63" in err.getvalue()
    assert len(partition("LEADERBOARD")) == 63

    out = StringIO()
    call_command("migrate_leaderboard_index", "--no-progress", stdout=out, stderr=StringIO())
    assert "moved 63 of 63 listed total(s)" in out.getvalue()
    out = StringIO()
    call_command("migrate_leaderboard_index", "--no-progress", stdout=out, stderr=StringIO())
    assert "moved 0 of 63 listed total(s) into 4 shard(s); 63 already in place" in out.getvalue()


@pytest.mark.parametrize(("args", "message"), [(["--segments", "0"], "--segments must be >= 1"),
                                               (["--segments", "65"], "--segments must be at most 64"),
                                               (["--max-rate", "-1"], "--max-rate must be >= 0")])
def test_the_migration_command_refuses_bad_arguments_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("migrate_leaderboard_index", *args)


# --- the parallel scan ------------------------------------------------------------


def scan_segment(segment: int, of: int) -> set[str]:
    items = store.call("scan", TableName=store.table_name(), Segment=segment, TotalSegments=of)["Items"]
    return {i["PK"]["S"] for i in items}


def test_moto_splits_a_scan_into_disjoint_segments():
    # What the exactly-once test below rests on: each segment is a part.
    put_totals([total(f"p{i:03d}", i + 1) for i in range(120)])
    parts = [scan_segment(s, 4) for s in range(4)]
    assert all(parts) and sum(map(len, parts)) == len(set().union(*parts)) == 120


def test_the_parallel_scan_reads_every_total_exactly_once_and_reports_progress():
    # ~300 a segment: more than one page each (base.SEGMENT_PAGE_ITEMS).
    totals = [total(f"p{i:04d}", i + 1) for i in range(1_200)]
    put_totals(totals)
    store.score_put(submission=Submission(id="s1", player_id="p0001", player_name="P", task="easy",
                                          submitted_at=datetime.now(UTC)))
    seen: list[int] = []
    read = [t.player_id for t in store.totals_scan(segments=4, progress=seen.append)]
    assert sorted(read) == [t.player_id for t in totals]  # every one, once; the SCORE item left out
    assert seen == sorted(seen) and seen[-1] == 1_200 and len(seen) > 4  # pages, not one per segment


def test_a_failing_segment_fails_the_scan():
    with override_settings(DYNAMODB_TABLE="no-such-table"), pytest.raises(store.StoreUnavailable):
        list(store.totals_scan(segments=4))


def test_a_scan_left_early_stops_its_segments():
    put_totals([total(f"p{i:03d}", i + 1) for i in range(50)])
    scan = store.totals_scan(segments=4)
    next(scan)
    scan.close()
    wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("scan-")],
               timeout=10, message="scan threads still running after the scan was closed")


# --- rebuild_leaderboard ------------------------------------------------------------


@pytest.mark.usefixtures("redis_url")
def test_rebuild_leaderboard_reports_what_it_read_and_loaded():
    put_totals([total(f"p{i:04d}", i + 1) for i in range(2_100)])  # two chunks of the board loader
    out, err = StringIO(), StringIO()
    call_command("rebuild_leaderboard", "--segments", "3", "--progress-every", "0", stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    assert "loaded 2,000 into the boards" in "\n".join(lines)
    assert lines[-1] == "read 2,100 totals (3 segments) ... loaded 2,100 into the boards"
    assert all(line.startswith("read ") and "(3 segments)" in line for line in lines)
    assert "Rebuilt the leaderboards from 2,100 player total(s)" in out.getvalue()
    assert "(3 scan segments)" in out.getvalue()
    assert ranking.top("all", 1)[0][0].player_id == "p2099"


@pytest.mark.usefixtures("redis_url")
def test_rebuild_leaderboard_refuses_to_run_while_another_rebuild_holds_the_lock():
    with ranking.rebuild_lock() as held:
        assert held
        with pytest.raises(CommandError, match="Another process is rebuilding the boards"):
            call_command("rebuild_leaderboard", "--no-progress")


@pytest.mark.parametrize(("args", "message"), [(["--segments", "0"], "--segments must be a whole number from 1 to 64"),
                                               (["--segments", "65"], "--segments must be a whole number from 1 to 64"),
                                               (["--progress-every", "-2"], "--progress-every must be >= 0")])
def test_rebuild_leaderboard_refuses_bad_arguments_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("rebuild_leaderboard", *args)


@pytest.mark.usefixtures("redis_url")
def test_a_rebuild_that_fails_part_way_leaves_the_boards_for_a_consumer_to_heal(monkeypatch):
    from scoring.live import LiveUpdater

    monkeypatch.setattr(ranking, "REBUILD_CHUNK", 20)  # loaded in chunks of 20: the outage comes mid-load
    put_totals([total(f"p{i:04d}", i + 1) for i in range(70)])
    call_command("rebuild_leaderboard", "--no-progress", stdout=StringIO())
    assert store.boards_stale_get() is None  # a rebuild that finished leaves no marker
    real_scan = store.totals_scan

    def scan_then_outage(**kwargs):
        # DynamoDB stops answering after the first pages, as the store reports an outage.
        for n, found in enumerate(real_scan(**kwargs)):
            if n == 50:
                raise store.StoreUnavailable("DynamoDB Scan failed: ThrottlingException", code="ThrottlingException")
            yield found

    monkeypatch.setattr(store, "totals_scan", scan_then_outage)
    with pytest.raises(CommandError, match="The boards are marked stale: a running consumer rebuilds them"):
        call_command("rebuild_leaderboard", "--no-progress", stdout=StringIO())
    assert ranking.client().zcard(ranking.board_key("all")) == 40  # cleared, and only part loaded back
    assert store.boards_stale_get() is not None
    monkeypatch.setattr(store, "totals_scan", real_scan)
    assert LiveUpdater(push=lambda messages: None).heal_if_stale()
    assert ranking.top("all", 1)[0][0].player_id == "p0069"
    assert ranking.entry("all", "p0000").rank == 70
    assert store.boards_stale_get() is None


@pytest.mark.usefixtures("redis_url")
def test_a_rebuild_that_cannot_reach_dynamodb_leaves_the_boards_as_they_were():
    put_totals([total("p1", 10), total("p2", 20)])
    call_command("rebuild_leaderboard", "--no-progress", stdout=StringIO())
    with override_settings(DYNAMODB_TABLE="no-such-table"), \
            pytest.raises(CommandError, match="The boards were not touched"):
        call_command("rebuild_leaderboard", "--no-progress", stdout=StringIO())
    assert [entry.player_id for entry in ranking.top("all", 2)[0]] == ["p2", "p1"]
