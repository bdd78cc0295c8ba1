-- Wakes waiting dispatchers when rows are inserted (version 2).
-- A statement-level trigger sends one notification on the channel
-- dispatch_outbox per inserting statement; PostgreSQL delivers it at commit
-- (never for a rolled back transaction) and folds identical notifications of
-- one transaction into one, so a transaction costs one notification however
-- many rows it inserts. A PostgresStore LISTENs on the channel and claims at
-- once instead of polling.
-- An operator who would rather the dispatchers poll turns it off with
--   ALTER TABLE outbox DISABLE TRIGGER outbox_notify;
-- stores that connect afterwards see it disabled and poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dispatch_outbox', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
