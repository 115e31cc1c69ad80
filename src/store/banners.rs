//! Stop-press banners.

use chrono::{DateTime, Utc};

use super::{Db, Result, Tx, bind, execute, on_db, on_tx};

#[derive(Debug, Clone)]
pub struct NewBanner {
    pub title: String,
    pub body: String,
    pub severity: crate::model::Severity,
    /// Empty = every client.
    pub audience: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, schemars::JsonSchema)]
pub struct BannerRow {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub severity: crate::model::Severity,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub retracted_at: Option<DateTime<Utc>>,
}

impl BannerRow {
    /// Where it stands at `now`, for the portal, the console and the command line alike (the
    /// store's [`list_live`] asks the same of its rows in SQL). An expiry passed counts before
    /// a start to come, though a banner cannot be posted to expire before it starts.
    pub fn state(&self, now: DateTime<Utc>) -> crate::model::BannerState {
        use crate::model::BannerState::*;
        if self.retracted_at.is_some() {
            Retracted
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Expired
        } else if self.starts_at > now {
            Scheduled
        } else {
            Active
        }
    }
}

impl NewBanner {
    /// The banner as stored under `id`.
    pub fn row(&self, id: i64) -> BannerRow {
        BannerRow {
            id,
            title: self.title.clone(),
            body: self.body.clone(),
            severity: self.severity,
            starts_at: self.starts_at,
            expires_at: self.expires_at,
            retracted_at: None,
        }
    }
}

