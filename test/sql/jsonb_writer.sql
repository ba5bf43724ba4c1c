-- Ingest writes jsonb itself, straight from its parse of the payload. Each case: is the result
-- byte for byte what jsonb_in makes of the same text?
CREATE EXTENSION IF NOT EXISTS cdp;
SELECT label, cdp_internal.jsonb_matches_jsonb_in(doc) AS same_bytes
FROM (VALUES
    ('empty object', '{}'),
    ('empty array', '[]'),
    ('scalars at the top', '"just a string"'),
    ('number at the top', '42'),
    ('null at the top', 'null'),
    ('flat object', '{"b": 1, "a": "x", "c": true, "d": false, "e": null}'),
    ('keys of different lengths', '{"ccc": 1, "a": 2, "bb": 3, "aa": 4}'),
    ('duplicate keys: the last wins', '{"k": 1, "j": 0, "k": 2, "k": {"deep": [3]}}'),
    ('nested', '{"page": {"url": "https://shop.example/p?utm_source=x", "title": "Shoes"}, "tags": ["a", ["b", {}], []]}'),
    ('escapes and unicode', '{"q": "a \"quoted\" \\ back\nslash", "emoji": "\ud83d\ude00 ü 中"}'),
    ('integers', '{"small": 7, "negative": -12, "big": 9007199254740993, "int64max": 9223372036854775807}'),
    ('shortest-form decimals', '{"price": 19.99, "rate": 0.5, "tiny": 1e-7, "neg": -2.25}'),
    ('mixed array', '[1, "two", null, true, {"x": [false]}, 3.5]')
) AS cases(label, doc);

-- More than 32 entries: every 32nd JEntry stores an offset rather than a length.
SELECT cdp_internal.jsonb_matches_jsonb_in(
           (SELECT jsonb_agg(g)::text FROM generate_series(1, 100) g)) AS long_array,
       cdp_internal.jsonb_matches_jsonb_in(
           (SELECT jsonb_object_agg('key' || g, repeat('v', g % 7))::text FROM generate_series(1, 70) g)) AS wide_object,
       cdp_internal.jsonb_matches_jsonb_in(
           (SELECT jsonb_object_agg('k' || g, jsonb_build_array(g, g * 1.5, 'x'))::text FROM generate_series(1, 40) g)) AS wide_nested;

-- Numbers go through a double, so a decimal keeps its value but not trailing zeros.
SELECT cdp_internal.jsonb_matches_jsonb_in('{"price": 1.50}') AS trailing_zero_kept,
       cdp_internal.jsonb_matches_jsonb_in('{"price": 1.5}') AS shortest_form;

-- Through ingest: the stored properties equal the jsonb of what was sent, and read back as text.
SELECT * FROM cdp.ingest('{"type":"track","event":"Order Completed","anonymousId":"jw1","messageId":"jw-1",
    "properties":{"total":54.5,"items":[{"sku":"A-1","qty":2},{"sku":"B-2","qty":1}],"coupon":null,"gift":false,"total":60}}',
    received_at => '2026-11-25 10:00:00+00');
SELECT properties = '{"total":60,"items":[{"sku":"A-1","qty":2},{"sku":"B-2","qty":1}],"coupon":null,"gift":false}'::jsonb AS equal,
       properties::text,
       properties -> 'items' -> 1 ->> 'sku' AS second_sku,
       jsonb_path_query_array(properties, '$.items[*].qty') AS quantities
FROM cdp.events WHERE event_id = 'jw-1';

-- A malformed call gets an error with detail and hint, and the session goes on.
SELECT cdp_internal.jsonb_matches_jsonb_in('{"a": ');
SELECT 1 AS still_usable;
