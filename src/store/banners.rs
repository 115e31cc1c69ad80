//! Stop-press banners.

use chrono::{DateTime, Utc};

use super::{Db, Result, on_db, on_tx};

#[derive(Debug, Clone)]
pub struct NewBanner {
    pub title: String,
    pub body: String,
    pub severity: String,
    /// Empty = every client.
    pub audience: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct BannerRow {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub severity: String,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub retracted_at: Option<DateTime<Utc>>,
}

pub async fn insert_banner(db: &Db, b: &NewBanner, now: DateTime<Utc>) -> Result<i64> {
    let mut tx = db.begin().await?;
    let (id,): (i64,) = on_tx!(&mut tx, c => sqlx::query_as(
        "INSERT INTO banners (title, body, severity, starts_at, expires_at, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&b.title)
    .bind(&b.body)
    .bind(&b.severity)
    .bind(b.starts_at)
    .bind(b.expires_at)
    .bind(&b.created_by)
    .bind(now)
    .fetch_one(c)
    .await)?;
    for client in &b.audience {
        on_tx!(&mut tx, c => sqlx::query("INSERT INTO banner_audience (banner_id, client_id) VALUES ($1, $2)")
            .bind(id)
            .bind(client)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Banners showing now for one client: started, not expired, not retracted, and addressed
/// to everyone or to this client. Most severe first.
pub async fn list_active_for_client(
    db: &Db,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<BannerRow>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, BannerRow>(
        "SELECT b.id, b.title, b.body, b.severity, b.starts_at, b.expires_at, b.retracted_at
         FROM banners b
         WHERE b.retracted_at IS NULL AND b.starts_at <= $2 AND (b.expires_at IS NULL OR b.expires_at > $2)
           AND (NOT EXISTS (SELECT 1 FROM banner_audience a WHERE a.banner_id = b.id)
                OR EXISTS (SELECT 1 FROM banner_audience a WHERE a.banner_id = b.id AND a.client_id = $1))
         ORDER BY CASE b.severity WHEN 'urgent' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, b.starts_at DESC",
    )
    .bind(client_id)
    .bind(now)
    .fetch_all(p)
    .await)?)
}
