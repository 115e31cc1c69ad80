//! Test harness: a fresh store per test on the engine the run is for (SQLite by default,
//! PostgreSQL when DATABASE_URL points at one), and the real app on a real socket.
#![allow(dead_code)]

use std::path::PathBuf;

use cport::App;
use cport::config::{Config, Secret};
use cport::store::Db;
use tokio::sync::oneshot;

pub mod fake_discord;
pub mod fake_telegram;

pub const TOKEN: &str = "test-api-token";

/// A database URL for a brand-new, empty store.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            use rand::Rng;
            let name = format!("cport_test_{:016x}", rand::thread_rng().r#gen::<u64>());
            let admin = Db::connect(&url).await.expect("PostgreSQL from DATABASE_URL is reachable");
            cport::store::on_db!(&admin, p => sqlx::query(&format!("CREATE DATABASE {name}")).execute(p).await.map(|_| ()))
                .expect("create test database");
            admin.close().await;
            let (base, _) = url.rsplit_once('/').expect("DATABASE_URL ends in /dbname");
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}", dir.join("cport.db").display()),
    }
}

pub fn engine_name() -> &'static str {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => "postgres",
        _ => "sqlite",
    }
}

pub fn test_config(dir: &std::path::Path, database_url: String) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".into(),
        database_url: Secret::new(database_url),
        data_dir: dir.to_path_buf(),
        api_token: Secret::new(TOKEN),
        link_secret: Secret::new("0123456789abcdef0123456789abcdef"),
        ..Config::default()
    };
    c.email.dir = dir.join("mail");
    // The running app's scheduler queues no period's digest on its own: with the default
    // 12 hours of catch-up, a test run between 08:00 and 20:00 London would have it decide
    // a contact's period (empty, if it ran midway through loading the world) before the
    // test asks for the digest it asserts on. Tests that exercise the scheduler set it.
    c.digest.catch_up_hours = 0;
    c
}

/// Every alert category waits for the digest, so the running app's alert scanner queues
/// nothing by itself: for tests that count the messages they cause (the scanner runs after
/// each sync, and how far it got while the world was loading is a race).
pub fn no_instant_alerts(c: &mut Config) {
    use cport::model::AlertMode::Digest;
    (c.alerts.visual_approval, c.alerts.delivery_instructions, c.alerts.third_party_po, c.alerts.awaiting_art) =
        (Digest, Digest, Digest, Digest);
}

pub struct TestApp {
    pub base: String,
    pub db: Db,
    /// The running app's state (its faults, health, config).
    pub state: cport::AppState,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// An app whose store holds the test world (sent through the API).
    pub async fn with_world() -> TestApp {
        let app = Self::spawn().await;
        load_world(&app).await;
        app
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(None, configure).await
    }

    /// A second app process on this one's store (its own folder and listener): what two
    /// `cport serve` on one database share, they share.
    pub async fn spawn_beside(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(Some(self.database_url.clone()), configure).await
    }

    async fn spawn_on(database_url: Option<String>, configure: impl FnOnce(&mut Config)) -> TestApp {
        // Logs show with `cargo test -- --nocapture` (RUST_LOG to filter).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match database_url {
            Some(u) => u,
            None => fresh_database_url(dir.path()).await,
        };
        let mut config = test_config(dir.path(), url.clone());
        configure(&mut config);
        let app = App::build(config).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let db = app.state.db.clone();
        let state = app.state.clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            db,
            state,
            http: reqwest::Client::new(),
            dir,
            database_url: url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any API call with the right token: the status and the JSON body (null when none).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// PUT a batch with the right token.
    pub async fn put(&self, entity: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.api(reqwest::Method::PUT, &format!("/api/v1/{entity}"), Some(body)).await
    }

    /// POST `body` to `path` from `client` with these headers and nothing else: the response.
    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = client.post(self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(body).send().await.expect("request")
    }

