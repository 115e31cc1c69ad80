-- Re-seller ordering: named baskets per contact, placed orders with their lines (which hold
-- stock until TOT sends a new available_to_order figure for the SKU), and the SKUs a client's admin allocated
-- to each third-party user. Third-party users are contacts with role third_party that the
-- client's admin created in cport (created_by set).

CREATE TABLE baskets (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX baskets_contact ON baskets(contact_id);

CREATE TABLE basket_lines (
    basket_id BIGINT NOT NULL REFERENCES baskets(id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    qty BIGINT NOT NULL,
    PRIMARY KEY (basket_id, sku)
);

CREATE TABLE reseller_orders (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    basket_name TEXT NOT NULL,
    address TEXT NOT NULL,
    notes TEXT NOT NULL,
    status TEXT NOT NULL,
    placed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX reseller_orders_client ON reseller_orders(client_id, placed_at);

CREATE TABLE reseller_order_lines (
    order_id BIGINT NOT NULL REFERENCES reseller_orders(id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    description TEXT NOT NULL,
    qty BIGINT NOT NULL,
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX reseller_order_lines_sku ON reseller_order_lines(sku);

CREATE TABLE sku_allocations (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    allocated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contact_id, sku)
);

ALTER TABLE contacts ADD COLUMN created_by TEXT;

-- When TOT's available_to_order figure for a SKU last changed: orders placed after it hold stock.
ALTER TABLE stock ADD COLUMN figure_at TIMESTAMPTZ;
