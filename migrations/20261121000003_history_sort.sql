-- The history grid's sorts and its date range. Each sort reads an index in its own order and
-- pages by (sort key, id), so a page costs about the same at row 1,000,000 as at row 1; the
-- date range is a bound on the first column of `deliveries_queued`, not a scan back from the
-- newest row.

-- "Date d'envoi" sorts by queue date (a broadcast's rows share it, then id keeps send order),
-- and the from / to filter bounds it.
CREATE INDEX deliveries_queued ON deliveries (queued_at, id);
-- The same order within one status, for the status filter (the grid's default sort).
CREATE INDEX deliveries_status_queued ON deliveries (status, queued_at, id);
-- "Transporteur", case-insensitive as staff read names.
CREATE INDEX deliveries_carrier_name ON deliveries (carrier_name COLLATE NOCASE, id);
-- "Référence commande": orders by reference (`orders_reference`), then each order's rows.
CREATE INDEX deliveries_order_id ON deliveries (order_id, id);
