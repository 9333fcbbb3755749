"""All DynamoDB access and every key format. Nothing outside this package
builds a key or calls DynamoDB.

Single-table design (see docs/data-model.md):

=========  =====================  ==========  ===================================
item       PK                     SK          indexes
=========  =====================  ==========  ===================================
SCORE      SCORE#<submission id>  SCORE       GSI2: PLAYER#<id> / <submitted>#<id>
TOTAL      PLAYER#<player id>     TOTAL       GSI1: LEADERBOARD / <total>#<first>
=========  =====================  ==========  ===================================

The stream consumer filters on INSERT of PK prefix ``SCORE#``, so every other
item type is invisible to it by construction.

Callers use the package (``from scoring import store``; ``store.score_put``).
Inside it: ``base`` (clients, the one door for calls), ``keys`` (key formats
and item mapping), ``scores``, ``totals``, ``reader`` (the stream reader's
checkpoints, leases, workers and dead letters) and ``table``.
"""

from scoring.store.base import (  # noqa: F401 (the package's API)
    StoreUnavailable,
    SubmissionExists,
    client,
    items_get_many,
    items_put_many,
    sqs_client,
    streams_client,
    table_name,
)
from scoring.store.keys import (  # noqa: F401 (the package's API)
    CHECKPOINT_PREFIX,
    LEASE_PREFIX,
    SCORE_PREFIX,
    dlq_key,
    score_key,
    shard_checkpoint_key,
    shard_lease_key,
    submission_from_item,
    submission_to_item,
    total_key,
    worker_key,
    worker_registry_key,
)
from scoring.store.reader import (  # noqa: F401 (the package's API)
    Checkpoint,
    Lease,
    checkpoint_get,
    checkpoint_put,
    checkpoints_all,
    checkpoints_get_many,
    consumer_items,
    dlq_all,
    dlq_items,
    dlq_put,
    lease_acquire,
    lease_release,
    lease_take,
    leases_all,
    leases_get_many,
    worker_heartbeat,
    worker_remove,
    worker_statuses,
    workers_alive,
)
from scoring.store.scores import (  # noqa: F401 (the package's API)
    rejected_recent,
    retried_ids,
    score_get,
    score_list_for_player,
    score_put,
    score_retry,
    score_settle_failed,
    score_start_key_owner,
    scores_get_many,
    scores_put_outcomes,
    scores_scan,
)
from scoring.store.table import (  # noqa: F401 (the package's API)
    stream_arn,
    table_definition,
    table_delete,
    table_ensure,
    table_item_count,
    table_item_count_approx,
)
from scoring.store.totals import (  # noqa: F401 (the package's API)
    MAX_TOTAL_CONFLICTS,
    leaderboard_top,
    total_put_if_version,
    totals_get_many,
    totals_scan,
)

