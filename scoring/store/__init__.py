"""All DynamoDB access and every key format. Nothing outside this package
builds a key or calls DynamoDB.

Single-table design (see docs/data-model.md):

=========  =====================  ==========  ===================================
item       PK                     SK          indexes
=========  =====================  ==========  ===================================
SCORE      SCORE#<submission id>  SCORE       GSI2: PLAYER#<id> / <submitted>#<id>
TOTAL      PLAYER#<player id>     TOTAL       GSI1: LEADERBOARD#<shard> / <total>#<first>
=========  =====================  ==========  ===================================

GSI1 is sharded by player (``keys.leaderboard_shard``): ``leaderboard`` reads
the top N of every shard and merges them.

The stream processor filters on INSERT of PK prefix ``SCORE#``, so every
other item type is invisible to it by construction.

Callers use the package (``from scoring import store``; ``store.score_put``).
Inside it: ``base`` (clients, the one door for calls and its errors),
``keys`` (key formats and every item<->object mapping), ``scores``,
``totals``, ``leaderboard`` (the sharded index), ``stream_state`` (the stream reader's checkpoints, leases,
workers and dead letters), ``streams`` (DynamoDB Streams calls) and
``table``. Nothing outside the package imports botocore: its errors arrive
as the StoreError family below.
"""

from scoring.store.base import (  # noqa: F401 (the package's API)
    SCAN_SEGMENTS_MAX,
    ConditionFailed,
    DataTrimmed,
    IteratorExpired,
    StoreError,
    StoreUnavailable,
    SubmissionExists,
    call,
    client,
    items_get_many,
    items_put_many,
    scan_parallel,
    sqs_client,
    streams_client,
    table_name,
)
from scoring.store.keys import (  # noqa: F401 (the package's API)
    CHECKPOINT_PREFIX,
    GSI_LEADERBOARD,
    LEADERBOARD_PK,
    LEASE_PREFIX,
    PURGE_AT,
    SCORE_PREFIX,
    BoardsStale,
    Checkpoint,
    DeadLetter,
    Lease,
    dlq_key,
    leaderboard_partitions,
    leaderboard_pk,
    leaderboard_shard,
    score_key,
    shard_checkpoint_key,
    shard_lease_key,
    submission_from_item,
    submission_id_of_record,
    submission_to_item,
    total_from_item,
    total_key,
    total_to_item,
    worker_key,
    worker_registry_key,
)
from scoring.store.leaderboard import IndexMigration, leaderboard_index_migrate, leaderboard_top  # noqa: F401
from scoring.store.scores import (  # noqa: F401 (the package's API)
    adjustment_put,
    held_list,
    ledger_for_player,
    player_score_ids,
    rejected_recent,
    retry_states,
    score_get,
    score_list_for_player,
    score_put,
    score_retry,
    score_review,
    score_settle_failed,
    score_start_key_owner,
    scores_get_many,
    scores_put_outcomes,
    scores_scan,
    scores_settled,
    scores_status_many,
)
from scoring.store.stream_state import (  # noqa: F401 (the package's API)
    CLOSED_SHARD_RETENTION_DAYS,
    checkpoint_get,
    checkpoint_put,
    checkpoints_all,
    checkpoints_get_many,
    dlq_all,
    dlq_items,
    dlq_put,
    dlq_send,
    lease_acquire,
    lease_release,
    lease_replace,
    leases_all,
    leases_get_many,
    stream_items,
    worker_heartbeat,
    worker_remove,
    worker_statuses,
    workers_alive,
)
from scoring.store.streams import (  # noqa: F401 (the package's API)
    GET_RECORDS_LIMIT,
    Shard,
    records_get,
    shard_iterator,
    shards_describe,
)
from scoring.store.table import (  # noqa: F401 (the package's API)
    stream_arn,
    table_definition,
    table_delete,
    table_ensure,
    table_item_count,
    table_item_count_approx,
    ttl_attribute,
    ttl_ensure,
)
from scoring.store.totals import (  # noqa: F401 (the package's API)
    MAX_TOTAL_CONFLICTS,
    boards_stale_clear,
    boards_stale_get,
    boards_stale_mark,
    total_change,
    total_put_if_version,
    totals_get_many,
    totals_scan,
)

