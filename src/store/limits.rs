//! Limits kept in the store, so that every process on one database keeps one limit
//! together: attempt counters (sign-ins, chat link codes, sign-in link requests) and paces
//! (how fast messages may go to one chat, and to a provider overall).
//!
//! Each is one statement (an upsert that returns the row it left), which both engines run
//! atomically: two processes counting the same key at once cannot both take the last try.

use super::{Conn, Db, Result, bind, execute, on_db, on_db_write};

/// How long failed attempts are remembered.
pub const ATTEMPT_WINDOW_SECONDS: i64 = 15 * 60;

/// Counts one attempt against `key` and says whether it is over `limit` within the window
/// (which starts at the key's first attempt): `Some(seconds)` until it may try again.
pub async fn attempt(db: &Db, key: &str, limit: u32, now_ms: i64) -> Result<Option<u64>> {
    let window_ms = ATTEMPT_WINDOW_SECONDS * 1000;
    let (hits, started): (i64, i64) = on_db_write!(db, p => bind!(sqlx::query_as(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET
           hits = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.hits + 1 END,
           window_start = CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END
         RETURNING hits, window_start",
    ), key, now_ms, now_ms - window_ms)
    .fetch_one(p).await)?;
    if hits > i64::from(limit) {
        let left_ms = (started + window_ms - now_ms).max(0);
        Ok(Some((left_ms / 1000) as u64 + 1))
    } else {
        Ok(None)
    }
}

/// Gives back one attempt (it succeeded, so it was not a guess).
pub async fn refund(db: &Db, key: &str) -> Result<()> {
    execute!(db => "UPDATE rate_limits SET hits = hits - 1 WHERE key = $1 AND hits > 0", key)?;
    Ok(())
}

/// Forgets a key's attempts (after a success that proves who is trying).
pub async fn clear(conn: impl Into<Conn<'_>>, key: &str) -> Result<()> {
    execute!(conn => "DELETE FROM rate_limits WHERE key = $1", key)?;
    Ok(())
}

/// One pace: at most `burst` messages at once, then one every `interval_ms`.
#[derive(Debug, Clone)]
pub struct Pace {
    pub key: String,
    pub interval_ms: i64,
    pub burst: i64,
}

impl Pace {
    /// How far ahead of its schedule a burst may run.
    fn tolerance(&self) -> i64 {
        (self.burst - 1).max(0) * self.interval_ms
    }

    /// `count` messages per `period_ms` on average, all of them allowed at once: after a
    /// quiet period a whole burst goes, then one every `period / count`. (So the first
    /// period after quiet may hold up to twice `count`; a pace that never did, halving the
    /// burst and spreading the rest, halved the long-run rate: 15 messages a second where
    /// Telegram allows 30, and every digest run twice as long.)
    pub fn per(key: String, count: u32, period_ms: i64) -> Pace {
        let count = i64::from(count.max(1));
        // Rounded up: 30 a second is one each 34 ms, never one each 33 (31 a second).
        Pace { key, interval_ms: ((period_ms + count - 1) / count).max(1), burst: count }
    }
}