    /// PUT a batch that must be taken (200); gives the report.
    pub async fn synced(&self, entity: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, report) = self.put(entity, body).await;
        assert_eq!(status, 200, "PUT {entity} was not taken: {report}");
        report
    }

    /// PUT a batch that must be refused as a whole (422); gives the error report.
    pub async fn refused(&self, entity: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, report) = self.put(entity, body).await;
        assert_eq!(status, 422, "PUT {entity} was not refused: {report}");
        report
    }

    pub async fn delete(&self, entity: &str, ids: &[&str]) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "ids": ids });
        self.api(reqwest::Method::DELETE, &format!("/api/v1/{entity}"), Some(body)).await
    }

    /// GET a path and read the body as text.
    pub async fn text(&self, path: &str) -> String {
        self.http.get(self.url(path)).send().await.expect("request").text().await.expect("body")
    }

    /// Number of rows in a table (tests read the store directly to see what was written).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = cport::store::on_db!(&self.db, p => sqlx::query_as(&sql).fetch_one(p).await).expect("count");
        n
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("server stopped cleanly");
        }
    }
}

/// The JSON body of a response that must be refused with `status`, its `error` saying `says`.
pub async fn refused_with(r: reqwest::Response, status: u16, says: &str) -> serde_json::Value {
    assert_eq!(r.status().as_u16(), status);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().is_some_and(|e| e.contains(says)), "{says:?} not in {v}");
    v
}

pub fn cport_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cport"))
}

