//! Writing TOT records: idempotent upserts keyed by TOT id, child lines replaced whole,
//! deletes by id. A record whose content hash is unchanged is not written again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::{Result, Tx, on_tx, placeholders};
use crate::model::records::*;

/// What happened to one record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Inserted,
    Updated,
    Unchanged,
}

/// A record type the store knows how to write.
pub trait Upsert: Record + Sync {
    const ENTITY: &'static str;
    const TABLE: &'static str;
    const KEY: &'static str;
    /// Other records this one points at: (field, table, id). The referenced record must exist
    /// and, when it belongs to a client, to this record's client.
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        match self.client() {
            Some(c) => vec![("client_id", "clients", c)],
            None => vec![],
        }
    }
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        exists: bool,
    ) -> BoxFuture<'a, Result<()>>;
}

const CHUNK: usize = 500;

/// The stored content hash of each of `keys` that exists.
pub async fn existing_hashes(tx: &mut Tx, table: &str, key: &str, keys: &[&str]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            "SELECT {key}, sync_hash FROM {table} WHERE {key} IN ({})",
            placeholders(1, chunk.len())
        );
        let rows: Vec<(String, String)> = on_tx!(tx, c => {
            let mut q = sqlx::query_as(&sql);
            for k in chunk {
                q = q.bind(*k);
            }
            q.fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// For each id of `table` that exists: the client it belongs to.
pub async fn owners(tx: &mut Tx, table: &str, ids: &[&str]) -> Result<HashMap<String, String>> {
    let (key, owner) = match table {
        "clients" => ("id", "id"),
        "stock" | "blank_stock" => ("sku", "client_id"),
        _ => ("id", "client_id"),
    };
    let mut out = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT {key}, {owner} FROM {table} WHERE {key} IN ({})",
            placeholders(1, chunk.len())
        );
        let rows: Vec<(String, String)> = on_tx!(tx, c => {
            let mut q = sqlx::query_as(&sql);
            for k in chunk {
                q = q.bind(*k);
            }
            q.fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// Deletes the rows with these keys; returns the keys that existed.
pub async fn delete_keys(tx: &mut Tx, table: &str, key: &str, keys: &[String]) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    let sql = format!("DELETE FROM {table} WHERE {key} = $1");
    for k in keys {
        let n = on_tx!(tx, c => sqlx::query(&sql).bind(k).execute(c).await.map(|r| r.rows_affected()))?;
        if n > 0 {
            deleted.push(k.clone());
        }
    }
    Ok(deleted)
}

async fn clear_children(tx: &mut Tx, tables: &[&str], fk: &str, id: &str) -> Result<()> {
    for t in tables {
        let sql = format!("DELETE FROM {t} WHERE {fk} = $1");
        on_tx!(tx, c => sqlx::query(&sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

async fn insert_cost_lines(tx: &mut Tx, table: &str, fk: &str, id: &str, lines: &[CostLineIn]) -> Result<()> {
    let sql = format!("INSERT INTO {table} ({fk}, line_no, description, qty, unit_price) VALUES ($1, $2, $3, $4, $5)");
    for (i, l) in lines.iter().enumerate() {
        on_tx!(tx, c => sqlx::query(&sql)
            .bind(id)
            .bind(i as i64)
            .bind(&l.description)
            .bind(l.qty)
            .bind(l.unit_price.0)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

impl Upsert for ClientIn {
    const ENTITY: &'static str = "clients";
    const TABLE: &'static str = "clients";
    const KEY: &'static str = "id";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO clients (id, name, currency, third_party_ordering, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, currency = excluded.currency,
                   third_party_ordering = excluded.third_party_ordering,
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.name)
            .bind(&self.currency)
            .bind(self.third_party_ordering)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for ContactIn {
    const ENTITY: &'static str = "contacts";
    const TABLE: &'static str = "contacts";
    const KEY: &'static str = "id";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO contacts (id, client_id, name, email, role, timezone, phone, telegram_chat_id,
                   discord_user_id, digest_schedule, active, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, name = excluded.name,
                   email = excluded.email, role = excluded.role, timezone = excluded.timezone,
                   phone = excluded.phone, telegram_chat_id = excluded.telegram_chat_id,
                   discord_user_id = excluded.discord_user_id, digest_schedule = excluded.digest_schedule,
                   active = excluded.active, sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.name)
            .bind(&self.email)
            .bind(&self.role)
            .bind(&self.timezone)
            .bind(&self.phone)
            .bind(self.telegram_chat_id)
            .bind(&self.discord_user_id)
            .bind(&self.digest_schedule)
            .bind(self.active)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for JobIn {
    const ENTITY: &'static str = "jobs";
    const TABLE: &'static str = "jobs";
    const KEY: &'static str = "id";
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        let mut r = vec![("client_id", "clients", self.client_id.as_str())];
        if let Some(c) = &self.contact_id {
            r.push(("contact_id", "contacts", c.as_str()));
        }
        r
    }
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO jobs (id, client_id, contact_id, name, status, date_required, order_id, client_ref,
                   delivery_instructions, created_at, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, $12), $11, $12)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, contact_id = excluded.contact_id,
                   name = excluded.name, status = excluded.status, date_required = excluded.date_required,
                   order_id = excluded.order_id, client_ref = excluded.client_ref,
                   delivery_instructions = excluded.delivery_instructions,
                   created_at = COALESCE($10, jobs.created_at),
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.contact_id)
            .bind(&self.name)
            .bind(&self.status)
            .bind(self.date_required)
            .bind(&self.order_id)
            .bind(&self.client_ref)
            .bind(&self.delivery_instructions)
            .bind(self.created_at)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if exists {
                clear_children(
                    tx,
                    &[
                        "job_process_lines",
                        "job_art_costs",
                        "job_blank_garments",
                        "job_printed_garments",
                    ],
                    "job_id",
                    &self.id,
                )
                .await?;
            }
            for (i, l) in self.process_lines.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO job_process_lines (job_id, line_no, status, process, position, process_date, qty, unit_price, image)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.status)
                .bind(&l.process)
                .bind(&l.position)
                .bind(l.process_date)
                .bind(l.qty)
                .bind(l.unit_price.0)
                .bind(&l.image)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            insert_cost_lines(tx, "job_art_costs", "job_id", &self.id, &self.art_costs).await?;
            insert_cost_lines(tx, "job_blank_garments", "job_id", &self.id, &self.blank_garments).await?;
            for (i, l) in self.printed_garments.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO job_printed_garments (job_id, line_no, description, expected_qty, produced_qty)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.description)
                .bind(l.expected_qty)
                .bind(l.produced_qty)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            Ok(())
        })
    }
}

impl Upsert for ArtRequirementIn {
    const ENTITY: &'static str = "art_requirements";
    const TABLE: &'static str = "art_requirements";
    const KEY: &'static str = "id";
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        vec![
            ("client_id", "clients", &self.client_id),
            ("job_id", "jobs", &self.job_id),
        ]
    }
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO art_requirements (id, client_id, job_id, design_id, description, art_due, art_received, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, job_id = excluded.job_id,
                   design_id = excluded.design_id, description = excluded.description, art_due = excluded.art_due,
                   art_received = excluded.art_received, sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.job_id)
            .bind(&self.design_id)
            .bind(&self.description)
            .bind(self.art_due)
            .bind(self.art_received)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for VisualIn {
    const ENTITY: &'static str = "visuals";
    const TABLE: &'static str = "visuals";
    const KEY: &'static str = "id";
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        vec![
            ("client_id", "clients", &self.client_id),
            ("job_id", "jobs", &self.job_id),
        ]
    }
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO visuals (id, client_id, job_id, design_id, category, designer, status, main_image,
                   placement_image, created_at, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, $12), $11, $12)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, job_id = excluded.job_id,
                   design_id = excluded.design_id, category = excluded.category, designer = excluded.designer,
                   status = excluded.status, main_image = excluded.main_image,
                   placement_image = excluded.placement_image, created_at = COALESCE($10, visuals.created_at),
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.job_id)
            .bind(&self.design_id)
            .bind(&self.category)
            .bind(&self.designer)
            .bind(&self.status)
            .bind(&self.main_image)
            .bind(&self.placement_image)
            .bind(self.created_at)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if exists {
                clear_children(tx, &["visual_charges", "visual_comments"], "visual_id", &self.id).await?;
            }
            insert_cost_lines(tx, "visual_charges", "visual_id", &self.id, &self.charges).await?;
            for (i, m) in self.comments.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO visual_comments (visual_id, line_no, author, author_side, body, at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&m.author)
                .bind(&m.side)
                .bind(&m.body)
                .bind(m.at)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            Ok(())
        })
    }
}

