"""Reading the table's DynamoDB Stream: shards, lineage, checkpoints, leases, filters."""
