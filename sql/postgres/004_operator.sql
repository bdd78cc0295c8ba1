-- What operators and services in other languages need (version 4).
-- Additive only: a relay of an earlier version runs its own statements on
-- the upgraded table unchanged (it leaves parked_at NULL, which the
-- operator commands read as "not recorded"), so relays can be upgraded one
-- at a time while others keep running.

-- When Finish parked the row (NULL: not parked, or parked by a relay before
-- version 4). Set only when a row is parked, so marking a row published
-- writes nothing more than before.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;

-- The parked rows, for the operator commands' counts and lists (status,
-- parked, requeue, purge). Parked rows are rare, and a row enters this
-- index only when it is parked: publishing or marking a row never touches
-- it. Like every migration this runs in one transaction and reads the table
-- once while it blocks inserts; on a large outbox, create it beforehand with
-- CREATE INDEX CONCURRENTLY under this name.
CREATE INDEX IF NOT EXISTS outbox_parked_id ON outbox (id) WHERE state = 'parked';

-- outbox_headers_bytea(key, value, key, value, ...): the headers column's
-- format (dispatch::EncodeHeaders): per header, the key's length as 4 bytes
-- little-endian, the key, the value's length as 4 bytes little-endian, the
-- value. Binary keys and values. No arguments after VARIADIC (an empty
-- array, or NULL) give no headers.
CREATE OR REPLACE FUNCTION outbox_headers_bytea(VARIADIC pairs bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n integer := coalesce(array_length(pairs, 1), 0);
  encoded bytea := ''::bytea;
  part bytea;
  length_be bytea;
  i integer;
BEGIN
  IF n % 2 <> 0 THEN
    RAISE EXCEPTION 'outbox_headers: % arguments given; expected key, value pairs (an even number: key, value, key, value, ...)', n
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR i IN 1 .. n LOOP
    part := pairs[array_lower(pairs, 1) + i - 1];
    IF part IS NULL THEN
      RAISE EXCEPTION 'outbox_headers: argument % (the % of header %) is NULL; allowed: any text, '''' for an empty one',
        i, CASE WHEN i % 2 = 1 THEN 'key' ELSE 'value' END, (i + 1) / 2
        USING ERRCODE = 'null_value_not_allowed';
    END IF;
    length_be := int4send(octet_length(part));
    encoded := encoded || substring(length_be FROM 4 FOR 1) || substring(length_be FROM 3 FOR 1)
                       || substring(length_be FROM 2 FOR 1) || substring(length_be FROM 1 FOR 1)
                       || part;
  END LOOP;
  RETURN encoded;
END
$$;

-- outbox_headers(key, value, key, value, ...): the same for text keys and
-- values, each written as its UTF-8 bytes. What a service in any language
-- puts in its INSERT:
--   INSERT INTO outbox (key, topic, payload, headers)
--   VALUES ('order-42', 'orders', convert_to('{"total": 12}', 'UTF8'),
--           outbox_headers('event-type', 'OrderPaid', 'trace-id', 'abc'));
CREATE OR REPLACE FUNCTION outbox_headers(VARIADIC pairs text[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN outbox_headers_bytea(VARIADIC ARRAY(
    SELECT convert_to(p, 'UTF8') FROM unnest(pairs) WITH ORDINALITY AS t(p, i) ORDER BY i));
END
$$;
