-- TOT data, as pushed by TOT's system through the sync API or `cport import`.
-- Money is integer minor units of the client's currency; times are UTC.

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    third_party_ordering BOOLEAN NOT NULL DEFAULT FALSE,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    timezone TEXT NOT NULL,
    phone TEXT,
    telegram_chat_id BIGINT,
    discord_user_id TEXT,
    digest_schedule TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX contacts_client ON contacts(client_id);
CREATE INDEX contacts_email ON contacts(lower(email));

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    contact_id TEXT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    date_required TEXT,
    order_id TEXT,
    client_ref TEXT,
    delivery_instructions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX jobs_client_status ON jobs(client_id, status);

CREATE TABLE job_process_lines (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    status TEXT NOT NULL,
    process TEXT NOT NULL,
    position TEXT NOT NULL,
    process_date TEXT,
    qty BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    image TEXT,
    PRIMARY KEY (job_id, line_no)
);

CREATE TABLE job_art_costs (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    description TEXT NOT NULL,
    qty BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    PRIMARY KEY (job_id, line_no)
);

CREATE TABLE job_blank_garments (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    description TEXT NOT NULL,
    qty BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    PRIMARY KEY (job_id, line_no)
);

CREATE TABLE job_printed_garments (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    description TEXT NOT NULL,
    expected_qty BIGINT NOT NULL,
    produced_qty BIGINT NOT NULL,
    PRIMARY KEY (job_id, line_no)
);

CREATE TABLE art_requirements (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    design_id TEXT NOT NULL,
    description TEXT NOT NULL,
    art_due TEXT,
    art_received BOOLEAN NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX art_requirements_client ON art_requirements(client_id, art_received);

CREATE TABLE visuals (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    design_id TEXT NOT NULL,
    category TEXT NOT NULL,
    designer TEXT NOT NULL,
    status TEXT NOT NULL,
    main_image TEXT NOT NULL,
    placement_image TEXT,
    created_at TEXT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX visuals_client_status ON visuals(client_id, status);

CREATE TABLE visual_charges (
    visual_id TEXT NOT NULL REFERENCES visuals(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    description TEXT NOT NULL,
    qty BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    PRIMARY KEY (visual_id, line_no)
);

CREATE TABLE visual_comments (
    visual_id TEXT NOT NULL REFERENCES visuals(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    author TEXT NOT NULL,
    author_side TEXT NOT NULL,
    body TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (visual_id, line_no)
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    job_id TEXT,
    status TEXT NOT NULL,
    delivery_date TEXT,
    sent_date TEXT,
    venue TEXT NOT NULL,
    description TEXT NOT NULL,
    contact TEXT,
    client_ref TEXT,
    tracking_carrier TEXT,
    tracking_number TEXT,
    tracking_url TEXT,
    pod_signature_image TEXT,
    pod_boxes BIGINT,
    pod_courier TEXT,
    pod_signed_at TEXT,
    pod_courier_worker TEXT,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX deliveries_client ON deliveries(client_id, status);
CREATE INDEX deliveries_job ON deliveries(job_id);

CREATE TABLE delivery_lines (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    description TEXT NOT NULL,
    qty BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, line_no)
);

CREATE TABLE delivery_packing (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    container TEXT NOT NULL,
    description TEXT NOT NULL,
    qty BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, line_no)
);

CREATE TABLE delivery_costs (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    cost_type TEXT NOT NULL,
    description TEXT NOT NULL,
    price BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, line_no)
);

CREATE TABLE stock (
    sku TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    client_sku TEXT,
    description TEXT NOT NULL,
    warehouse_balance BIGINT NOT NULL,
    expected BIGINT NOT NULL,
    accounted_for BIGINT NOT NULL,
    available_to_order BIGINT NOT NULL,
    picture TEXT,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX stock_client ON stock(client_id);

CREATE TABLE blank_stock (
    sku TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    warehouse_balance BIGINT NOT NULL,
    expected BIGINT NOT NULL,
    accounted_for BIGINT NOT NULL,
    available_to_order BIGINT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE purchase_orders (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    placed_by TEXT,
    third_party BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    date_ordered TEXT NOT NULL,
    tot_ref TEXT NOT NULL,
    client_ref TEXT,
    category TEXT NOT NULL,
    po_type TEXT NOT NULL,
    supplier TEXT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX purchase_orders_client ON purchase_orders(client_id, status);

CREATE TABLE purchase_order_lines (
    po_id TEXT NOT NULL REFERENCES purchase_orders(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    status TEXT NOT NULL,
    sku TEXT NOT NULL,
    description TEXT NOT NULL,
    ordered BIGINT NOT NULL,
    received BIGINT NOT NULL,
    cancelled BIGINT NOT NULL,
    PRIMARY KEY (po_id, line_no)
);

CREATE TABLE purchase_order_receipts (
    po_id TEXT NOT NULL REFERENCES purchase_orders(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    date_received TEXT NOT NULL,
    signed_by TEXT NOT NULL,
    date_checked TEXT,
    check_category TEXT,
    checked_by TEXT,
    outers BIGINT NOT NULL,
    handling_cost BIGINT NOT NULL,
    checking_images TEXT NOT NULL,
    PRIMARY KEY (po_id, line_no)
);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    date TEXT NOT NULL,
    due_date TEXT,
    client_po_ref TEXT,
    job_name TEXT NOT NULL,
    total BIGINT NOT NULL,
    paid BIGINT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX invoices_client ON invoices(client_id, date);

CREATE TABLE account_summaries (
    client_id TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    as_of TEXT NOT NULL,
    current_balance BIGINT NOT NULL,
    over_30 BIGINT NOT NULL,
    over_60 BIGINT NOT NULL,
    over_90 BIGINT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE price_cards (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    sync_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX price_cards_client ON price_cards(client_id, effective_from);

CREATE TABLE price_card_lines (
    price_card_id TEXT NOT NULL REFERENCES price_cards(id) ON DELETE CASCADE,
    line_no BIGINT NOT NULL,
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    unit TEXT NOT NULL,
    min_qty BIGINT NOT NULL,
    price BIGINT NOT NULL,
    PRIMARY KEY (price_card_id, line_no)
);

-- Stop-press banners posted by TOT staff. audience: NULL = every client.
CREATE TABLE banners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    severity TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    expires_at TEXT,
    retracted_at TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE banner_audience (
    banner_id BIGINT NOT NULL REFERENCES banners(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    PRIMARY KEY (banner_id, client_id)
);
