-- A version per client, raised by every write to the rows its action items are made of
-- (visuals, jobs, purchase orders and their lines, art requirements), from any process. A
-- page keeps a client's items in memory with the version they were read at and reads them
-- again only when the version has moved (services::ItemSnapshots). Each client's row is made
-- with the client, so a write to an item table costs one UPDATE by key. (No INSERT OR IGNORE
-- in a trigger: there the conflict policy of the statement that fired it wins.)
CREATE TABLE client_versions (
    client_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

INSERT INTO client_versions (client_id, version) SELECT id, 0 FROM clients;

CREATE TRIGGER clients_version_insert AFTER INSERT ON clients BEGIN
    INSERT INTO client_versions (client_id, version) SELECT NEW.id, 0
     WHERE NOT EXISTS (SELECT 1 FROM client_versions WHERE client_id = NEW.id);
END;

CREATE TRIGGER visuals_version_insert AFTER INSERT ON visuals BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
END;

CREATE TRIGGER visuals_version_update AFTER UPDATE ON visuals BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
    UPDATE client_versions SET version = version + 1
     WHERE client_id = OLD.client_id AND OLD.client_id <> NEW.client_id;
END;

CREATE TRIGGER visuals_version_delete AFTER DELETE ON visuals BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = OLD.client_id;
END;

CREATE TRIGGER jobs_version_insert AFTER INSERT ON jobs BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
END;

CREATE TRIGGER jobs_version_update AFTER UPDATE ON jobs BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
    UPDATE client_versions SET version = version + 1
     WHERE client_id = OLD.client_id AND OLD.client_id <> NEW.client_id;
END;

CREATE TRIGGER jobs_version_delete AFTER DELETE ON jobs BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = OLD.client_id;
END;

CREATE TRIGGER purchase_orders_version_insert AFTER INSERT ON purchase_orders BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
END;

CREATE TRIGGER purchase_orders_version_update AFTER UPDATE ON purchase_orders BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
    UPDATE client_versions SET version = version + 1
     WHERE client_id = OLD.client_id AND OLD.client_id <> NEW.client_id;
END;

CREATE TRIGGER purchase_orders_version_delete AFTER DELETE ON purchase_orders BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = OLD.client_id;
END;

CREATE TRIGGER art_requirements_version_insert AFTER INSERT ON art_requirements BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
END;

CREATE TRIGGER art_requirements_version_update AFTER UPDATE ON art_requirements BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = NEW.client_id;
    UPDATE client_versions SET version = version + 1
     WHERE client_id = OLD.client_id AND OLD.client_id <> NEW.client_id;
END;

CREATE TRIGGER art_requirements_version_delete AFTER DELETE ON art_requirements BEGIN
    UPDATE client_versions SET version = version + 1 WHERE client_id = OLD.client_id;
END;

CREATE TRIGGER purchase_order_lines_version_insert AFTER INSERT ON purchase_order_lines BEGIN
    UPDATE client_versions SET version = version + 1
     WHERE client_id = (SELECT client_id FROM purchase_orders WHERE id = NEW.po_id);
END;

CREATE TRIGGER purchase_order_lines_version_update AFTER UPDATE ON purchase_order_lines BEGIN
    UPDATE client_versions SET version = version + 1
     WHERE client_id = (SELECT client_id FROM purchase_orders WHERE id = NEW.po_id);
END;

CREATE TRIGGER purchase_order_lines_version_delete AFTER DELETE ON purchase_order_lines BEGIN
    UPDATE client_versions SET version = version + 1
     WHERE client_id = (SELECT client_id FROM purchase_orders WHERE id = OLD.po_id);
END;

-- The same for stop-press banners, one version for all: a page keeps the live banners in
-- memory with it (services::BannerSnapshot).
CREATE TABLE store_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO store_versions (name, version) VALUES ('banners', 0);

CREATE TRIGGER banners_version_insert AFTER INSERT ON banners BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
END;

CREATE TRIGGER banners_version_update AFTER UPDATE ON banners BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
END;

CREATE TRIGGER banners_version_delete AFTER DELETE ON banners BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
END;

CREATE TRIGGER banner_audience_version_insert AFTER INSERT ON banner_audience BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
END;

CREATE TRIGGER banner_audience_version_update AFTER UPDATE ON banner_audience BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
END;

CREATE TRIGGER banner_audience_version_delete AFTER DELETE ON banner_audience BEGIN
    UPDATE store_versions SET version = version + 1 WHERE name = 'banners';
END;
