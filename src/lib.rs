//! cport: tells TOT's clients what needs them over email and chat, and takes their answers
//! back to TOT's system. See README.md for the flow.
#![forbid(unsafe_code)]

pub mod actions;
pub mod app;
pub mod channels;
pub mod config;
pub mod demo;
pub mod digest;
pub mod documents;
pub mod error;
pub mod gendata;
pub mod links;
pub mod model;
pub mod outbox;
pub mod portal;
pub mod store;
pub mod supervise;
pub mod sync;
pub mod templates;

pub use app::{App, AppState};
pub use config::Config;