impl Upsert for DeliveryIn {
    const ENTITY: &'static str = "deliveries";
    const TABLE: &'static str = "deliveries";
    const KEY: &'static str = "id";
    fn refs(&self) -> Vec<(&'static str, &'static str, &str)> {
        let mut r = vec![("client_id", "clients", self.client_id.as_str())];
        if let Some(j) = &self.job_id {
            r.push(("job_id", "jobs", j.as_str()));
        }
        r
    }
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let t = self.tracking.as_ref();
            let p = self.proof_of_delivery.as_ref();
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO deliveries (id, client_id, job_id, status, delivery_date, sent_date, venue, description,
                   contact, client_ref, tracking_carrier, tracking_number, tracking_url, pod_signature_image,
                   pod_boxes, pod_courier, pod_signed_at, pod_courier_worker, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, job_id = excluded.job_id,
                   status = excluded.status, delivery_date = excluded.delivery_date, sent_date = excluded.sent_date,
                   venue = excluded.venue, description = excluded.description, contact = excluded.contact,
                   client_ref = excluded.client_ref, tracking_carrier = excluded.tracking_carrier,
                   tracking_number = excluded.tracking_number, tracking_url = excluded.tracking_url,
                   pod_signature_image = excluded.pod_signature_image, pod_boxes = excluded.pod_boxes,
                   pod_courier = excluded.pod_courier, pod_signed_at = excluded.pod_signed_at,
                   pod_courier_worker = excluded.pod_courier_worker,
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.job_id)
            .bind(&self.status)
            .bind(self.delivery_date)
            .bind(self.sent_date)
            .bind(&self.venue)
            .bind(&self.description)
            .bind(&self.contact)
            .bind(&self.client_ref)
            .bind(t.map(|t| t.carrier.as_str()))
            .bind(t.map(|t| t.number.as_str()))
            .bind(t.and_then(|t| t.url.as_deref()))
            .bind(p.map(|p| p.signature_image.as_str()))
            .bind(p.map(|p| p.boxes))
            .bind(p.map(|p| p.courier.as_str()))
            .bind(p.map(|p| p.signed_at))
            .bind(p.and_then(|p| p.courier_worker.as_deref()))
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if exists {
                clear_children(
                    tx,
                    &["delivery_lines", "delivery_packing", "delivery_costs"],
                    "delivery_id",
                    &self.id,
                )
                .await?;
            }
            for (i, l) in self.lines.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO delivery_lines (delivery_id, line_no, description, qty) VALUES ($1, $2, $3, $4)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.description)
                .bind(l.qty)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            for (i, l) in self.packing.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO delivery_packing (delivery_id, line_no, container, description, qty) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.container)
                .bind(&l.description)
                .bind(l.qty)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            for (i, l) in self.costs.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO delivery_costs (delivery_id, line_no, cost_type, description, price) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.cost_type)
                .bind(&l.description)
                .bind(l.price.0)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            Ok(())
        })
    }
}

