//! `/staff`: the state of things at a glance: messages by status and channel over the last
//! day and week, the last digest decision, background tasks, what waits for a person.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{Duration, Utc};
use serde_json::json;

use super::{Staff, page};
use crate::state::AppState;
use crate::store::{console, staff as staff_store};
use crate::web::HttpError;
use crate::web::Reply;

/// Counts as a table: one row per status, one column per channel, and totals.
fn table(counts: Vec<(String, String, i64)>) -> serde_json::Value {
    let mut channels: Vec<String> = counts.iter().map(|(_, c, _)| c.clone()).collect();
    channels.sort();
    channels.dedup();
    let mut rows: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (status, channel, n) in counts {
        *rows.entry(status).or_default().entry(channel).or_default() += n;
    }
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(status, by)| {
            let cells: Vec<i64> = channels.iter().map(|c| by.get(c).copied().unwrap_or(0)).collect();
            json!({"status": status, "cells": cells, "total": cells.iter().sum::<i64>()})
        })
        .collect();
    json!({"channels": channels, "rows": rows})
}

pub async fn overview(State(state): State<AppState>, staff: Staff) -> Reply {
    let now = Utc::now();
    let day = console::message_counts(&state.db, now - Duration::days(1)).await?;
    let week = console::message_counts(&state.db, now - Duration::days(7)).await?;
    let (held, dead) = console::waiting_counts(&state.db).await?;
    let requests = crate::store::access::count_open(&state.db).await?;
    page(
        &state,
        Some(&staff),
        "overview",
        json!({
            "day": table(day), "week": table(week), "held": held, "dead": dead, "requests": requests,
            "last_digest": console::last_digest_decided(&state.db).await?,
            "tasks": state.health.report(),
            "audit": staff_store::recent_audit(&state.db, 15).await?,
        }),
    )
}

/// Any other `/staff` path: nothing there (a client session got 404 before reaching it).
pub async fn unknown(_staff: Staff) -> Reply {
    Err(HttpError::NotFound)
}
