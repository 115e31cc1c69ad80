-- The change events of one client and kind, found without reading the whole feed: the
-- third-party user ids a client's admins were ever given, so that none is given twice.
CREATE INDEX changes_client_kind ON changes (client_id, kind);