impl Upsert for StockIn {
    const ENTITY: &'static str = "stock";
    const TABLE: &'static str = "stock";
    const KEY: &'static str = "sku";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO stock (sku, client_id, client_sku, description, warehouse_balance, expected, accounted_for,
                   available_to_order, picture, sync_hash, updated_at, figure_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                 ON CONFLICT (sku) DO UPDATE SET client_id = excluded.client_id, client_sku = excluded.client_sku,
                   description = excluded.description, warehouse_balance = excluded.warehouse_balance,
                   expected = excluded.expected, accounted_for = excluded.accounted_for,
                   figure_at = CASE WHEN stock.available_to_order = excluded.available_to_order
                                    THEN stock.figure_at ELSE excluded.updated_at END,
                   available_to_order = excluded.available_to_order, picture = excluded.picture,
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.sku)
            .bind(&self.client_id)
            .bind(&self.client_sku)
            .bind(&self.description)
            .bind(self.warehouse_balance)
            .bind(self.expected)
            .bind(self.accounted_for)
            .bind(self.available_to_order)
            .bind(&self.picture)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for BlankStockIn {
    const ENTITY: &'static str = "blank_stock";
    const TABLE: &'static str = "blank_stock";
    const KEY: &'static str = "sku";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO blank_stock (sku, description, warehouse_balance, expected, accounted_for,
                   available_to_order, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (sku) DO UPDATE SET description = excluded.description,
                   warehouse_balance = excluded.warehouse_balance, expected = excluded.expected,
                   accounted_for = excluded.accounted_for, available_to_order = excluded.available_to_order,
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.sku)
            .bind(&self.description)
            .bind(self.warehouse_balance)
            .bind(self.expected)
            .bind(self.accounted_for)
            .bind(self.available_to_order)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for PurchaseOrderIn {
    const ENTITY: &'static str = "purchase_orders";
    const TABLE: &'static str = "purchase_orders";
    const KEY: &'static str = "id";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO purchase_orders (id, client_id, placed_by, third_party, status, date_ordered, tot_ref,
                   client_ref, category, po_type, supplier, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, placed_by = excluded.placed_by,
                   third_party = excluded.third_party, status = excluded.status,
                   date_ordered = excluded.date_ordered, tot_ref = excluded.tot_ref,
                   client_ref = excluded.client_ref, category = excluded.category, po_type = excluded.po_type,
                   supplier = excluded.supplier, sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.placed_by)
            .bind(self.third_party)
            .bind(&self.status)
            .bind(self.date_ordered)
            .bind(&self.tot_ref)
            .bind(&self.client_ref)
            .bind(&self.category)
            .bind(&self.po_type)
            .bind(&self.supplier)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if exists {
                clear_children(
                    tx,
                    &["purchase_order_lines", "purchase_order_receipts"],
                    "po_id",
                    &self.id,
                )
                .await?;
            }
            for (i, l) in self.lines.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO purchase_order_lines (po_id, line_no, status, sku, description, ordered, received, cancelled)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.status)
                .bind(&l.sku)
                .bind(&l.description)
                .bind(l.ordered)
                .bind(l.received)
                .bind(l.cancelled)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            for (i, r) in self.receipts.iter().enumerate() {
                let images = serde_json::to_string(&r.checking_images).unwrap_or_else(|_| "[]".into());
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO purchase_order_receipts (po_id, line_no, date_received, signed_by, date_checked,
                       check_category, checked_by, outers, handling_cost, checking_images)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(r.date_received)
                .bind(&r.signed_by)
                .bind(r.date_checked)
                .bind(&r.check_category)
                .bind(&r.checked_by)
                .bind(r.outers)
                .bind(r.handling_cost.0)
                .bind(&images)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            Ok(())
        })
    }
}

