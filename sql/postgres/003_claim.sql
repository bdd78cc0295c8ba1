-- Cheaper claims (version 3). A claim reads each locked key's pending rows
-- up to its first row that waits for a retry (retry_at in the future); this
-- index holds only the pending rows with a retry time, normally none or a
-- few, so that probe costs one lookup per key, not a walk over the key's
-- rows. Additive: a relay of an earlier version runs its own statements on
-- the table unchanged. Like every migration it runs in one transaction, so
-- CREATE INDEX blocks inserts into outbox while it reads the table once; on
-- a large outbox, create the index beforehand with CREATE INDEX
-- CONCURRENTLY under this name (IF NOT EXISTS then leaves it as it is).
CREATE INDEX IF NOT EXISTS outbox_pending_retry ON outbox (key, id)
  WHERE state = 'pending' AND retry_at IS NOT NULL;
