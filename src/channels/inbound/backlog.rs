//! A backlog of messages (`inbound-email --dir`): handled side by side, each sender's in order.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use chrono::Utc;
use mail_parser::MessageParser;

use super::policy::addresses;
use super::{InboundError, handle};
use crate::services::Services;
use crate::store::StoreError;

/// Messages of a backlog handled side by side (each lane a sequence of one store round trip
/// after another, so lanes fill the time each one waits for the store).
const LANES: usize = 8;

/// How much of a file is read to find its sender: its headers, however many.
const HEAD_BYTES: u64 = 256 * 1024;

/// What became of a backlog: how many messages ended in each disposition ("refused" for
/// those that could not be read as mail), and each refused file with why.
#[derive(Debug, Default)]
pub struct Backlog {
    pub counts: BTreeMap<String, usize>,
    pub refused: Vec<(PathBuf, String)>,
}

impl Backlog {
    fn refuse(&mut self, file: &Path, why: String) {
        tracing::warn!(file = %crate::model::path_shown(file), reason = %why, "message refused");
        *self.counts.entry("refused".to_string()).or_default() += 1;
        self.refused.push((file.to_path_buf(), why));
    }
}

/// Handles a backlog of message files (`inbound-email --dir`): messages from one sender are
/// handled in the order given (a later reply may depend on an earlier one), different
/// senders side by side. Stops at the first store error.
pub async fn handle_backlog(state: &Services, files: &[PathBuf]) -> Result<Backlog, BacklogError> {
    // Files are read here for their sender (the start of each: the headers) and whole in
    // their lane, so a backlog of any size is not held in memory.
    let mut lanes: Vec<Vec<&PathBuf>> = vec![Vec::new(); LANES];
    for f in files {
        let mut head = Vec::new();
        std::fs::File::open(f)
            .and_then(|file| std::io::Read::read_to_end(&mut std::io::Read::take(file, HEAD_BYTES), &mut head))
            .map_err(|error| BacklogError::Read { path: f.clone(), error })?;
        // A parser's panic here only loses the lane choice; `handle` refuses the message.
        let sender = std::panic::catch_unwind(|| {
            MessageParser::default().parse_headers(&head[..]).and_then(|m| addresses(m.from()).into_iter().next())
        })
        .ok()
        .flatten()
        .unwrap_or_default();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        sender.hash(&mut h);
        lanes[(h.finish() % LANES as u64) as usize].push(f);
    }
    async fn lane(state: &Services, files: Vec<&PathBuf>) -> Result<Backlog, BacklogError> {
        let mut out = Backlog::default();
        let max = state.config.inbound.max_bytes;
        for f in files {
            let read = |error| BacklogError::Read { path: f.clone(), error };
            // Too large is said by its size, before it is read into memory.
            let size = std::fs::metadata(f).map_err(read)?.len();
            if size > max {
                super::count_refused();
                out.refuse(f, InboundError::TooLarge { size: size as usize, max }.to_string());
                continue;
            }
            let raw = std::fs::read(f).map_err(read)?;
            match handle(state, &raw, Utc::now()).await {
                Ok(d) => *out.counts.entry(d.parts().0.as_str().to_string()).or_default() += 1,
                Err(InboundError::Store(e)) if !matches!(e, StoreError::Unstorable) => {
                    return Err(BacklogError::Store(e));
                }
                Err(e) => out.refuse(f, e.to_string()),
            };
        }
        Ok(out)
    }
    let mut total = Backlog::default();
    for lane in futures::future::join_all(lanes.into_iter().map(|l| lane(state, l))).await {
        let lane = lane?;
        for (k, n) in lane.counts {
            *total.counts.entry(k).or_default() += n;
        }
        total.refused.extend(lane.refused);
    }
    total.refused.sort();
    Ok(total)
}

#[derive(Debug, thiserror::Error)]
pub enum BacklogError {
    /// The OS's words are in the message, once (see `ConfigError::Read`).
    #[error("cannot read {}: {error}", crate::model::path_shown(path))]
    Read { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
