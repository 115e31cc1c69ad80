-- A version per client, raised by every write to the rows its action items are made of
-- (visuals, jobs, purchase orders and their lines, art requirements), from any process. A
-- page keeps a client's items in memory with the version they were read at and reads them
-- again only when the version has moved (services::ItemSnapshots).
CREATE TABLE client_versions (
    client_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

-- Statement-level triggers: one bump per client per statement, whatever the rows.
CREATE FUNCTION bump_client_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO client_versions (client_id, version)
    SELECT DISTINCT client_id, 1 FROM changed
    ON CONFLICT (client_id) DO UPDATE SET version = client_versions.version + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION bump_client_versions_of_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE client_versions SET version = version + 1
     WHERE client_id IN (SELECT po.client_id FROM purchase_orders po JOIN changed l ON l.po_id = po.id);
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
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
    RETURN NULL;
END $$;

CREATE TRIGGER banners_version AFTER INSERT OR UPDATE OR DELETE ON banners
    FOR EACH STATEMENT EXECUTE FUNCTION bump_banners_version();
CREATE TRIGGER banner_audience_version AFTER INSERT OR UPDATE OR DELETE ON banner_audience
    FOR EACH STATEMENT EXECUTE FUNCTION bump_banners_version();