/// A small, valid world: two clients with contacts of several roles, jobs, visuals, art, POs.
pub fn world() -> serde_json::Value {
    serde_json::json!({
        "clients": [
            {"id": "C-1", "name": "Alpha Ltd"},
            {"id": "C-2", "name": "Beta plc", "currency": "EUR"}
        ],
        "contacts": [
            {"id": "P-1A", "client_id": "C-1", "name": "Ann Admin", "email": "ann@alpha.example", "role": "admin"},
            {"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer", "email": "bob@alpha.example", "role": "buyer"},
            {"id": "P-1F", "client_id": "C-1", "name": "Fay Finance", "email": "fay@alpha.example", "role": "finance"},
            {"id": "P-1V", "client_id": "C-1", "name": "Vic Viewer", "email": "vic@alpha.example", "role": "viewer"},
            {"id": "P-2A", "client_id": "C-2", "name": "Zed Admin", "email": "zed@beta.example", "role": "admin"}
        ],
        "jobs": [
            {"id": "J-1", "client_id": "C-1", "name": "Tees", "status": "in_production", "date_required": "2026-12-01",
             "process_lines": [{"status": "planned", "process": "Screen print", "position": "Front", "qty": 100, "unit_price": "1.50"}],
             "printed_garments": [{"description": "Tee", "expected_qty": 100}]},
            {"id": "J-2", "client_id": "C-1", "name": "Caps", "status": "completed", "delivery_instructions": "given"},
            {"id": "J-3", "client_id": "C-1", "name": "Old", "status": "delivered"},
            {"id": "J-9", "client_id": "C-2", "name": "Beta bags", "status": "entered"}
        ],
        "art_requirements": [
            {"id": "AR-1", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-1", "description": "Logo", "art_received": false},
            {"id": "AR-9", "client_id": "C-2", "job_id": "J-9", "design_id": "DS-9", "description": "Bag art", "art_received": false}
        ],
        "visuals": [
            {"id": "V-1", "client_id": "C-1", "job_id": "J-1", "design_id": "DS-1", "category": "Colour visual",
             "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v1.svg",
             "charges": [{"description": "Art", "qty": 1, "unit_price": 25}]},
            {"id": "V-2", "client_id": "C-1", "job_id": "J-2", "design_id": "DS-2", "category": "Colour visual",
             "designer": "Des", "status": "approved", "main_image": "/media/v2.svg"},
            {"id": "V-9", "client_id": "C-2", "job_id": "J-9", "design_id": "DS-9", "category": "Colour visual",
             "designer": "Des", "status": "awaiting_approval", "main_image": "/media/v9.svg"}
        ],
        "purchase_orders": [
            {"id": "PO-1", "client_id": "C-1", "placed_by": "Reseller R", "third_party": true, "status": "open",
             "date_ordered": "2026-11-01", "tot_ref": "T1", "category": "Garments", "type": "Third party", "supplier": "S",
             "lines": [{"status": "open", "sku": "BLK-1", "description": "Tee", "ordered": 10, "received": 4}]},
            {"id": "PO-2", "client_id": "C-1", "placed_by": "Reseller R", "third_party": true, "status": "received",
             "date_ordered": "2026-10-01", "tot_ref": "T2", "category": "Garments", "type": "Third party", "supplier": "S",
             "lines": [{"status": "received", "sku": "BLK-1", "description": "Tee", "ordered": 10, "received": 10}]}
        ]
    })
}

/// Loads [`world`] through the sync API, entity by entity.
pub async fn load_world(app: &TestApp) {
    let w = world();
    for entity in cport::model::records::ENTITIES {
        if let Some(batch) = w.get(*entity) {
            let (status, body) = app.put(entity, batch.clone()).await;
            assert_eq!(status, 200, "loading {entity}: {body}");
        }
    }
}

/// A real SMTP server (Python's aiosmtpd) on a loopback port, stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_with(&[])
    }

    /// A server with options of `tests/smtp_server.py` (`--delay S`, `--hang SUBSTRING`).
    pub fn start_with(args: &[&str]) -> SmtpServer {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temp dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs (scripts/test installs aiosmtpd)");
        // The server prints its port once it is listening.
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("smtp server did not start: `{line}`"));
        SmtpServer { port, dir, child }
    }

    /// Every message received so far: (raw message, envelope JSON), in arrival order.
    pub fn messages(&self) -> Vec<(Vec<u8>, serde_json::Value)> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let raw = std::fs::read(&p).unwrap();
                let env = std::fs::read_to_string(p.with_extension("json")).unwrap();
                (raw, serde_json::from_str(&env).unwrap())
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Queues a digest to `contact` as the scheduler would (not to be sent before tomorrow) and
/// gives its reply token: for tests about replies, which need a message to reply to whatever
/// the running app's scheduler and alert scanner have done.
pub async fn digest_to_reply_to(db: &Db, signer: &cport::links::Signer, contact: &str, email: &str) -> String {
    let token = signer.new_reply_token();
    let payload = serde_json::json!({"to_name": contact, "to": email, "subject": "TOT: things need you", "text": "",
                                     "html": "", "message_id": format!("<digest-{token}@reply.tot.example>"), "item_keys": []});
    let mut tx = db.begin().await.unwrap();
    let message = cport::store::outbox::NewMessage {
        contact_id: Some(contact.into()),
        channel: cport::model::Outlet::Email,
        kind: cport::model::MessageKind::Digest,
        idem_key: format!("test:{token}"),
        reply_token: Some(token.clone()),
        recipient: email.into(),
        subject: "TOT".into(),
        payload: payload.to_string(),
        next_attempt_at: chrono::Utc::now() + chrono::Duration::days(1),
    };
    cport::store::outbox::insert_message(&mut tx, &message, chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    token
}

/// The reply token of the last digest queued for `contact` (what a reply to it is addressed to).
pub async fn reply_token_of(db: &Db, contact: &str) -> String {
    let rows = cport::store::outbox::list_messages(db, None, i64::MAX).await.unwrap();
    let digest =
        rows.iter().find(|m| m.message.contact_id.as_deref() == Some(contact) && m.message.kind.as_str() == "digest");
    digest.and_then(|m| m.message.reply_token.clone()).unwrap_or_else(|| {
        let seen: Vec<_> = rows.iter().map(|m| (&m.message.contact_id, &m.message.kind, &m.status)).collect();
        panic!("no digest with a reply token for {contact} among {seen:?}")
    })
}

/// A digest asked for now by hand (`cport digest run --contact`), for one contact.
pub async fn digest_now(state: &cport::services::Services, contact: &str) -> cport::digest::scheduler::PassReport {
    let manual = cport::digest::scheduler::Trigger::Manual { force: false };
    cport::digest::scheduler::run_pass(state, chrono::Utc::now(), Some(contact), manual).await.expect("a digest pass")
}

/// A digest for each of `contacts` now (a manual pass each).
pub async fn digests_now(state: &cport::services::Services, contacts: &[&str]) {
    for c in contacts {
        digest_now(state, c).await;
    }
}

/// The app's state without an HTTP server or background tasks: tests drive each step.
pub struct TestState {
    pub state: cport::AppState,
    pub dir: tempfile::TempDir,
}

impl TestState {
    pub async fn new(configure: impl FnOnce(&mut Config)) -> TestState {
        Self::on(None, configure).await
    }

    /// A second process's state on this one's store.
    pub async fn beside(&self, configure: impl FnOnce(&mut Config)) -> TestState {
        Self::on(Some(self.state.config.database_url.expose().to_string()), configure).await
    }

    async fn on(database_url: Option<String>, configure: impl FnOnce(&mut Config)) -> TestState {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match database_url {
            Some(u) => u,
            None => fresh_database_url(dir.path()).await,
        };
        let mut config = test_config(dir.path(), url);
        configure(&mut config);
        config.validate(cport::config::Need::Secrets).expect("test config is valid");
        let db = Db::connect(config.database_url.expose()).await.expect("store");
        db.migrate().await.expect("migrations");
        let state = cport::AppState::new(config, db).expect("state");
        TestState { state, dir }
    }

    /// A state holding the test world whose mail goes to `smtp`; `configure` changes the
    /// config after that.
    pub async fn mailing(smtp: &SmtpServer, configure: impl FnOnce(&mut Config)) -> TestState {
        let t = TestState::new(|c| {
            smtp_config(c, smtp.port);
            configure(c)
        })
        .await;
        t.load(world()).await;
        t
    }

    /// Loads a document of records (same path as `cport import`).
    pub async fn load(&self, doc: serde_json::Value) {
        let doc: cport::model::records::Document = serde_json::from_value(doc).expect("document");
        cport::sync::import::apply_document(&self.state.db, &doc, false).await.expect("document loads");
    }

    /// The contacts as if cport had stored them eight days ago: a store that has run a while,
    /// whose contacts were known when the current digest period began, whatever the day (a
    /// weekday schedule's period on a Monday morning began on Friday).
    pub async fn known_for_a_week(&self) {
        let week_ago = chrono::Utc::now() - chrono::Duration::days(8);
        cport::store::on_db!(&self.state.db, p => sqlx::query("UPDATE contacts SET created_at = $1")
            .bind(week_ago).execute(p).await.map(|_| ()))
        .unwrap();
    }
}

/// Config pointing email at a local SMTP server without TLS.
pub fn smtp_config(c: &mut Config, port: u16) {
    c.email.transport = cport::config::Transport::Smtp;
    c.smtp.host = "127.0.0.1".into();
    c.smtp.port = port;
    c.smtp.tls = cport::config::Tls::None;
    c.public_url = "http://127.0.0.1:9".into();
}

/// A browser-like HTTP client: keeps cookies, does not follow redirects (tests look at them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The CSRF token of the first form on a page.
pub fn csrf_of(html: &str) -> String {
    hidden_value(html, "csrf").expect("page has a form with a CSRF token")
}

/// The value of the first form field named `name` on the page, as a hidden input carries it.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_string())
}