/// Reserves the next moment a message may go under every one of `paces` and returns it
/// (milliseconds since the epoch; `now_ms` or later). The caller waits until then.
///
/// This is the generic cell rate algorithm, kept in the store: each pace holds its
/// theoretical arrival time `tat`; a message may go at `max(now, tat − (burst − 1) ×
/// interval)`, and `tat` moves on by one interval from there. All paces are reserved in one
/// statement (one write, one round trip). A reservation is kept even when another pace
/// makes the message wait longer, so paces only ever err on the slow side.
pub async fn reserve(db: &Db, paces: &[Pace], now_ms: i64) -> Result<i64> {
    if paces.is_empty() {
        return Ok(now_ms);
    }
    // `excluded` is the row offered for insert: its `go` is now, and it carries the pace's
    // interval and tolerance, so one statement serves paces of different rates.
    let rows: Vec<String> = (0..paces.len())
        .map(|i| {
            let p = 2 + i * 3;
            format!("(${p}, $1 + ${}, $1, ${}, ${})", p + 1, p + 1, p + 2)
        })
        .collect();
    // The same statement on both engines but for the name of the two-argument maximum.
    let max = match db {
        Db::Sqlite(_) => "MAX",
        Db::Postgres(_) => "GREATEST",
    };
    let sql = format!(
        "INSERT INTO paces (key, tat, go, interval_ms, tolerance_ms) VALUES {}
         ON CONFLICT (key) DO UPDATE SET
           go = {max}(excluded.go, paces.tat - excluded.tolerance_ms),
           tat = {max}(paces.tat, {max}(excluded.go, paces.tat - excluded.tolerance_ms)) + excluded.interval_ms,
           interval_ms = excluded.interval_ms,
           tolerance_ms = excluded.tolerance_ms
         RETURNING go",
        rows.join(", ")
    );
    let gos: Vec<i64> = on_db_write!(db, pool => {
        let mut q = bind!(sqlx::query_scalar(&sql), now_ms);
        for p in paces {
            q = q.bind(&p.key).bind(p.interval_ms).bind(p.tolerance());
        }
        q.fetch_all(pool).await
    })?;
    Ok(gos.into_iter().fold(now_ms, i64::max))
}

/// The moment a message would go under every one of `paces` if it were reserved now, without
/// reserving it: a caller that will not wait that long (and queues the message for then)
/// takes no turn from the messages that will. Another process may reserve meanwhile, so the
/// reservation made after this may be a little later.
pub async fn next_turn(db: &Db, paces: &[Pace], now_ms: i64) -> Result<i64> {
    let mut go = now_ms;
    for p in paces {
        let tat: Option<i64> = on_db!(db, pool => bind!(sqlx::query_scalar("SELECT tat FROM paces WHERE key = $1"), &p.key)
            .fetch_optional(pool).await)?;
        if let Some(tat) = tat {
            go = go.max(tat - p.tolerance());
        }
    }
    Ok(go)
}

/// Removes counters and paces nobody has used for a window (run by the scheduler).
pub async fn sweep(db: &Db, now_ms: i64) -> Result<u64> {
    let stale = now_ms - ATTEMPT_WINDOW_SECONDS * 1000;
    let a = execute!(db => "DELETE FROM rate_limits WHERE window_start < $1", stale)?;
    let b = execute!(db => "DELETE FROM paces WHERE tat < $1", stale)?;
    Ok(a + b)
}

#[cfg(test)]
mod tests {
    use super::Pace;

    /// The moments a sender that sends as soon as it may sends `n` messages, under `pace`
    /// (the arithmetic of [`super::reserve`], run here without a store).
    fn sent(pace: &Pace, n: usize) -> Vec<i64> {
        let mut tat = 0;
        (0..n)
            .map(|_| {
                let go = (tat - pace.tolerance()).max(0);
                tat = tat.max(go) + pace.interval_ms;
                go
            })
            .collect()
    }

    #[test]
    fn a_pace_keeps_its_rate_and_lets_a_burst_go_at_once() {
        for (count, period) in [(20u32, 60_000i64), (30, 1000), (1, 1000), (2, 60_000), (3, 1000)] {
            let pace = Pace::per("k".into(), count, period);
            let times = sent(&pace, 200);
            // A burst of `count` at once after quiet.
            let at_once = times.iter().take_while(|t| **t == 0).count();
            assert_eq!(at_once, count as usize, "{count} per {period} ms");
            // Then `count` a period, no more and no fewer, over any later period.
            let later: Vec<i64> = times[count as usize..].to_vec();
            for (i, start) in later.iter().enumerate() {
                let within = later[i..].iter().take_while(|t| **t < start + period).count();
                let left = later.len() - i;
                assert!(within <= count as usize, "{count} per {period} ms: {within} from {start}");
                assert!(
                    within + 1 >= count as usize || left < count as usize,
                    "{count} per {period}: {within} from {start}"
                );
            }
        }
    }
}
