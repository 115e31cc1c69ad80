-- A version per client, raised by every write to the rows its action items are made of
-- (visuals, jobs, purchase orders and their lines, art requirements), from any process. A
-- page keeps a client's items in memory with the version they were read at and reads them
-- again only when the version has moved (services::ItemSnapshots).
CREATE TABLE client_versions (
    client_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

INSERT INTO client_versions (client_id, version) SELECT id, 0 FROM clients;

-- Statement-level triggers. The version is the id of the last transaction that wrote (not a
-- count): it only has to change, and a transaction that writes many rows of one client (an
-- import) then updates its row once, not once a statement, which would leave a chain of
-- row versions for every later lookup to walk.
CREATE FUNCTION add_client_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO client_versions (client_id, version)
    SELECT id, txid_current() FROM changed
    ON CONFLICT (client_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER clients_version_insert AFTER INSERT ON clients
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION add_client_versions();

CREATE FUNCTION bump_client_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE client_versions SET version = txid_current()
     WHERE client_id IN (SELECT client_id FROM changed) AND version <> txid_current();
    RETURN NULL;
END $$;

CREATE FUNCTION bump_client_versions_of_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE client_versions SET version = txid_current()
     WHERE client_id IN (SELECT po.client_id FROM purchase_orders po JOIN changed l ON l.po_id = po.id)
       AND version <> txid_current();
    RETURN NULL;
END $$;

CREATE TRIGGER visuals_version_insert AFTER INSERT ON visuals
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER visuals_version_update_new AFTER UPDATE ON visuals
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER visuals_version_update_old AFTER UPDATE ON visuals
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER visuals_version_delete AFTER DELETE ON visuals
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();

CREATE TRIGGER jobs_version_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER jobs_version_update_new AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER jobs_version_update_old AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER jobs_version_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();

CREATE TRIGGER purchase_orders_version_insert AFTER INSERT ON purchase_orders
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER purchase_orders_version_update_new AFTER UPDATE ON purchase_orders
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER purchase_orders_version_update_old AFTER UPDATE ON purchase_orders
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER purchase_orders_version_delete AFTER DELETE ON purchase_orders
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();

CREATE TRIGGER art_requirements_version_insert AFTER INSERT ON art_requirements
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER art_requirements_version_update_new AFTER UPDATE ON art_requirements
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER art_requirements_version_update_old AFTER UPDATE ON art_requirements
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();
CREATE TRIGGER art_requirements_version_delete AFTER DELETE ON art_requirements
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions();

CREATE TRIGGER purchase_order_lines_version_insert AFTER INSERT ON purchase_order_lines
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions_of_lines();
CREATE TRIGGER purchase_order_lines_version_update_new AFTER UPDATE ON purchase_order_lines
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions_of_lines();
CREATE TRIGGER purchase_order_lines_version_update_old AFTER UPDATE ON purchase_order_lines
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions_of_lines();
CREATE TRIGGER purchase_order_lines_version_delete AFTER DELETE ON purchase_order_lines
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_client_versions_of_lines();

-- The same for stop-press banners, one version for all: a page keeps the live banners in
-- memory with it (services::BannerSnapshot).
CREATE TABLE store_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO store_versions (name, version) VALUES ('banners', 0);

CREATE FUNCTION bump_banners_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_versions SET version = txid_current() WHERE name = 'banners' AND version <> txid_current();
    RETURN NULL;
END $$;

CREATE TRIGGER banners_version AFTER INSERT OR UPDATE OR DELETE ON banners
    FOR EACH STATEMENT EXECUTE FUNCTION bump_banners_version();
CREATE TRIGGER banner_audience_version AFTER INSERT OR UPDATE OR DELETE ON banner_audience
    FOR EACH STATEMENT EXECUTE FUNCTION bump_banners_version();