impl TestApp {
    /// A signed portal link for `contact` to `path`.
    pub fn link(&self, contact: &str, path: &str) -> String {
        let signer = cport::links::Signer::new("0123456789abcdef0123456789abcdef");
        let token =
            signer.sign(cport::links::Purpose::Open, path, contact, chrono::Duration::days(1), chrono::Utc::now());
        self.url(&format!("/l/{token}"))
    }

    /// A browser signed in as `contact` (through a signed link).
    pub async fn signed_in(&self, contact: &str) -> reqwest::Client {
        let b = browser();
        let r = b.get(self.link(contact, "/")).send().await.expect("link");
        assert_eq!(r.status().as_u16(), 303, "a signed link signs in and redirects");
        b
    }

    /// GET a page; returns status and body.
    pub async fn page(&self, b: &reqwest::Client, path: &str) -> (u16, String) {
        let r = b.get(self.url(path)).send().await.expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// GET a page that must be shown (200); gives its HTML.
    pub async fn shown(&self, b: &reqwest::Client, path: &str) -> String {
        let (status, html) = self.page(b, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        html
    }

    /// POST a form from `path`'s page (its CSRF token added); returns status, Location, body.
    pub async fn post_form(&self, b: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let (_, html) = self.page(b, path).await;
        let csrf = if html.contains("name=\"csrf\"") { csrf_of(&html) } else { String::new() };
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(b, path, &form).await
    }

    /// Posts a form that must be taken: answers 303; gives where it leads.
    pub async fn submit(&self, b: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> String {
        let (status, location, html) = self.post_form(b, path, fields).await;
        assert_eq!(status, 303, "{path} {fields:?} was not taken: {html}");
        location
    }

    /// The first word holding `marker` (a link) in the newest queued email to `recipient`,
    /// pointed at this app.
    pub async fn link_mailed_to(&self, recipient: &str, marker: &str) -> String {
        let rows = cport::store::outbox::list_messages(&self.db, None, 50).await.unwrap();
        let mail =
            rows.iter().find(|m| m.message.recipient == recipient).unwrap_or_else(|| panic!("no mail to {recipient}"));
        let p: cport::channels::email::EmailPayload = serde_json::from_str(&mail.message.payload).unwrap();
        let word = p.text.split_whitespace().find(|w| w.contains(marker)).expect("a link in the mail");
        word.replace("http://127.0.0.1:8080", &self.base)
    }

    /// Posts a form that must be refused: answers 422, and gives the page that says why.
    pub async fn post_refused(&self, b: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> String {
        let (status, location, html) = self.post_form(b, path, fields).await;
        assert_eq!(status, 422, "{path} {fields:?} was not refused: {location} {html}");
        html
    }

    /// Posts a form that must be refused as a conflict (409: decided meanwhile, done
    /// already): gives the page shown.
    pub async fn post_conflict(&self, b: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> String {
        let (status, location, html) = self.post_form(b, path, fields).await;
        assert_eq!(status, 409, "{path} {fields:?} was not a conflict: {location} {html}");
        html
    }

    /// Opens the set-password page of a reset or invitation link (`path`, with its token),
    /// chooses `password` there, then posts the same form again. Gives the first answer's
    /// status and Location, and the second answer's status (a single-use link refuses it).
    pub async fn choose_password_twice(&self, b: &reqwest::Client, path: &str, password: &str) -> ((u16, String), u16) {
        let (status, html) = self.page(b, path).await;
        assert_eq!(status, 200, "{path} opens");
        let token = path.split("token=").nth(1).expect("a token in the link").to_string();
        let csrf = csrf_of(&html);
        let set = [
            ("csrf", csrf.as_str()),
            ("token", token.as_str()),
            ("new_password", password),
            ("confirm_password", password),
        ];
        let (status, location, _) = self.post_raw(b, "/password/reset", &set).await;
        let again = self.post_raw(b, "/password/reset", &set).await.0;
        ((status, location), again)
    }

    /// POST exactly these fields.
    pub async fn post_raw(&self, b: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let r = b.post(self.url(path)).form(fields).send().await.expect("request");
        let status = r.status().as_u16();
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (status, location, r.text().await.unwrap_or_default())
    }

    /// The change feed as TOT reads it.
    pub async fn changes(&self, after: i64) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/changes?after={after}");
        let (_, v) = self.api(reqwest::Method::GET, &path, None).await;
        v["changes"].as_array().cloned().unwrap_or_default()
    }

    pub async fn visual_status(&self, id: &str) -> String {
        let (s,): (String,) =
            cport::store::on_db!(&self.db, p => sqlx::query_as("SELECT status FROM visuals WHERE id = $1")
            .bind(id).fetch_one(p).await)
            .unwrap();
        s
    }
}

/// What `user` types in a direct chat on `channel`, handled as the chat adapters hand it on;
/// gives cport's answers.
pub async fn say_in_chat(
    state: &cport::services::Services,
    channel: cport::model::Channel,
    user: &str,
    text: &str,
) -> Vec<cport::channels::chat::Reply> {
    let inc = cport::channels::chat::Incoming {
        channel,
        user_id: user.into(),
        chat_id: user.into(),
        input: cport::channels::chat::Input::Text(text.into()),
    };
    cport::channels::chat::handle(state, &inc, chrono::Utc::now()).await.unwrap()
}

/// Links `user`'s chat on `channel` to `contact` with a fresh code, sent with `command`
/// (`/start` on Telegram, `/link` on Discord). The code is made in the store directly: a test
/// state that speaks to the chat handler needs no provider set up, which asking for a code
/// the way the portal does would (see `chat_link::new_link_code`).
/// Gives what the chat answered.
pub async fn link_chat(
    state: &cport::services::Services,
    channel: cport::model::Channel,
    command: &str,
    user: &str,
    contact: &str,
) -> Vec<cport::channels::chat::Reply> {
    let now = chrono::Utc::now();
    let code = state
        .db
        .in_transaction(async |tx| cport::actions::chat_link::new_link_code_in(tx, contact, now).await)
        .await
        .unwrap();
    say_in_chat(state, channel, user, &format!("{command} {code}")).await
}

/// The first character text may not hold (see `cport::model::forbidden_char`; line breaks
/// allowed) in any string or key of `v`, if any.
pub fn forbidden_in(v: &serde_json::Value) -> Option<char> {
    use cport::model::{Lines, forbidden_char};
    match v {
        serde_json::Value::String(s) => forbidden_char(s, Lines::Many),
        serde_json::Value::Array(a) => a.iter().find_map(forbidden_in),
        serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| forbidden_char(k, Lines::Many).or(forbidden_in(x))),
        _ => None,
    }
}

/// A document of one visual, `id`, of client C-1's job J-1, awaiting approval.
pub fn awaiting_visual_of_c1(id: &str) -> serde_json::Value {
    serde_json::json!({"visuals": [{"id": id, "client_id": "C-1", "job_id": "J-1", "design_id": id,
        "category": "Colour visual", "designer": "Des", "status": "awaiting_approval", "main_image": "/x.svg"}]})
}

/// Visual `id` of client C-5's job J-50, in `status`.
pub fn visual_of_c5(id: &str, status: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "client_id": "C-5", "job_id": "J-50", "design_id": "D50",
        "category": "Colour visual", "designer": "Des", "status": status, "main_image": "/v50.svg"})
}

/// Loads client C-5, its admin Fern Five (P-5, fern@five.example) and job J-50 with
/// `visuals` awaiting approval.
pub async fn fern_with_visuals(t: &TestState, visuals: &[&str]) {
    let visuals: Vec<_> = visuals.iter().map(|id| visual_of_c5(id, "awaiting_approval")).collect();
    t.load(serde_json::json!({
        "clients": [{"id": "C-5", "name": "Five Ltd"}],
        "contacts": [{"id": "P-5", "client_id": "C-5", "name": "Fern Five", "email": "fern@five.example", "role": "admin"}],
        "jobs": [{"id": "J-50", "client_id": "C-5", "name": "Hoodies", "status": "entered", "delivery_instructions": "given"}],
        "visuals": visuals
    }))
    .await;
}

/// Fern's digest ([`fern_with_visuals`]) queued now, one for each of her `targets`, and
/// every message refused for now ([`refused_for_now`], with `error`). Gives the rows.
pub async fn fern_digest_refused(t: &TestState, targets: usize, error: &str) -> Vec<cport::store::outbox::OutboxRow> {
    use cport::digest::scheduler::{Trigger, run_pass};
    let now = chrono::Utc::now();
    let r = run_pass(&t.state, now, Some("P-5"), Trigger::Manual { force: false }).await.unwrap();
    assert_eq!(r.queued, targets, "{r:?}");
    let refused = refused_for_now(&t.state.db, now, error).await;
    assert_eq!(refused.len(), targets);
    refused
}

/// The retries of every message waiting come due now.
pub async fn retries_come(db: &Db) {
    cport::store::on_db!(db, p => sqlx::query("UPDATE outbox SET next_attempt_at = $1")
        .bind(chrono::Utc::now()).execute(p).await.map(|_| ()))
    .unwrap();
}

/// Every message due at `now` tried and refused for now (`error`), as a sender marks one its
/// server or chat refused: each waits for a retry half an hour on. Gives the rows.
pub async fn refused_for_now(
    db: &Db,
    now: chrono::DateTime<chrono::Utc>,
    error: &str,
) -> Vec<cport::store::outbox::OutboxRow> {
    use cport::store::outbox::{Lane, Mark, Take, claim, mark};
    let lease = now + chrono::Duration::minutes(1);
    let rows = claim(db, Take::Lane(Lane::All), 100, "refused", now, lease).await.unwrap();
    for row in &rows {
        let retry = Mark::Failed { error, retry_at: Some(now + chrono::Duration::minutes(30)) };
        assert!(mark(db, row.id, "refused", retry, now).await.unwrap(), "message {} marked", row.id);
    }
    rows
}
