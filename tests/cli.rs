//! The `cport` binary as an operator uses it.
//!
//! A test here waits for a command with `std::process` while a server of its own may serve
//! on the same runtime: its runtime has worker threads, so that the server's tasks (a
//! scheduler's pass holding a SQLite write transaction among them) go on while the test's
//! thread waits, as they would beside an operator's shell, rather than stand still and keep
//! the command waiting for the store.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{cport_bin, fresh_database_url};

/// A `cport` command with only the given CPORT_* variables (none inherited).
fn cport(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(cport_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("CPORT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info,sqlx=warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("cport runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` with `input` on its standard input, as an MTA's pipe does.
fn piped(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // A command that stops before reading its input (a configuration it cannot use) closes
    // the pipe first: that is what such a test looks at, not a failure to write.
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gen_data_output_imports_and_reimports_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let file = dir.path().join("data.json");
    let (ok, _, err) =
        output(cport(&[]).args(["gen-data", "--clients", "20", "--jobs", "400", "--seed", "7", "--out"]).arg(&file));
    assert!(ok, "{err}");

    // The same seed gives the same bytes.
    let again = dir.path().join("again.json");
    output(cport(&[]).args(["gen-data", "--clients", "20", "--jobs", "400", "--seed", "7", "--out"]).arg(&again));
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&again).unwrap());
    // No clients is refused by name, not answered with one made up.
    let (ok, _, err) = output(cport(&[]).args(["gen-data", "--clients", "0"]));
    assert!(!ok && err.contains("--clients"), "{err}");

    let (ok, out, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(ok, "{out}\n{err}");
    assert!(
        out.lines().any(|l| l.starts_with("jobs") && l.contains("400 received") && l.contains("400 inserted")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("clients") && l.contains("20 inserted")), "{out}");

    let (ok, out, _) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(ok);
    assert!(out.lines().any(|l| l.starts_with("jobs") && l.contains("400 unchanged")), "{out}");
    // The same document through a pipe, which can be read only once: all of it is read.
    let piped_in =
        piped(cport(&[("CPORT_DATABASE_URL", &url)]).args(["import", "/dev/stdin"]), &std::fs::read(&file).unwrap());
    let out = String::from_utf8_lossy(&piped_in.stdout);
    assert!(piped_in.status.success(), "{out}{}", String::from_utf8_lossy(&piped_in.stderr));
    assert!(out.lines().any(|l| l.starts_with("jobs") && l.contains("400 unchanged")), "{out}");
    // Led by a byte-order mark (some Windows tools write one), as a file given by name is.
    let marked = [&b"\xEF\xBB\xBF"[..], &std::fs::read(&file).unwrap()].concat();
    let piped_in = piped(cport(&[("CPORT_DATABASE_URL", &url)]).args(["import", "/dev/stdin"]), &marked);
    let out = String::from_utf8_lossy(&piped_in.stdout);
    assert!(piped_in.status.success(), "{out}{}", String::from_utf8_lossy(&piped_in.stderr));
    assert!(out.lines().any(|l| l.starts_with("jobs") && l.contains("400 unchanged")), "{out}");
    // And through a FIFO, whose writer must not be cut off by a look at it before the import.
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (from, to) = (file.clone(), fifo.clone());
    let writer = std::thread::spawn(move || std::fs::write(&to, std::fs::read(&from).unwrap()));
    let (ok, out, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&fifo));
    assert!(ok && out.lines().any(|l| l.starts_with("jobs") && l.contains("400 unchanged")), "{out}{err}");
    writer.join().unwrap().expect("the whole document was taken");
    // A device given by mistake is refused at its first byte, not copied without end; so is
    // a piped document that is not UTF-8 or not an object.
    for (device, says) in [("/dev/zero", "byte 0 is a NUL byte"), ("/dev/urandom", "not a JSON document")] {
        let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).args(["import", device]));
        assert!(!ok && err.contains(device) && err.contains(says), "{device}: {err}");
    }
    for (input, says) in [
        (&b"  {\"clients\": [\xff]}"[..], "byte 15 is not UTF-8"),
        (b"\n7", "byte 1 is not the `{`"),
        // One entity's array, as the sync API takes it: told where that goes.
        (b"\n[]", "byte 1 is `[`, where a document begins with `{`; it must be an object of entity arrays, like"),
        (b"\xff\xfe{\x00}\x00", "byte 0 is a UTF-16 byte-order mark (the text is UTF-16; save it as UTF-8)"),
    ] {
        let out = piped(cport(&[("CPORT_DATABASE_URL", &url)]).args(["import", "/dev/stdin"]), input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
        // Given by name, bytes no document holds are said the same way, not as the parser's
        // surprise at a place in them (JSON of another shape is said as that, below).
        if !says.contains("UTF") {
            continue;
        }
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, input).unwrap();
        let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&bad));
        assert!(!ok && err.contains(says), "{}: {err}", String::from_utf8_lossy(input));
    }

    // A file of one entity's array (the sync API's body) is told what a document is.
    let visuals = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/visuals.json");
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&visuals));
    assert!(!ok && err.contains("like {\"visuals\": [...]}") && err.contains("PUT to /api/v1/{entity}"), "{err}");

    // The imported contacts have items a dry run can show, as a table and as JSON.
    let (ok, out, err) =
        output(cport(&[("CPORT_DATABASE_URL", &url)]).args(["digest", "run", "--dry-run", "--contact", "P-00003-0"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("P-00003-0 ") && out.contains("\n  by email\n"), "{out}");
    // One who turned digest emails off, with no chat, is shown as getting none.
    let db = cport::store::Db::connect(&url).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let off = cport::model::Stoppable::Digest;
    cport::store::settings::set_email_kind(&mut tx, "P-00003-0", off, false, chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    db.close().await;
    let (ok, out, _) =
        output(cport(&[("CPORT_DATABASE_URL", &url)]).args(["digest", "run", "--dry-run", "--contact", "P-00003-0"]));
    assert!(ok && out.contains("no digest would go: their email is off for digests"), "{out}");
    let (ok, out, _) = output(cport(&[("CPORT_DATABASE_URL", &url)]).args(["digest", "run", "--dry-run", "--json"]));
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v.as_array().unwrap().len(), 80, "20 clients × 4 contacts");
    let ways = |id: &str| v.as_array().unwrap().iter().find(|e| e["contact"]["id"] == id).unwrap()["goes_to"].clone();
    assert_eq!((ways("P-00003-0"), ways("P-00003-1")), (serde_json::json!([]), serde_json::json!(["email"])));
}

/// A store made and migrated in `dir`, as one that is there before an import (a store made
/// for a refused document goes again); its address.
async fn existing_store(dir: &std::path::Path) -> String {
    let url = fresh_database_url(dir).await;
    cport::store::Db::connect(&url).await.unwrap().migrate().await.unwrap();
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_bad_record_names_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = existing_store(dir.path()).await;
    let file = dir.path().join("bad.json");
    let mut doc = common::world();
    doc["jobs"][2]["status"] = serde_json::json!("lost");
    doc["contacts"][1]["email"] = serde_json::json!("not-an-address");
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok);
    assert!(err.contains("jobs[2] (J-3) status: `lost` is not one of"), "{err}");
    assert!(err.contains("contacts[1] (P-1B) email"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    // A key naming no entity is the document's problem, not counted as a record.
    doc["widgets"] = serde_json::json!([]);
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok);
    assert!(err.contains("1 problem(s) with the document as a whole") && !err.contains("invalid record"), "{err}");
    assert!(err.contains("widgets"), "{err}");

    let db = cport::store::Db::connect(&url).await.unwrap();
    let (n,): (i64,) =
        cport::store::on_db!(&db, p => sqlx::query_as("SELECT COUNT(*) FROM clients").fetch_one(p).await).unwrap();
    assert_eq!(n, 0, "valid clients in the same document were not written");

    // One bad client among good ones is the one error: the records that refer to the good
    // clients written beside it are not reported as referring to unknown ones.
    let mut doc = common::world();
    doc["clients"].as_array_mut().unwrap().push(serde_json::json!({"id": "C-BAD", "name": " "}));
    let n = doc["clients"].as_array().unwrap().len() - 1;
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok);
    assert!(err.contains(&format!("clients[{n}] (C-BAD) name")), "{err}");
    assert!(!err.contains("unknown"), "no follow-on errors from good records: {err}");

    // A structurally wrong document (wrong type deep inside) is reported by path.
    std::fs::write(&file, r#"{"clients": [{"id": "C-1", "name": "A"}], "jobs": [{"id": "J-1", "client_id": "C-1", "name": "x", "status": "entered", "process_lines": [{"qty": "ten"}]}]}"#).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok);
    assert!(err.contains("jobs[0] (J-1) process_lines[0]"), "{err}");
    // A field given twice is named with its record, as the sync API names it; an entity that
    // is no array is named once.
    std::fs::write(
        &file,
        r#"{"clients": [{"id": "C-700", "name": "A"}, {"id": "C-701", "name": "A", "currency": "GBP", "currency": "EUR"}]}"#,
    )
    .unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok && err.contains("clients[1] (C-701) currency: given twice in one object; say it once"), "{err}");
    // One given twice inside a line is named by its path in the record.
    std::fs::write(
        &file,
        r#"{"jobs": [{"id": "J-1", "client_id": "C-1", "name": "x", "status": "entered", "process_lines": [
            {"process": "Print", "qty": 1, "unit_price": "1"}, {"process": "Print", "qty": 1, "unit_price": "1", "unit_price": "2"}]}]}"#,
    )
    .unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok && err.contains("jobs[0] (J-1) process_lines[1].unit_price: given twice in one object"), "{err}");
    // A value JSON cannot hold is named by its record and field, as the API names it.
    for (value, says) in [("1e999", "number out of range"), (r#""\ud800""#, "escape")] {
        std::fs::write(
            &file,
            format!(r#"{{"clients": [{{"id": "C-X1", "name": "x"}}, {{"id": "C-X2", "name": "y", "zz": {value}}}]}}"#),
        )
        .unwrap();
        let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
        assert!(!ok && err.contains("clients[1] (C-X2) zz: cannot be read") && err.contains(says), "{value}: {err}");
    }
    // An object written as an array (its fields by position) is refused, as the API refuses it.
    std::fs::write(&file, r#"{"clients": [["C-9", "x"]]}"#).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok && err.contains("clients[0] record: expected a JSON object"), "{err}");
    std::fs::write(&file, r#"{"clients": [{"id": "C-9", "name": "x"}], "deliveries": [{"id": "D-1", "client_id": "C-9", "status": "picked", "venue": "v", "description": "d", "tracking": ["DPD", "1", null]}]}"#).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(
        !ok && err.contains("deliveries[0] (D-1) tracking: expected an object with named fields, not an array"),
        "{err}"
    );
    std::fs::write(&file, r#"{"clients": {"id": "C-1"}}"#).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(!ok && err.contains("clients: expected an array of records") && !err.contains("clients clients"), "{err}");
    let (ok, _, err) =
        output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(dir.path().join("missing.json")));
    assert!(!ok);
    assert!(err.contains("cannot read"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "the OS's words once: {err}");
    // Nor is a store made for a file that is not there.
    let elsewhere = dir.path().join("never/made.db");
    let (ok, _, err) = output(
        cport(&[("CPORT_DATABASE_URL", &format!("sqlite://{}", elsewhere.display()))])
            .arg("import")
            .arg(dir.path().join("missing.json")),
    );
    assert!(!ok && err.contains("cannot read"), "{err}");
    assert!(!dir.path().join("never").exists(), "no store made: {err}");
    // A byte-order mark before the document (some Windows tools write one) is passed over.
    std::fs::write(&file, "\u{feff}{\"clients\": [{\"id\": \"C-1\", \"name\": \"A\"}]}").unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    assert!(ok, "{err}");
}

/// `cport import` streams the document in batches: entities listed before those they refer
/// to (here alphabetically, so art requirements come before clients) still land, a key
/// repeated thousands of records apart is still caught, and an entity named twice or
/// unknown is refused; each refusal writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_streams_in_any_order_and_still_sees_the_whole_document() {
    let dir = tempfile::tempdir().unwrap();
    let url = existing_store(dir.path()).await;
    let file = dir.path().join("doc.json");
    let import = || output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("import").arg(&file));
    let count = |table: &'static str| {
        let url = url.clone();
        async move {
            let db = cport::store::Db::connect(&url).await.unwrap();
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let (n,): (i64,) = cport::store::on_db!(&db, p => sqlx::query_as(&sql).fetch_one(p).await).unwrap();
            n
        }
    };
    let mut doc = common::world();
    let many: Vec<serde_json::Value> = (0..5_000)
        .map(|i| serde_json::json!({"id": format!("J-B{i}"), "client_id": "C-1", "name": "Bulk", "status": "entered"}))
        .collect();
    doc["jobs"].as_array_mut().unwrap().extend(many);
    let jobs = doc["jobs"].as_array().unwrap().len();
    let text = doc.to_string();
    assert!(text.find("\"art_requirements\"") < text.find("\"clients\""), "keys out of order");

    // The same with J-1 again at the end: refused, naming both places.
    let first = doc["jobs"][0].clone();
    doc["jobs"].as_array_mut().unwrap().push(first);
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, _, err) = import();
    assert!(!ok);
    assert!(err.contains(&format!("jobs[{jobs}] (J-1) id")) && err.contains("also at index 0"), "{err}");
    assert_eq!(count("jobs").await, 0);

    for (bad, named) in [
        (r#"{"clients": [], "clients": []}"#, "`clients` appears twice"),
        (r#"{"clients": [], "widgets": []}"#, "unknown entity `widgets`"),
        // A name that would drive the operator's terminal is shown, not obeyed.
        (r#"{"clients": [], "\u001b]0;x\u0007red": []}"#, "unknown entity `<U+001B>]0;x<U+0007>red`"),
        (r#"{"clients": [{"id": "C-1", "name": "A", "co\u001b[2Jlour": 1}]}"#, "co<U+001B>[2Jlour"),
        (r#"{"clients": {"id": "C-1"}}"#, "expected an array"),
        (r#"{"clients": [{"id": "C-1", "name": "A"}"#, "not a JSON document"),
        // One entity's array, as the API takes it: said so, with where such a file goes.
        (r#"[{"id": "C-1", "name": "A"}]"#, "is not an import document: invalid type: sequence"),
    ] {
        std::fs::write(&file, bad).unwrap();
        let (ok, _, err) = import();
        assert!(!ok, "{bad}");
        assert!(err.contains(named), "{bad}: {err}");
        assert!(!err.contains(['\u{1b}', '\u{7}']), "{bad}: no control character reaches the terminal: {err:?}");
    }
    assert_eq!(count("clients").await, 0);

    std::fs::write(&file, &text).unwrap();
    let (ok, out, err) = import();
    assert!(ok, "{out}\n{err}");
    assert!(out.lines().any(|l| l.starts_with("jobs") && l.contains(&format!("{jobs} inserted"))), "{out}");
    assert_eq!(count("jobs").await, jobs as i64);
    assert_eq!(count("art_requirements").await, doc["art_requirements"].as_array().unwrap().len() as i64);
}

/// A document refused where there was no store leaves none behind: the store made for it
/// goes again, rather than stay as if something had been imported.
#[test]
fn a_refused_import_leaves_no_new_store_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let url = cport::store::sqlite_url(&db).unwrap();
    let file = dir.path().join("doc.json");
    std::fs::write(&file, r#"{"clients": [{"id": "C-1", "name": ""}]}"#).unwrap();
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).args(["import", file.to_str().unwrap()]));
    assert!(!ok && err.contains("name") && err.contains("removed again"), "{err}");
    assert!(!db.exists(), "no store left behind");
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("", vec![], "link_secret"),
        ("", vec![("CPORT_API_TOKEN", "t")], "link_secret"),
        ("", vec![("CPORT_LINK_SECRET", "0123456789abcdef")], "api_token"),
        ("lisen = \"127.0.0.1:1\"\n", vec![], "lisen"),
        ("[digest]\nschedule = \"at eight\"\n", vec![], "digest.schedule"),
        ("[smtp]\nport = \"twenty-five\"\n", vec![], "smtp.port"),
        ("", vec![("CPORT_SMTP__PORT", "x")], "CPORT_SMTP__PORT"),
        ("", vec![("CPORT_DATABASE_URL", "mysql://x")], "database_url"),
        ("[inbound]\nmax_bytes = 10485760\n", vec![], "inbound.max_bytes"),
        ("max_body_bytes = 1048576\n[inbound]\nmax_attachment_bytes = 65536\n", vec![], "max_body_bytes"),
        // A number out of its own range is blamed before a check between two keys would
        // blame the other one.
        ("[inbound]\nmax_attachment_bytes = 999999999999\n", vec![], "key `inbound.max_attachment_bytes`"),
        ("[email.dkim]\nselector = \"s1\"\n", vec![], "email.dkim.domain"),
        ("[email.dkim]\nselector = \"s1\"\ndomain = \"tot.example\"\n", vec![], "email.dkim.key_file"),
    ];
    // Cases that get as far as the checks after the secrets.
    let with_secrets: Vec<(&str, &str)> = vec![
        // Numbers out of range: a zero that stops the work, a size that overflows or floods.
        ("[digest]\nlink_ttl_days = 100000000\n", "digest.link_ttl_days"),
        ("[outbox]\nworkers = 4000000000\n", "outbox.workers"),
        ("[outbox]\nlease_seconds = 10000000000000\n", "outbox.lease_seconds"),
        ("[portal]\nlogin_attempts_per_account = 0\n", "portal.login_attempts_per_account"),
        ("[alerts]\nbatch_window_seconds = 10000000000000\n", "alerts.batch_window_seconds"),
        ("[outbox]\nbackoff_base_seconds = 600\nbackoff_max_seconds = 60\n", "outbox.backoff_max"),
        // Zero is no Discord id (it would stop the start-up further on).
        ("[discord]\nchannel_id = \"0\"\n", "discord.channel_id"),
        ("[discord]\nstaff = [\"0\"]\n", "discord.staff"),
        // Telegram's ids are compared as Telegram writes them: these would never match.
        ("[telegram]\nstaff = [\"+123\"]\n", "telegram.staff"),
        ("[telegram]\nstaff = [\"0123\"]\n", "telegram.staff"),
        ("[imap]\ntimeout_seconds = 0\n", "imap.timeout_seconds"),
        ("[smtp]\nport = 0\n", "smtp.port"),
        ("[branding]\nlogo_url = \"javascript:alert(1)\"\n", "branding.logo_url"),
        // Under a path, a signed link would sign in and redirect out of it.
        ("public_url = \"https://tot.example/cport\"\n", "public_url"),
        ("[branding]\nlogo_url = \"/media/logo.png\\\" onerror=x\"\n", "branding.logo_url"),
    ];
    let with_secrets = with_secrets.into_iter().map(|(file, named)| (file, SECRETS.to_vec(), named));
    for (file, env, named) in cases.into_iter().chain(with_secrets) {
        std::fs::write(&cfg, file).unwrap();
        // In the temp dir: a case refused late (a DKIM key) has made the default mail folder.
        let (ok, _, err) = output(cport(&env).current_dir(dir.path()).arg("--config").arg(&cfg).arg("serve"));
        assert!(!ok, "{named}: should not start");
        assert!(err.contains(named), "{named}: `{err}`");
    }
    // A device, a folder or a file far too large is refused at once, not read without end.
    std::fs::write(&cfg, "#".repeat(2 * 1024 * 1024)).unwrap();
    let big = cfg.to_string_lossy().to_string();
    let folder = dir.path().to_string_lossy().to_string();
    for (path, says) in
        [("/dev/zero", "not a regular file"), (folder.as_str(), "a folder"), (big.as_str(), "larger than 1 MiB")]
    {
        let (ok, _, err) = output(cport(&SECRETS).current_dir(dir.path()).args(["--config", path, "outbox", "list"]));
        assert!(!ok && err.contains(path) && err.contains(says), "{path}: `{err}`");
    }
}

/// The secrets `serve` needs, so that a case can reach the check it is about.
const SECRETS: [(&str, &str); 2] = [("CPORT_API_TOKEN", "t"), ("CPORT_LINK_SECRET", "0123456789abcdef0123")];

/// The environment of a command on the store at `url`, with the secrets it may need.
/// The environment that points a command at `t`'s store, with its secrets.
fn env_of(t: &common::TestState) -> [(&'static str, &str); 3] {
    [
        ("CPORT_DATABASE_URL", t.state.config.database_url.expose()),
        ("CPORT_API_TOKEN", "t"),
        ("CPORT_LINK_SECRET", t.state.config.link_secret.expose()),
    ]
}

/// A folder holding a migrated SQLite store, and the store's URL.
fn migrated_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cport.db").display());
    let (ok, _, err) = output(cport(&on_store(&url)).arg("migrate"));
    assert!(ok, "{err}");
    (dir, url)
}

fn on_store(url: &str) -> [(&str, &str); 3] {
    [("CPORT_DATABASE_URL", url), SECRETS[0], SECRETS[1]]
}

/// A path named on the command line, or a file of a folder read, is shown with its control
/// characters and stray bytes written out: a hostile file name neither moves the terminal's
/// cursor nor forges a log line, and the file meant can still be told.
#[test]
fn paths_in_messages_show_what_would_not_print() {
    use std::os::unix::ffi::OsStrExt;
    let (dir, url) = migrated_store();
    let hostile = dir.path().join("x\u{1b}[31m");
    let (ok, _, err) = output(cport(&on_store(&url)).arg("import").arg(&hostile));
    assert!(!ok && err.contains("x<U+001B>[31m") && !err.contains('\u{1b}'), "{err:?}");
    let (ok, _, err) =
        output(cport(&on_store(&url)).arg("--config").arg(dir.path().join("c\u{7}.toml")).arg("migrate"));
    assert!(!ok && err.contains("c<U+0007>.toml") && !err.contains('\u{7}'), "{err:?}");
    // A backlog folder holding a file whose name is no text, nor harmless.
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::write(mail.join(std::ffi::OsStr::from_bytes(b"evil\x1b]0;pwn\x07\xe9.eml")), b"not a message").unwrap();
    let out = cport(&on_store(&url)).args(["inbound-email", "--dir"]).arg(&mail).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("evil<U+001B>]0;pwn<U+0007><0xE9>.eml"), "{said:?}");
    assert!(!said.contains('\u{1b}') && !said.contains('\u{7}'), "{said:?}");
}

#[test]
fn environment_variables_that_are_not_utf8_stop_only_when_they_are_cports() {
    use std::os::unix::ffi::OsStrExt;
    let not_utf8 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    // Where the default store would be made.
    let dir = tempfile::tempdir().unwrap();
    // Someone else's variable: ignored (a `--help` that reads no config, and a command that does).
    let (ok, out, err) = output(cport(&[]).env("LEGACY_NAME", not_utf8).args(["link", "--help"]));
    assert!(ok && out.contains("Usage:"), "{err}");
    let (ok, _, err) =
        output(cport(&SECRETS).current_dir(&dir).env("LEGACY_NAME", not_utf8).args(["link", "--contact", "P-404"]));
    assert!(!ok && !err.contains("panicked"), "{err}");
    // cport's own: refused, named.
    let (ok, _, err) =
        output(cport(&SECRETS).current_dir(&dir).env("CPORT_PUBLIC_URL", not_utf8).args(["link", "--contact", "P-1"]));
    assert!(!ok && err.contains("CPORT_PUBLIC_URL") && err.contains("UTF-8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["migrate", "--help"],
        vec!["import", "--help"],
        vec!["digest", "run", "--help"],
        vec!["gen-data", "--help"],
    ] {
        let (ok, out, _) = output(cport(&[]).args(&args));
        assert!(ok && out.contains("Usage:"), "{args:?}: {out}");
    }
}

/// With a JSON log, the error that ends a command is a JSON line too (a collector reads
/// every line of it), naming what went wrong.
#[test]
fn a_fatal_error_is_a_json_line_when_the_log_is_json() {
    // A configuration that cannot be read, and a command's own refusal (a message that is
    // not there, a banner that is not there) alike.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    assert!(output(cport(&[("CPORT_DATABASE_URL", &url)]).arg("migrate")).0);
    for (args, says) in [
        (&["--config", "/nonexistent/c.toml", "outbox", "list"][..], "/nonexistent/c.toml"),
        (&["outbox", "drop", "99999"][..], "message 99999 not found"),
        (&["banner", "retract", "999"][..], "no banner with id 999"),
    ] {
        let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", &url)]).args(["--log-format", "json"]).args(args));
        assert!(!ok, "{args:?}");
        let lines: Vec<serde_json::Value> =
            err.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("a JSON line: {l}"))).collect();
        let last = lines.last().expect("a line");
        assert_eq!(last["level"], "ERROR", "{err}");
        assert!(last["fields"]["error"].as_str().unwrap().contains(says), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let mut child = cport(&[
        ("CPORT_DATABASE_URL", &url),
        ("CPORT_LISTEN", "127.0.0.1:0"),
        ("CPORT_API_TOKEN", "t"),
        ("CPORT_LINK_SECRET", "0123456789abcdef0123"),
        ("CPORT_DATA_DIR", dir.path().to_str().unwrap()),
        ("NO_COLOR", "1"),
    ])
    .current_dir(dir.path())
    .arg("--log-format")
    .arg("json")
    .arg("serve")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The server logs its bound address once it is listening; read it, then connect.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "serving" {
            break v["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    let r = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn inbound_email_asks_the_mta_to_retry_when_the_store_is_down() {
    // Nothing listens on port 9 of loopback: the store cannot be reached.
    let out = piped(
        cport(&on_store("postgres://cport@127.0.0.1:9/cport")).arg("inbound-email"),
        b"From: a@b.example\nSubject: x\n\nITEMS\n",
    );
    assert_eq!(out.status.code(), Some(75), "EX_TEMPFAIL");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("try again later"), "{said}");
    assert!(said.to_lowercase().contains("refused"), "what the network said: {said}");
    assert!(
        !said.contains("postgres://") && !said.contains("127.0.0.1"),
        "no store address: a bounce carries it: {said}"
    );
}

/// A command line the parser refuses (a typo in `master.cf`, a flag an upgrade dropped)
/// defers the mail with 75, as any failure before the message is read does: exit 2 is no
/// code a mail server knows, and Postfix would bounce every reply with the usage text.
/// Help is still help, and other commands keep the parser's own code.
#[test]
fn inbound_email_with_arguments_it_does_not_take_defers() {
    let mail = b"From: a@b.example\nSubject: x\n\nITEMS\n";
    for args in [&["inbound-email", "--bogus"][..], &["--log-format", "yaml", "inbound-email"], &["inbound-email", "x"]]
    {
        let out = piped(cport(&[]).args(args), mail);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty(), "{args:?}: the parser's words are said");
    }
    let out = piped(cport(&[]).args(["inbound-email", "--help"]), b"");
    assert_eq!(out.status.code(), Some(0));
    let out = piped(cport(&[]).args(["outbox", "--bogus"]), b"");
    assert_eq!(out.status.code(), Some(2));
}

/// A pipe that cannot start for want of its mail folder (a file where the folder should be)
/// defers, and says so without the folder's path.
#[test]
fn inbound_email_that_cannot_start_names_no_path() {
    let (dir, url) = migrated_store();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let mut env = on_store(&url).to_vec();
    env.push(("CPORT_EMAIL__DIR", blocker.to_str().unwrap()));
    let out = piped(cport(&env).arg("inbound-email"), b"From: a@b.example\nSubject: x\n\nITEMS\n");
    assert_eq!(out.status.code(), Some(75), "EX_TEMPFAIL");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("try again later"), "{said}");
    assert!(!said.contains(dir.path().to_str().unwrap()), "no path: {said}");
}

#[test]
fn inbound_email_to_a_store_that_is_not_there_defers_and_makes_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("misspelt/cport.db");
    let out = piped(
        cport(&on_store(&format!("sqlite://{}", missing.display()))).arg("inbound-email"),
        b"From: a@b.example\nSubject: x\n\nITEMS\n",
    );
    assert_eq!(out.status.code(), Some(75), "EX_TEMPFAIL: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!missing.exists() && !dir.path().join("misspelt").exists(), "no empty store was made");
}

/// A command that reads or changes a store finds none at a misspelt path: it says so, naming
/// `database_url`, and makes no empty store to report nothing from; `migrate` makes it. A
/// path naming a folder, or a file that is not a store, is refused with its cause in words.
#[test]
fn commands_on_a_store_that_is_not_there_say_so_and_make_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("misspelt/cport.db");
    let url = format!("sqlite://{}", missing.display());
    let env = on_store(&url);
    for args in [
        &["outbox", "list"][..],
        &["inbound", "held"],
        &["digest", "run", "--dry-run"],
        &["staff", "list"],
        &["link", "--contact", "P-1"],
    ] {
        let (ok, _, err) = output(cport(&env).args(args));
        assert!(!ok && err.contains("database_url: no store at"), "{args:?}: {err}");
        assert!(!dir.path().join("misspelt").exists(), "{args:?} made a store");
    }
    // Run beside a demo's folder, the demo's config is named.
    std::fs::create_dir(dir.path().join("demo-data")).unwrap();
    std::fs::write(dir.path().join("demo-data/cport.toml"), "# Written by `cport demo`.\n").unwrap();
    let (ok, _, err) = output(cport(&env).current_dir(dir.path()).args(["outbox", "list"]));
    assert!(!ok && err.contains("the demo's is read with --config demo-data/cport.toml"), "{err}");
    // An empty file there (a `touch`, a creation cut short) is no store either.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let empty_url = format!("sqlite://{}", empty.display());
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", empty_url.as_str())]).args(["outbox", "list"]));
    assert!(!ok && err.contains("database_url: no store at"), "{err}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "nothing was written into it");
    let (ok, out, err) = output(cport(&env).arg("migrate"));
    assert!(ok && out.contains("migrations applied") && out.contains(" new, ") && missing.exists(), "{out}{err}");
    // Again: nothing to do, and it says so (an upgrade and a no-op read apart).
    let (ok, out, err) = output(cport(&env).arg("migrate"));
    assert!(ok && out.contains("none new; the store was up to date"), "{out}{err}");
    let (ok, out, err) = output(cport(&env).args(["outbox", "list"]));
    assert!(ok && out.contains("no messages to list") && !out.contains("RECIPIENT"), "{out}{err}");
    let (ok, out, err) = output(cport(&env).args(["outbox", "list", "--status", "dead"]));
    assert!(ok && out.contains("no dead messages to list"), "{out}{err}");

    // A path naming a folder, and a file that is not a store: the cause in words, not only
    // SQLite's "unable to open database file".
    let folder = dir.path().join("folder.db");
    std::fs::create_dir(&folder).unwrap();
    let folder_url = format!("sqlite://{}", folder.display());
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", folder_url.as_str())]).arg("migrate"));
    assert!(!ok && err.contains("names a file, not a folder") && err.contains("SQLite code 14"), "{err}");
    let notes = dir.path().join("notes.db");
    std::fs::write(&notes, "not a store\n".repeat(100)).unwrap();
    let notes_url = format!("sqlite://{}", notes.display());
    let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", notes_url.as_str())]).args(["outbox", "list"]));
    assert!(!ok && err.contains("is not a SQLite database"), "{err}");
}

/// `link --to` says why a path cannot be where the link leads, naming the flag, before it
/// reads any configuration or store.
#[test]
fn link_names_what_is_wrong_with_its_path() {
    for (to, says) in [
        ("/../../etc/passwd", "may not hold a . or .. step"),
        ("/%2e%2e/l/x", "may not hold a . or .. step"),
        ("visuals", "starting with one /"),
        ("//evil.example", "starting with one /"),
        ("/a b", "spaces, backslashes or control characters"),
        ("/a\\b", "spaces, backslashes or control characters"),
    ] {
        let (ok, _, err) = output(cport(&[]).args(["link", "--contact", "P-1", "--to", to]));
        assert!(!ok && err.contains("--to: ") && err.contains(says), "{to}: {err}");
    }
    let long = format!("/{}", "a".repeat(2000));
    let (ok, _, err) = output(cport(&[]).args(["link", "--contact", "P-1", "--to", &long]));
    assert!(!ok && err.contains("longer than 2000"), "{err}");
}

/// Runs SQL on a SQLite file by hand, as someone with a SQL shell would.
async fn by_hand(file: &std::path::Path, statements: &[&str]) {
    use sqlx::{ConnectOptions, Connection};
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(file).create_if_missing(true);
    let mut c = opts.connect().await.unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
}

/// Every command on `file`: each is refused, saying `says`, and the file is not changed by
/// a byte (no WAL mode written into it, no -wal or -shm beside it).
fn every_command_refuses(dir: &std::path::Path, file: &std::path::Path, says: &[&str], with_migrate: bool) {
    let before = std::fs::read(file).unwrap();
    let doc = dir.join("doc.json");
    std::fs::write(&doc, "{}").unwrap();
    let url = format!("sqlite://{}", file.display());
    let env = on_store(&url);
    let import = ["import", doc.to_str().unwrap()];
    let mut commands =
        vec![&["outbox", "list"][..], &["inbound", "list"], &["digest", "run", "--dry-run"], &["staff", "list"]];
    if with_migrate {
        commands.extend([&["migrate"][..], &import[..]]);
    }
    for args in commands {
        let (ok, _, err) = output(cport(&env).args(args));
        assert!(!ok && says.iter().all(|s| err.contains(s)), "{args:?}: {err}");
        let same = std::fs::read(file).unwrap() == before;
        assert!(same, "{args:?} changed {} (not a byte of it may change)", file.display());
    }
    let name = file.file_name().unwrap().to_string_lossy();
    for extra in ["-wal", "-shm"] {
        assert!(!dir.join(format!("{name}{extra}")).exists(), "{name}{extra} was left beside it");
    }
}

/// Another program's SQLite file named by mistake is refused by every command, naming its
/// tables, and not changed by a byte, even one that keeps a migration table of its own. A
/// cport store older than the binary is not migrated, nor its journal mode changed, by a
/// command that only reads or adds to it: `cport migrate` is asked for. One a newer cport
/// migrated is refused, naming the migration this one does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_database_is_left_alone_and_an_older_store_asks_for_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    by_hand(&other, &["CREATE TABLE mine (x)"]).await;
    every_command_refuses(dir.path(), &other, &["other.db holds", "`mine`", "not cport's"], true);
    // Another program that keeps its migrations as cport does (sqlx's table).
    let sqlx_other = dir.path().join("sqlx-other.db");
    by_hand(
        &sqlx_other,
        &[
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, installed_on TEXT, \
             success BOOLEAN, checksum BLOB, execution_time BIGINT)",
            "INSERT INTO _sqlx_migrations VALUES (20200101000000, 'theirs', '', 1, x'00', 0)",
            "CREATE TABLE users (id INTEGER)",
        ],
    )
    .await;
    every_command_refuses(dir.path(), &sqlx_other, &["sqlx-other.db holds", "`users`", "not cport's"], true);

    // A store a migration behind this cport, kept in the rollback journal (a restored copy).
    let store = dir.path().join("cport.db");
    let url = format!("sqlite://{}", store.display());
    let env = on_store(&url);
    assert!(output(cport(&env).arg("migrate")).0);
    by_hand(
        &store,
        &[
            "PRAGMA journal_mode = DELETE",
            "DELETE FROM _sqlx_migrations WHERE version = 20261204000022",
            "ALTER TABLE contacts DROP COLUMN created_at",
        ],
    )
    .await;
    every_command_refuses(dir.path(), &store, &["1 migrations to apply", "cport migrate"], false);
    let (ok, out, err) = output(cport(&env).arg("migrate"));
    assert!(ok, "{out}{err}");
    let (ok, out, err) = output(cport(&env).args(["outbox", "list"]));
    assert!(ok, "{out}{err}");

    // A store a newer cport migrated.
    by_hand(
        &store,
        &[
            "PRAGMA journal_mode = DELETE",
            "INSERT INTO _sqlx_migrations VALUES (20991231000000, 'later', '', 1, x'00', 0)",
        ],
    )
    .await;
    every_command_refuses(dir.path(), &store, &["migrated by a newer cport", "20991231000000"], true);
}

/// Output cut short (`cport outbox list | head -1`) ends the command quietly, as for `ls`:
/// no panic in the log for a reader that has gone.
#[test]
fn a_listing_piped_into_a_reader_that_leaves_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cport.db").display());
    let env = [("CPORT_DATABASE_URL", url.as_str())];
    assert!(output(cport(&env).arg("migrate")).0);
    for args in [&["outbox", "list"][..], &["inbound", "list"]] {
        let mut child =
            cport(&env).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cport starts");
        // The reader leaves before a line is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panic"), "{args:?}: {stderr}");
    }
}

#[test]
fn inbound_email_with_a_broken_config_defers_and_names_no_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken-secret.toml"), "link_secret = [unclosed").unwrap();
    std::fs::write(dir.path().join("mistyped-secret.toml"), "[smtp]\nport = \"secret-port\"").unwrap();
    for (what, config, says) in [
        ("missing", dir.path().join("secret-place/cport.toml"), "cannot be read"),
        ("unreadable TOML", dir.path().join("broken-secret.toml"), "not valid TOML"),
        ("a value of the wrong type", dir.path().join("mistyped-secret.toml"), "`smtp.port` is not usable"),
    ] {
        let out = piped(
            cport(&[]).arg("--config").arg(&config).arg("inbound-email"),
            b"From: a@b.example\nSubject: x\n\nITEMS\n",
        );
        assert_eq!(out.status.code(), Some(75), "{what}: EX_TEMPFAIL, so the MTA keeps the message");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("try") && said.contains(says), "{what}: {said}");
        assert!(!said.contains("secret"), "{what}: no path or content of the config: {said}");
    }
}

#[test]
fn the_demo_keeps_its_secrets_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    // Its folder named relative to where it runs: the config it writes still works from
    // anywhere (the `outbox list` below runs elsewhere).
    let mut child = cport(&[])
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().file_name().unwrap())
        .current_dir(dir.path().parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Bounded: the demo prints its banner once the store is ready.
    let mut seen = vec![];
    let mut running_at = String::new();
    let ready = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("is running") => {
                running_at = l;
                break true;
            }
            Some(Ok(l)) => seen.push(l),
            _ => break false,
        }
    };
    // What it prints next, up to its list of portal links (bounded by the output's end).
    for l in lines.by_ref() {
        let Ok(l) = l else { break };
        let end = l.contains("Open the portal");
        seen.push(l);
        if end {
            break;
        }
    }
    let mode_of = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777)
    };
    let mode = mode_of(&dir.path().join("cport.toml"));
    // The store and the mail hold every message's text, sign-in links among them.
    let store_mode = mode_of(&dir.path().join("cport.db"));
    let mail_modes: Vec<u32> = std::fs::read_dir(dir.path().join("mail"))
        .map(|d| d.filter_map(|e| mode_of(&e.ok()?.path()).ok()).collect())
        .unwrap_or_default();
    // A second demo in the same folder while the first serves from it: refused, its store
    // untouched; on the port the first holds: refused before anything is cleared.
    let store = std::fs::metadata(dir.path().join("cport.db")).map(|m| m.modified().unwrap());
    let second = output(cport(&[]).args(["demo", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path()));
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("cport.toml"), "# Written by `cport demo`.\n").unwrap();
    let port =
        running_at.rsplit(':').next().unwrap_or_default().split_whitespace().next().unwrap_or_default().to_string();
    let busy =
        output(cport(&[]).args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(other.path()));
    let store_after = std::fs::metadata(dir.path().join("cport.db")).map(|m| m.modified().unwrap());
    // The demo's made-up bounce leaves one dead message: it has no next try to show.
    let config = dir.path().join("cport.toml");
    let dead = output(cport(&[]).arg("--config").arg(&config).args(["outbox", "list", "--status", "dead"]));
    // The reply it wrote, handed over as a mail server would, approves the visual it names.
    let reply = std::fs::read(dir.path().join("reply.eml")).unwrap_or_default();
    let replied = piped(cport(&[]).arg("--config").arg(&config).arg("inbound-email"), &reply);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "the demo started: {seen:?}");
    assert!(!port.is_empty() && port != "0", "the port the system gave is shown: {running_at}");
    assert!(!second.0 && second.2.contains("another `cport demo` is running"), "{}", second.2);
    assert_eq!(store.unwrap(), store_after.unwrap(), "the running demo's store is untouched");
    assert!(!busy.0 && busy.2.contains("--listen") && busy.2.contains("cannot listen"), "{}", busy.2);
    assert!(busy.2.contains("a cport still running?") && busy.2.contains("port 0 takes a free one"), "{}", busy.2);
    assert!(other.path().join("cport.toml").exists(), "nothing cleared for a port in use");
    assert_eq!(mode.unwrap(), 0o600, "the config holds the API token and link secret");
    assert_eq!(store_mode.unwrap(), 0o600, "the store is its owner's alone");
    assert!(
        !mail_modes.is_empty() && mail_modes.iter().all(|m| m & 0o007 == 0),
        "no mail readable by all: {mail_modes:?}"
    );
    let hints: Vec<&String> = seen.iter().filter(|l| l.contains("staff add")).collect();
    assert_eq!(hints.len(), 1, "the demo says how to make a staff account: {seen:?}");
    let said = String::from_utf8_lossy(&replied.stdout);
    assert!(seen.iter().any(|l| l.contains("inbound-email < ") && l.contains("reply.eml")), "{seen:?}");
    assert!(replied.status.success() && said.contains("processed") && said.contains("APPROVE V-1001"), "{said}");
    // Written as a reply to her digest: its subject, threaded to it.
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("Subject: Re: TOT: ") && reply.contains("In-Reply-To: <"), "{reply}");
    // A message's row: its id, then its status.
    let rows: Vec<&str> = dead
        .1
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next().is_some_and(|id| id.parse::<u64>().is_ok()) && words.next() == Some("dead")
        })
        .collect();
    assert!(dead.0 && !rows.is_empty(), "{}{}", dead.1, dead.2);
    for row in rows {
        let when = row.split_whitespace().nth(5);
        assert_eq!(when, Some("-"), "a dead message shows no next try: {row}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_the_pipe_handled_shows_in_inbound_list_and_the_servers_metrics() {
    let app = common::TestApp::spawn().await;
    let env = on_store(&app.database_url);
    // Run in the app's folder: the default mail folder is made where cport runs.
    let cport = |env: &[(&str, &str)]| {
        let mut c = cport(env);
        c.current_dir(app.dir.path());
        c
    };
    let out = piped(
        cport(&env).arg("inbound-email"),
        b"From: stranger@elsewhere.example\nTo: help@tot.example\nMessage-ID: <pipe-1@elsewhere.example>\nSubject: hello\n\nITEMS\n",
    );
    assert_eq!(out.status.code(), Some(0));

    let (ok, stdout, stderr) = output(cport(&env).args(["inbound", "list"]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("inbound: ignored 1"), "{stdout}");
    assert!(stdout.contains("pipe-1@elsewhere.example") && stdout.contains("no valid reply token"), "{stdout}");
    let (ok, _, stderr) = output(cport(&env).args(["inbound", "list", "--disposition", "lost"]));
    assert!(!ok && stderr.contains("--disposition"), "{stderr}");
    // Duplicates are told to the route that brought them, never recorded: no filter for them.
    let (ok, _, stderr) = output(cport(&env).args(["inbound", "list", "--disposition", "duplicate"]));
    assert!(!ok && stderr.contains("--disposition") && stderr.contains("processed, bounce, ignored, held"), "{stderr}");

    let metrics = app.text("/metrics").await;
    assert!(metrics.contains("cport_inbound_messages{disposition=\"ignored\"} 1"), "{metrics}");

    // A backlog folder: each file refused is named with why; a link and a folder inside are
    // passed over by name, the link not followed.
    let dir = app.dir.path().join("backlog");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("empty.eml"), b"").unwrap();
    std::fs::write(dir.join("ok.eml"), b"From: s@elsewhere.example\nMessage-ID: <dir-1@x>\n\nITEMS\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link.eml")).unwrap();
    let (ok, stdout, stderr) = output(cport(&env).arg("inbound-email").arg("--dir").arg(&dir));
    // A file refused fails the run, as on standard input: a script sees it.
    assert!(!ok && stderr.contains("1 of the 2 files were refused"), "{stderr}");
    assert!(stdout.contains("2 messages") && stdout.contains("1 ignored, 1 refused"), "{stdout}");
    assert!(stderr.contains("empty.eml: not an email message"), "{stderr}");
    assert!(stderr.contains("passed over") && stderr.contains("link.eml: not a regular file"), "{stderr}");
    assert!(stderr.contains("sub: not a regular file"), "{stderr}");
}

/// The MTA's pipe sends the answer to the reply it took, and nothing else: the rest of the
/// outbox (here two digests due) is the running server's, so a pipe never runs long on a
/// backlog and is killed mid-send by the MTA's time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_sends_its_answer_and_leaves_the_rest_of_the_outbox() {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    let token = common::reply_token_of(&t.state.db, "P-1A").await;
    let mail = t.state.config.email.dir.display().to_string();
    let env = [env_of(&t).as_slice(), &[("CPORT_EMAIL__DIR", mail.as_str())]].concat();
    let reply = format!(
        "From: Ann Admin <ann@alpha.example>\nTo: reply+{token}@reply.tot.example\nMessage-ID: <pipe-answer@alpha.example>\nSubject: Re: TOT\n\nITEMS\n"
    );
    let out = piped(cport(&env).arg("inbound-email"), reply.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(String, String)> = cport::store::outbox::list_messages(&t.state.db, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.message.kind.as_str().to_string(), m.status.as_str().to_string()))
        .collect();
    let sent: Vec<_> = rows.iter().filter(|(_, status)| status == "sent").collect();
    assert_eq!(sent, [&("reply".to_string(), "sent".to_string())], "{rows:?}");
    assert_eq!(rows.iter().filter(|r| *r == &("digest".to_string(), "queued".to_string())).count(), 2, "{rows:?}");
    assert_eq!(std::fs::read_dir(&t.state.config.email.dir).unwrap().count(), 1, "one mail handed over");
}

/// A store with the test world and a digest queued to each of Ann and Bob.
async fn with_two_digests() -> common::TestState {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    common::digests_now(&t.state, &["P-1A", "P-1B"]).await;
    t
}

/// Makes message `id` dead with `error`, as a sender's failed last try does.
async fn goes_dead(db: &cport::store::Db, id: i64, error: &str, now: chrono::DateTime<chrono::Utc>) {
    assert!(cport::store::console::hold_for(db, id, "held-by-test", now).await.unwrap());
    let mark = cport::store::outbox::Mark::Failed { error, retry_at: None };
    assert!(cport::store::outbox::mark(db, id, "held-by-test", mark, now).await.unwrap());
}

/// `outbox drop` drops a waiting message or sets a dead one aside, saying which; a message
/// that is not there or not in a state for it is refused, naming it, and nothing changes;
/// `outbox retry` undoes a drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_drop_drops_a_waiting_message_and_sets_a_dead_one_aside() {
    let t = with_two_digests().await;
    let env = env_of(&t);
    let db = &t.state.db;
    let ids: Vec<i64> = cport::store::outbox::list_messages(db, None, 10).await.unwrap().iter().map(|m| m.id).collect();
    let [waiting, dead] = ids[..] else { panic!("two digests: {ids:?}") };
    let now = chrono::Utc::now();
    goes_dead(db, dead, "550 5.1.1 no such user", now).await;
    let status = |id: i64| async move {
        cport::store::outbox::get_message(db, id).await.unwrap().unwrap().status.as_str().to_string()
    };

    let (ok, out, err) = output(cport(&env).args(["outbox", "drop", &dead.to_string()]));
    assert!(ok && out.contains(&format!("message {dead}: Set aside")), "{out}{err}");
    let (ok, out, err) = output(cport(&env).args(["outbox", "drop", &waiting.to_string()]));
    assert!(ok && out.contains(&format!("message {waiting}: Dropped; it will not be sent.")), "{out}{err}");
    assert_eq!((status(dead).await, status(waiting).await), ("dropped".into(), "dropped".into()));
    let (ok, out, err) = output(cport(&env).args(["outbox", "list", "--status", "dropped"]));
    assert!(ok && out.contains("dropped by the command line"), "{out}{err}");

    for (id, says) in [
        (
            dead.to_string(),
            format!("error: message {dead} is dropped: only a queued, failed or dead message is dropped"),
        ),
        ("999999".into(), "error: message 999999 not found".into()),
    ] {
        let (ok, out, err) = output(cport(&env).args(["outbox", "drop", &id]));
        assert!(!ok && err.contains(&says) && out.is_empty(), "{id}: {out}{err}");
    }
    let (ok, _, err) = output(cport(&env).args(["outbox", "drop", "seven"]));
    assert!(!ok && err.contains("'seven'") && err.contains("<ID>"), "{err}");
    assert_eq!(status(dead).await, "dropped", "nothing changed");

    let (ok, out, err) = output(cport(&env).args(["outbox", "retry", &dead.to_string()]));
    assert!(ok && out.contains("Queued again"), "{out}{err}");
    assert_eq!(status(dead).await, "queued");
}

/// `outbox retry --dead` queues every dead message again by the rule one is queued again by:
/// one that would not be sent (its contact no longer active) stays dead, counted by why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_retry_dead_leaves_what_would_not_be_sent_saying_why() {
    let t = with_two_digests().await;
    let env = env_of(&t);
    let db = &t.state.db;
    let now = chrono::Utc::now();
    let rows = cport::store::outbox::list_messages(db, None, 10).await.unwrap();
    assert_eq!(rows.len(), 2, "two digests: {rows:?}");
    for m in &rows {
        goes_dead(db, m.id, "421 try later", now).await;
    }
    let to = |contact: &str| rows.iter().find(|m| m.message.contact_id.as_deref() == Some(contact)).unwrap().id;
    let (gone, kept) = (to("P-1A"), to("P-1B"));
    cport::store::on_db!(db, p => sqlx::query("UPDATE contacts SET active = false WHERE id = 'P-1A'")
        .execute(p).await.map(|_| ()))
    .unwrap();

    let (ok, out, err) = output(cport(&env).args(["outbox", "retry", "--dead"]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 dead message(s) queued again"), "{out}");
    assert!(out.contains("1 left dead, as they would not be sent:\n  1: the contact is no longer active"), "{out}");
    let status = |id: i64| async move {
        cport::store::outbox::get_message(db, id).await.unwrap().unwrap().status.as_str().to_string()
    };
    assert_eq!((status(gone).await, status(kept).await), ("dead".into(), "queued".into()));
}

/// `cport demo` empties its folder of an earlier demo's files, but checks its arguments
/// first and never touches a store or config that no demo wrote.
#[test]
fn the_demo_refuses_a_folder_it_did_not_make_and_bad_arguments_before_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cport.db");
    std::fs::write(&store, b"a real store").unwrap();
    let demo_in = |env: &[(&str, &str)], listen: &str| {
        output(cport(env).args(["demo", "--listen", listen, "--data-dir"]).arg(dir.path()))
    };
    let demo = |listen: &str| demo_in(&[], listen);
    // A bad --listen is named as the flag, not as a configuration key.
    for bad in ["bogus", "127.0.0.1:99999", ""] {
        let (ok, _, stderr) = demo(bad);
        assert!(!ok && stderr.contains("--listen") && stderr.contains("not an address"), "{bad}: {stderr}");
    }
    let (ok, _, stderr) = demo("127.0.0.1:0");
    assert!(!ok && stderr.contains("--data-dir") && stderr.contains("did not write"), "{stderr}");
    // The flag rules over CPORT_LISTEN, even one that holds no address.
    let (ok, _, stderr) = demo_in(&[("CPORT_LISTEN", "")], "127.0.0.1:0");
    assert!(!ok && stderr.contains("did not write") && !stderr.contains("listen"), "{stderr}");
    // So do the demo's own store and secrets: the environment's, whatever they hold, are
    // not read (a bad one stopped it, though not taken).
    let own = [("CPORT_DATABASE_URL", "garbage"), ("CPORT_LINK_SECRET", "short")];
    let (ok, _, stderr) = demo_in(&own, "127.0.0.1:0");
    assert!(!ok && stderr.contains("did not write") && !stderr.contains("database_url"), "{stderr}");
    assert!(!stderr.contains("link_secret") && !stderr.contains("CPORT_"), "{stderr}");
    assert_eq!(std::fs::read(&store).unwrap(), b"a real store", "the store is untouched");
    // A PostgreSQL deployment's folder has no store file, but its artwork is as dear.
    std::fs::remove_file(&store).unwrap();
    let artwork = dir.path().join("media").join("artwork.pdf");
    std::fs::create_dir_all(artwork.parent().unwrap()).unwrap();
    std::fs::write(&artwork, b"artwork").unwrap();
    let (ok, _, stderr) = demo("127.0.0.1:0");
    assert!(!ok && stderr.contains("did not write"), "{stderr}");
    assert!(artwork.exists(), "the artwork is untouched");
    // A configuration named for the demo would be ignored: it is refused, naming --config.
    let (ok, _, stderr) = output(
        cport(&[])
            .args(["--config", "/nonexistent.toml", "demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path()),
    );
    assert!(!ok && stderr.contains("--config /nonexistent.toml") && stderr.contains("its own"), "{stderr}");
    assert!(artwork.exists(), "the artwork is untouched");
}

/// `staff add` refuses an address that reads other than it is (a direction override) or is
/// no address, naming `--email`, and makes no account; a good one is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_add_refuses_an_address_that_reads_other_than_it_is() {
    let t = common::TestState::new(|_| {}).await;
    let env = env_of(&t);
    for (email, says) in [
        ("a\u{202e}@tot.example", "--email: holds the direction control character U+202E"),
        ("not an address", "--email: is not an email address"),
        ("a@b.c%0A", "--email: is not an email address"),
        ("a@-b.example", "--email: is not an email address"),
        // A zero-width space: the address would list as `a@tot.example` and remove as none.
        ("a\u{200b}@tot.example", "--email: is not an email address"),
        ("a@tot\u{feff}.example", "--email: is not an email address"),
    ] {
        let (ok, _, err) = output(cport(&env).args(["staff", "add", "--email", email]));
        assert!(!ok && err.contains(says), "{email:?}: {err}");
    }
    assert!(cport::store::staff::list(&t.state.db).await.unwrap().is_empty());
    let (ok, out, err) = output(cport(&env).args(["staff", "add", "--email", "rita@tot.example"]));
    assert!(ok && out.contains("staff account rita@tot.example added"), "{out}{err}");
}

/// `banner post` names what is wrong by the flag it was typed with, and posts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banner_post_names_its_flags() {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    let env = env_of(&t);
    let post = ["banner", "post", "--title", "Closed", "--body", "Friday"];
    for (extra, says) in [
        (vec!["--starts", "2030-01-02T00:00:00Z", "--expires", "2030-01-01T00:00:00Z"], "--expires: must be after"),
        // Read as the API reads it: a space for the `T` is refused, with the form to use.
        (vec!["--starts", "2026-12-05 10:00:00Z"], "is not a time in RFC 3339, for example 2026-11-25T09:30:00Z"),
        (vec!["--expires", "yesterday"], "'--expires <TIME>': `yesterday` is not a time in RFC 3339"),
        (vec!["--client", "C-1", "--client", "C-404"], "--client: unknown client `C-404`"),
        (vec!["--client", "a b"], "--client (the 1 given):"),
        (vec!["--severity", "loud"], "'--severity <SEVERITY>'"),
    ] {
        let (ok, _, err) = output(cport(&env).args(post).args(&extra));
        assert!(!ok && err.contains(says), "{extra:?}: {err}");
    }
    // A value the flag never takes is a bad command line (exit 2), its choices named.
    let out = cport(&env).args(post).args(["--severity", "loud"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("info, warning, urgent"), "{err}");
    assert!(cport::store::banners::list_banners(&t.state.db).await.unwrap().is_empty());
}

/// A PostgreSQL server that takes the connection and never answers (hung, or not PostgreSQL
/// at all) is reported within a bound, naming the URL with its password masked; nothing
/// waits on it for ever.
#[test]
fn a_database_server_that_never_answers_is_reported_not_waited_on() {
    // Bound first: the kernel completes each connection into the listener's backlog, and
    // nothing here ever reads from one.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://cport:hunter2@{}/cport", hung.local_addr().unwrap());
    for args in [&["migrate"][..], &["outbox", "list"]] {
        let started = std::time::Instant::now();
        let (ok, _, err) = output(cport(&[("CPORT_DATABASE_URL", url.as_str())]).args(args));
        assert!(!ok && err.contains("no answer within 8 seconds"), "{args:?}: {err}");
        assert!(err.contains("cport:***@") && !err.contains("hunter2"), "{args:?}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{args:?} waited {:?}", started.elapsed());
    }
}

/// A command leaves its SQLite store whole in its one file: the write-ahead log is folded in
/// when the command ends, so a copy of the file alone (a backup of a stopped store) holds
/// every table `migrate` made and every account `staff add` wrote.
#[test]
fn a_command_leaves_the_store_whole_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cport.db");
    let url = format!("sqlite://{}", file.display());
    let env = [("CPORT_DATABASE_URL", url.as_str()), ("CPORT_LINK_SECRET", "0123456789abcdef0123")];
    let (ok, out, err) = output(cport(&env).arg("migrate"));
    assert!(ok, "{out}{err}");
    let (ok, out, err) = output(cport(&env).args(["staff", "add", "--email", "sam@tot.example"]));
    assert!(ok, "{out}{err}");
    let wal = dir.path().join("cport.db-wal");
    assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0), "the log was folded into the file");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&file, &copy).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (tables, staff): (i64, i64) = rt.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(&copy).read_only(true).connect().await.unwrap();
        let tables = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetch_one(&mut c);
        let tables: i64 = tables.await.unwrap();
        let staff: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff").fetch_one(&mut c).await.unwrap();
        c.close().await.unwrap();
        (tables, staff)
    });
    assert!(tables > 20, "{tables} tables in the copy");
    assert_eq!(staff, 1, "the account is in the copy");

    // Reading needs no link secret; writing a link does, and says so.
    let store_only = [("CPORT_DATABASE_URL", url.as_str())];
    for args in [&["staff", "list"][..], &["banner", "list"], &["outbox", "list"]] {
        let (ok, out, err) = output(cport(&store_only).args(args));
        assert!(ok, "{args:?}: {out}{err}");
    }
    let (ok, _, err) = output(cport(&store_only).args(["staff", "add", "--email", "kim@tot.example"]));
    assert!(!ok && err.contains("link_secret"), "{err}");
    // Nor does queueing messages again, one or every dead one, which checks that the links
    // they carry still open (an unkeyed check would call every link expired, or none).
    for args in [&["outbox", "retry", "1"][..], &["outbox", "retry", "--dead"]] {
        let (ok, _, err) = output(cport(&store_only).args(args));
        assert!(!ok && err.contains("link_secret"), "{args:?}: {err}");
    }
}

/// `link --to` a page the contact cannot open is refused by the flag: the console's, one their
/// role does not see, or a record their client does not have (another client's, or none); a
/// record of theirs is linked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_refuses_a_page_that_would_not_be_found() {
    let app = common::TestApp::with_world().await;
    let env = on_store(&app.database_url);
    // A page the contact's role does not see, asked by the rule the page asks; then pages
    // Ann (an admin, who sees every page her client has) cannot open either.
    let by_role = [
        ("P-1F", "/visuals/V-1", "which a contact of role finance does not see"),
        ("P-1V", "/jobs/J-1/delivery", "which a contact of role viewer does not give"),
    ];
    let for_ann = [
        ("/staff", "is the staff console's"),
        ("/visuals/V-9", "the contact's client has no visual `V-9`"),
        ("/visuals/V-404", "the contact's client has no visual `V-404`"),
        ("/jobs/J-9/delivery", "the contact's client has no job `J-9`"),
        // Below a record's page, only the pages it has.
        ("/visuals/V-1/extra", "has no page `extra` below it"),
        // Encoded, what every route refuses before a page is looked for.
        ("/%00", "may not hold a percent-encoded control character"),
        ("/visuals/V-1?x=%FF", "or bytes that are not UTF-8"),
    ];
    for (contact, to, says) in by_role.into_iter().chain(for_ann.map(|(to, says)| ("P-1A", to, says))) {
        let (ok, _, err) = output(cport(&env).args(["link", "--contact", contact, "--to", to]));
        assert!(!ok && err.contains("--to:") && err.contains(says), "{to}: {err}");
    }
    let (ok, out, err) = output(cport(&env).args(["link", "--contact", "P-1A", "--to", "/visuals/V-1"]));
    assert!(ok && out.contains("/l/"), "{out}{err}");
    // A chat link code, with no chat set up, is refused by the rule the portal and the
    // console ask, and none is made.
    let (ok, out, err) = output(cport(&env).args(["link-code", "--contact", "P-1A"]));
    assert!(!ok && out.is_empty() && err.contains("link-code: no chat channel is set up"), "{out}{err}");
    app.stop().await;
}

/// A dry run for a contact who is not active is refused as the run itself refuses it, by the
/// flag: it would show a digest that never goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_for_an_inactive_contact_is_refused() {
    let app = common::TestApp::with_world().await;
    cport::store::on_db!(&app.db, p => sqlx::query("UPDATE contacts SET active = $1 WHERE id = $2")
        .bind(false).bind("P-1A").execute(p).await.map(|_| ()))
    .unwrap();
    let env = on_store(&app.database_url);
    let (ok, out, err) = output(cport(&env).args(["digest", "run", "--dry-run", "--contact", "P-1A"]));
    assert!(!ok && err.contains("--contact:") && err.contains("is not active") && out.is_empty(), "{out}{err}");
    let (ok, out, err) = output(cport(&env).args(["digest", "run", "--dry-run", "--contact", "P-1B"]));
    assert!(ok, "an active contact's dry run: {out}{err}");
    app.stop().await;
}

/// A message another sender holds (a running server's, or a process's killed mid-send) is
/// said after `outbox send`, with when it goes again, not left unmentioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_send_names_the_messages_another_sender_holds() {
    let t = common::TestState::new(|_| {}).await;
    t.load(common::world()).await;
    common::digests_now(&t.state, &["P-1A"]).await;
    // A sender claimed it and was killed: its claim runs a minute more.
    let now = chrono::Utc::now();
    let lease = now + chrono::Duration::seconds(60);
    let held = cport::store::outbox::claim(
        &t.state.db,
        cport::store::outbox::Take::Lane(cport::store::outbox::Lane::All),
        10,
        "killed",
        now,
        lease,
    )
    .await
    .unwrap();
    assert_eq!(held.len(), 1);
    let url = t.state.config.database_url.expose().to_string();
    let data = t.dir.path().display().to_string();
    let mut env = on_store(&url).to_vec();
    env.push(("CPORT_DATA_DIR", &data));
    let (ok, out, err) = output(cport(&env).args(["outbox", "send"]));
    assert!(ok && out.contains("outbox: 0 sent") && out.contains("1 held by another sender"), "{out}{err}");
    assert!(out.contains(&lease.format("%H:%M").to_string()), "when it goes again: {out}");
    // A send that makes a message dead (an address the server refuses) exits 1, saying where
    // to look: a timer running it sees the failure.
    let smtp = common::SmtpServer::start();
    let bob = serde_json::json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Buyer",
                                               "email": "reject@alpha.example", "role": "buyer"}]});
    t.load(bob).await;
    common::digests_now(&t.state, &["P-1B"]).await;
    let port = smtp.port.to_string();
    env.extend([
        ("CPORT_EMAIL__TRANSPORT", "smtp"),
        ("CPORT_SMTP__HOST", "127.0.0.1"),
        ("CPORT_SMTP__PORT", port.as_str()),
        ("CPORT_SMTP__TLS", "none"),
    ]);
    let (ok, out, err) = output(cport(&env).args(["outbox", "send"]));
    assert!(!ok && out.contains("1 dead"), "{out}{err}");
    assert!(err.contains("1 message(s) went dead; `cport outbox list --status dead` says why"), "{err}");
}

/// `discord register-commands` with nothing answering at `discord.api_url` says it could
/// not reach Discord there, not that Discord refused.
#[test]
fn registering_discord_commands_with_nothing_answering_says_so() {
    let env = [
        SECRETS[0],
        SECRETS[1],
        ("CPORT_DISCORD__TOKEN", "discord-bot-token"),
        ("CPORT_DISCORD__APPLICATION_ID", "123"),
        // Nothing listens on port 1 of loopback.
        ("CPORT_DISCORD__API_URL", "http://127.0.0.1:1"),
    ];
    let (ok, _, err) = output(cport(&env).args(["discord", "register-commands"]));
    assert!(!ok && err.contains("could not reach Discord at http://127.0.0.1:1"), "{err}");
    assert!(!err.contains("refused the commands"), "{err}");
}

/// A store whose applied migration was changed since is refused by `migrate` in the
/// migrator's words, said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_migration_is_said_once() {
    let (_dir, url) = migrated_store();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (ok, _, err) = output(cport(&on_store(&url)).arg("migrate"));
    assert!(!ok && err.matches("previously applied but has been modified").count() == 1, "{err}");
}
