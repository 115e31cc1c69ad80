//! The queries behind action items (shared/SPEC.md F1), each scoped to one client.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, Result, bind, on_db};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingVisual {
    pub id: String,
    pub design_id: String,
    pub category: String,
    pub job_id: String,
    pub job_name: String,
    pub date_required: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// A1: visuals awaiting the client's approval.
pub async fn list_pending_visuals(db: &Db, client_id: &str) -> Result<Vec<PendingVisual>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, PendingVisual>(
        "SELECT v.id, v.design_id, v.category, v.job_id, j.name AS job_name, j.date_required, v.created_at
         FROM visuals v JOIN jobs j ON j.id = v.job_id
         WHERE v.client_id = $1 AND v.status = 'awaiting_approval'
         ORDER BY v.created_at, v.id",
    ), client_id)
    .fetch_all(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenJob {
    pub id: String,
    pub name: String,
    pub status: String,
    pub date_required: Option<NaiveDate>,
    pub client_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A2: open jobs for which the client has given no delivery instructions.
pub async fn list_jobs_without_delivery(db: &Db, client_id: &str) -> Result<Vec<OpenJob>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OpenJob>(
        "SELECT id, name, status, date_required, client_ref, created_at FROM jobs
         WHERE client_id = $1 AND status IN ('entered', 'in_production', 'completed')
           AND delivery_instructions = 'none'
         ORDER BY date_required, id",
    ), client_id)
    .fetch_all(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenThirdPartyPo {
    pub id: String,
    pub tot_ref: String,
    pub placed_by: Option<String>,
    pub supplier: String,
    pub status: String,
    pub date_ordered: NaiveDate,
    pub outstanding: i64,
}

/// A3: purchase orders placed by the client's third parties and not fully delivered.
pub async fn list_open_third_party_pos(db: &Db, client_id: &str) -> Result<Vec<OpenThirdPartyPo>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, OpenThirdPartyPo>(
        "SELECT po.id, po.tot_ref, po.placed_by, po.supplier, po.status, po.date_ordered,
                CAST(SUM(l.ordered - l.received - l.cancelled) AS BIGINT) AS outstanding
         FROM purchase_orders po JOIN purchase_order_lines l ON l.po_id = po.id
         WHERE po.client_id = $1 AND po.third_party AND po.status NOT IN ('closed', 'cancelled')
         GROUP BY po.id, po.tot_ref, po.placed_by, po.supplier, po.status, po.date_ordered
         HAVING SUM(l.ordered - l.received - l.cancelled) > 0
         ORDER BY po.date_ordered, po.id",
    ), client_id)
    .fetch_all(p).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MissingArt {
    pub id: String,
    pub job_id: String,
    pub job_name: String,
    pub design_id: String,
    pub description: String,
    pub art_due: Option<NaiveDate>,
}

/// A4: art requirements of open jobs whose artwork has not arrived.
pub async fn list_missing_art(db: &Db, client_id: &str) -> Result<Vec<MissingArt>> {
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, MissingArt>(
        "SELECT a.id, a.job_id, j.name AS job_name, a.design_id, a.description, a.art_due
         FROM art_requirements a JOIN jobs j ON j.id = a.job_id
         WHERE a.client_id = $1 AND NOT a.art_received
           AND j.status IN ('entered', 'in_production', 'completed')
         ORDER BY a.art_due, a.id",
    ), client_id)
    .fetch_all(p).await)?)
}
