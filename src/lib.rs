//! cport: tells TOT's clients what needs them over email and chat, and takes their answers
//! back to TOT's system. See README.md, and the documentation in docs/ (how-it-works), for the flow.
//!
//! The modules stand in layers; a module uses its own layer and those below it, never one
//! above (checked by `tests/layers.rs`, which would list any upward import left; none is).
//! From the bottom:
//! - model, links, supervise, memory, templates, markdown: domain types and pure helpers
//! - config: configuration
//! - store: the store
//! - services, documents: what the rules use of the process, and documents from the store
//! - messages: outgoing messages in no provider's format
//! - actions: rules: client actions, commands, enquiries
//! - channels: providers: email, chat, webhooks, inbound mail
//! - digest, outbox: engines: digests, alerts, the outbox
//! - state: the application's shared state
//! - web: what both HTTP doors share: one error type, shown as JSON or as a page
//! - portal, console, sync: HTTP: the client portal, the staff console and the sync API
//! - app, serve: the server: routes, background tasks, shutdown, and the connection loop
//! - demo, gendata: commands' helpers: the demo, generated data
//! - cli: the command line: one file per command
//!
//! The binary (`src/main.rs`) only calls `cli::main`.
// The audited exceptions are in `memory` (the allocators' tuning) and `cli` (SIGPIPE's default
// restored for the short commands); nothing else may use it.
#![deny(unsafe_code)]

pub mod actions;
pub mod app;
pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod digest;
pub mod documents;
pub mod gendata;
pub mod links;
pub mod markdown;
pub mod memory;
pub mod messages;
pub mod model;
pub mod outbox;
pub mod portal;
pub mod serve;
pub mod services;
pub mod state;
pub mod store;
pub mod supervise;
pub mod sync;
pub mod templates;
pub mod web;

pub use app::App;
pub use config::Config;
pub use state::AppState;
