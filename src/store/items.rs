//! The queries behind action items (shared/SPEC.md F1), each over a set of clients: one
//! query per category serves a whole batch of clients (the scheduler, alerts and `digest run`
//! read many clients at once; a page reads one).

use chrono::NaiveDate;

use super::jobs::JobRow;
use super::visuals::VisualRow;

use super::{Conn, Result, fetch_in, state_list};
use crate::model::{DeliveryInstructions, JobStatus, PoStatus, VisualStatus};

/// Runs `sql` (with `{clients}` standing for the IN list) for `clients`, on the pool or in
/// the caller's transaction.
async fn for_clients<T: super::Row>(conn: impl Into<Conn<'_>>, sql: &str, clients: &[&str]) -> Result<Vec<T>> {
    let mut conn = conn.into();
    fetch_in!(on_conn, conn.reborrow(), sql.replace("{clients}", "{in}"), clients)
}

/// A1: visuals awaiting the clients' approval, oldest first.
pub async fn list_pending_visuals(conn: impl Into<Conn<'_>>, clients: &[&str]) -> Result<Vec<VisualRow>> {
    let sql = format!(
        "{} WHERE v.client_id IN ({{clients}}) AND v.status = '{awaiting}' ORDER BY v.created_at, v.id",
        super::visuals::SELECT,
        awaiting = VisualStatus::AwaitingApproval
    );
    for_clients(conn, &sql, clients).await
}

/// A2: open jobs for which the clients have given no delivery instructions.
pub async fn list_jobs_without_delivery(conn: impl Into<Conn<'_>>, clients: &[&str]) -> Result<Vec<JobRow>> {
    let sql = format!(
        "{} WHERE j.client_id IN ({{clients}}) AND j.status IN ({open}) AND j.delivery_instructions = '{none}'
         ORDER BY j.date_required NULLS LAST, j.id",
        super::jobs::SELECT,
        open = state_list(JobStatus::OPEN),
        none = DeliveryInstructions::None
    );
    for_clients(conn, &sql, clients).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenThirdPartyPo {
    pub client_id: String,
    pub id: String,
    pub tot_ref: String,
    pub placed_by: Option<String>,
    pub supplier: String,
    pub status: crate::model::PoStatus,
    pub date_ordered: NaiveDate,
    pub outstanding: i64,
}

/// A3: purchase orders placed by the clients' third parties and not fully delivered.
pub async fn list_open_third_party_pos(conn: impl Into<Conn<'_>>, clients: &[&str]) -> Result<Vec<OpenThirdPartyPo>> {
    let sql = format!(
        "SELECT po.client_id, po.id, po.tot_ref, po.placed_by, po.supplier, po.status, po.date_ordered,
                CAST(SUM(l.ordered - l.received - l.cancelled) AS BIGINT) AS outstanding
         FROM purchase_orders po JOIN purchase_order_lines l ON l.po_id = po.id
         WHERE po.client_id IN ({{clients}}) AND po.third_party AND po.status NOT IN ({finished})
         GROUP BY po.client_id, po.id, po.tot_ref, po.placed_by, po.supplier, po.status, po.date_ordered
         HAVING SUM(l.ordered - l.received - l.cancelled) > 0
         ORDER BY po.date_ordered, po.id",
        finished = state_list(PoStatus::FINISHED)
    );
    for_clients(conn, &sql, clients).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MissingArt {
    pub client_id: String,
    pub id: String,
    pub job_id: String,
    pub job_name: String,
    pub design_id: String,
    pub description: String,
    pub art_due: Option<NaiveDate>,
    /// When cport first stored the requirement (none for one stored before that was kept).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A4: art requirements of open jobs whose artwork has not arrived.
pub async fn list_missing_art(conn: impl Into<Conn<'_>>, clients: &[&str]) -> Result<Vec<MissingArt>> {
    let sql = format!(
        "SELECT a.client_id, a.id, a.job_id, j.name AS job_name, a.design_id, a.description, a.art_due,
                a.created_at
         FROM art_requirements a JOIN jobs j ON j.id = a.job_id
         WHERE a.client_id IN ({{clients}}) AND NOT a.art_received AND j.status IN ({open})
         ORDER BY a.art_due NULLS LAST, a.id",
        open = state_list(JobStatus::OPEN)
    );
    for_clients(conn, &sql, clients).await
}