/// The live banner, if any, posted in the last [`crate::model::SAME_AGAIN_MINUTES`] with the
/// same words, severity, times and audience, by anyone and by any route (the console, the API,
/// the CLI): the same post sent again (a second click, the back button, a retry, two people at
/// once), which would reach its audience twice. Asked in the posting transaction: on
/// PostgreSQL under a lock of its own (a SQLite write transaction already excludes every
/// other writer).
pub async fn same_post(tx: &mut Tx, b: &NewBanner, now: DateTime<Utc>) -> Result<Option<i64>> {
    super::one_at_a_time(tx, "cport banners").await?;
    let since = now - chrono::Duration::minutes(crate::model::SAME_AGAIN_MINUTES);
    // A banner that starts at once starts when it is posted: two posts of one are alike.
    let immediate = b.starts_at == now;
    let ids: Vec<i64> = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "SELECT id FROM banners WHERE title = $1 AND body = $2 AND severity = $3
           AND (starts_at = $4 OR ($7 AND starts_at = created_at))
           AND (expires_at = $5 OR (expires_at IS NULL AND $5 IS NULL))
           AND retracted_at IS NULL AND created_at >= $6 ORDER BY id"),
        &b.title, &b.body, &b.severity, b.starts_at, b.expires_at, since, immediate)
        .fetch_all(c).await)?;
    let mut wanted = b.audience.clone();
    wanted.sort();
    for id in ids {
        let mut audience: Vec<String> = on_tx!(tx, c => bind!(sqlx::query_scalar(
            "SELECT client_id FROM banner_audience WHERE banner_id = $1"), id).fetch_all(c).await)?;
        audience.sort();
        if audience == wanted {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

pub async fn insert_banner(tx: &mut Tx, b: &NewBanner, now: DateTime<Utc>) -> Result<i64> {
    let id: i64 = on_tx!(tx, c => bind!(sqlx::query_scalar(
        "INSERT INTO banners (title, body, severity, starts_at, expires_at, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    ), &b.title, &b.body, &b.severity, b.starts_at, b.expires_at, &b.created_by, now)
    .fetch_one(c).await)?;
    for client in &b.audience {
        execute!(tx => "INSERT INTO banner_audience (banner_id, client_id) VALUES ($1, $2)", id, client)?;
    }
    Ok(id)
}

impl BannerRow {
    /// Where a banner stands among those shown together: the most severe first, then the
    /// latest to start. Digests, the portal and a preview all lead with banners in this order.
    pub fn shown_order(&self) -> (u8, std::cmp::Reverse<DateTime<Utc>>, i64) {
        let rank = match self.severity {
            crate::model::Severity::Urgent => 0,
            crate::model::Severity::Warning => 1,
            crate::model::Severity::Info => 2,
        };
        (rank, std::cmp::Reverse(self.starts_at), self.id)
    }
}

/// A banner neither retracted nor expired when read, with its audience (empty = every client).
#[derive(Debug, Clone)]
pub struct LiveBanner {
    pub row: BannerRow,
    pub audience: Vec<String>,
}

/// Every banner not retracted and not expired at `now` (some may start later), in the order
/// they are shown ([`BannerRow::shown_order`]), each with its audience.
pub async fn list_live(db: &Db, now: DateTime<Utc>) -> Result<Vec<LiveBanner>> {
    let live = "b.retracted_at IS NULL AND (b.expires_at IS NULL OR b.expires_at > $1)";
    let sql = format!("SELECT {BANNER_COLS} FROM banners b WHERE {live}");
    let mut rows: Vec<BannerRow> = on_db!(db, p => bind!(sqlx::query_as(&sql), now).fetch_all(p).await)?;
    rows.sort_by_key(BannerRow::shown_order);
    // The audiences of exactly the banners read, whatever became of them since: asking again
    // for the live ones could miss the audience of one retracted in between, and a banner
    // with no audience goes to every client. (Audiences are written with their banner and
    // never changed.)
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let audience: Vec<(i64, String)> = crate::fetch_in!(
        on_db,
        db,
        "SELECT banner_id, client_id FROM banner_audience WHERE banner_id IN ({in})".to_string(),
        &ids,
        once
    )?;
    Ok(rows
        .into_iter()
        .map(|row| LiveBanner {
            audience: audience.iter().filter(|(b, _)| *b == row.id).map(|(_, c)| c.clone()).collect(),
            row,
        })
        .collect())
}

const BANNER_COLS: &str = "b.id, b.title, b.body, b.severity, b.starts_at, b.expires_at, b.retracted_at";

pub async fn get_banner(db: &Db, id: i64) -> Result<BannerRow> {
    let sql = format!("SELECT {BANNER_COLS} FROM banners b WHERE b.id = $1");
    Ok(on_db!(db, p => bind!(sqlx::query_as::<_, BannerRow>(&sql), id).fetch_one(p).await)?)
}

/// Every banner, newest first, with its audience (empty = every client).
pub async fn list_banners(db: &Db) -> Result<Vec<(BannerRow, Vec<String>)>> {
    let sql = format!("SELECT {BANNER_COLS} FROM banners b ORDER BY b.id DESC");
    let rows = on_db!(db, p => sqlx::query_as::<_, BannerRow>(&sql).fetch_all(p).await)?;
    let aud: Vec<(i64, String)> = on_db!(db, p => sqlx::query_as("SELECT banner_id, client_id FROM banner_audience ORDER BY client_id")
        .fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|b| {
            let clients = aud.iter().filter(|(id, _)| *id == b.id).map(|(_, c)| c.clone()).collect();
            (b, clients)
        })
        .collect())
}

/// Retracts a banner; false when there is no such banner or it was retracted already.
pub async fn retract_banner(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let n = execute!(tx => "UPDATE banners SET retracted_at = $2 WHERE id = $1 AND retracted_at IS NULL", id, now)?;
    if n == 0 {
        return Ok(false);
    }
    // Its urgent pushes not yet gone (waiting for its start, or for a retry) go no more.
    execute!(tx =>
        "UPDATE outbox SET status = 'dropped', last_error = 'the banner was retracted', updated_at = $2
         WHERE kind = 'banner' AND idem_key LIKE $1 AND status IN ('queued', 'failed')",
        format!("banner:{id}:%"), now)?;
    Ok(true)
}

/// Which of these client ids exist.
pub async fn existing_clients(db: &Db, ids: &[String]) -> Result<Vec<String>> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rows: Vec<(String,)> =
        crate::fetch_in!(on_db, db, "SELECT id FROM clients WHERE id IN ({in})".to_string(), &ids, once)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BannerState, Severity};

    /// The four states at their edges: a banner shows from the second it starts, and not from
    /// the second it expires; a retraction rules over both.
    #[test]
    fn a_banner_stands_by_its_times_and_retraction() {
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let banner = |starts_at, expires_at, retracted_at| BannerRow {
            id: 1,
            title: "t".into(),
            body: String::new(),
            severity: Severity::Info,
            starts_at,
            expires_at,
            retracted_at,
        };
        for (b, want) in [
            (banner(now, None, None), BannerState::Active),
            (banner(now - hour, Some(now + hour), None), BannerState::Active),
            (banner(now + hour, None, None), BannerState::Scheduled),
            (banner(now - hour, Some(now), None), BannerState::Expired),
            (banner(now + hour, None, Some(now)), BannerState::Retracted),
            (banner(now - hour, Some(now - hour), Some(now)), BannerState::Retracted),
        ] {
            assert_eq!(b.state(now), want, "{b:?}");
        }
    }
}