impl Upsert for InvoiceIn {
    const ENTITY: &'static str = "invoices";
    const TABLE: &'static str = "invoices";
    const KEY: &'static str = "id";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO invoices (id, client_id, date, due_date, client_po_ref, job_name, total, paid, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, date = excluded.date,
                   due_date = excluded.due_date, client_po_ref = excluded.client_po_ref,
                   job_name = excluded.job_name, total = excluded.total, paid = excluded.paid,
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(self.date)
            .bind(self.due_date)
            .bind(&self.client_po_ref)
            .bind(&self.job_name)
            .bind(self.total.0)
            .bind(self.paid.0)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for AccountSummaryIn {
    const ENTITY: &'static str = "account_summaries";
    const TABLE: &'static str = "account_summaries";
    const KEY: &'static str = "client_id";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        _exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO account_summaries (client_id, as_of, current_balance, over_30, over_60, over_90, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (client_id) DO UPDATE SET as_of = excluded.as_of,
                   current_balance = excluded.current_balance, over_30 = excluded.over_30,
                   over_60 = excluded.over_60, over_90 = excluded.over_90,
                   sync_hash = excluded.sync_hash, updated_at = excluded.updated_at",
            )
            .bind(&self.client_id)
            .bind(self.as_of)
            .bind(self.current_balance.0)
            .bind(self.over_30.0)
            .bind(self.over_60.0)
            .bind(self.over_90.0)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            Ok(())
        })
    }
}

impl Upsert for PriceCardIn {
    const ENTITY: &'static str = "price_cards";
    const TABLE: &'static str = "price_cards";
    const KEY: &'static str = "id";
    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        hash: &'a str,
        now: DateTime<Utc>,
        exists: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            on_tx!(tx, c => sqlx::query(
                "INSERT INTO price_cards (id, client_id, name, effective_from, sync_hash, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, name = excluded.name,
                   effective_from = excluded.effective_from, sync_hash = excluded.sync_hash,
                   updated_at = excluded.updated_at",
            )
            .bind(&self.id)
            .bind(&self.client_id)
            .bind(&self.name)
            .bind(self.effective_from)
            .bind(hash)
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
            if exists {
                clear_children(tx, &["price_card_lines"], "price_card_id", &self.id).await?;
            }
            for (i, l) in self.lines.iter().enumerate() {
                on_tx!(tx, c => sqlx::query(
                    "INSERT INTO price_card_lines (price_card_id, line_no, code, description, unit, min_qty, price)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&self.id)
                .bind(i as i64)
                .bind(&l.code)
                .bind(&l.description)
                .bind(&l.unit)
                .bind(l.min_qty)
                .bind(l.price.0)
                .execute(c)
                .await.map(|r| r.rows_affected()))?;
            }
            Ok(())
        })
    }
}
