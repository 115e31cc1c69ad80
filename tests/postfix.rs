//! The operator's mail path, as the documentation's "Postfix pipe" steps set it up: a throwaway
//! Postfix instance (its own configuration, queue and log in a temp dir, listening on a
//! loopback port) pipes real SMTP replies into `cport inbound-email` as an unprivileged user.
//! A reply is acted on once; with a configuration cport cannot read, Postfix defers the
//! message (exit 75) instead of bouncing it, and delivers it once the configuration is back.
//! `scripts/test` installs Postfix from the system's packages when it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{cport_bin, world};

/// Runs a Postfix tool; its messages go to the terminal only, so a pseudo-terminal (`script`)
/// shows them when it fails.
fn postfix(conf: &Path, args: &[&str]) {
    let cmd = format!("postfix -c {} {}", conf.display(), args.join(" "));
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("script runs");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stdout));
}

struct Instance {
    dir: tempfile::TempDir,
    port: u16,
}

impl Instance {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let cmd = format!("postfix -c {} stop", self.conf().display());
        let _ = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output();
    }
}

/// A Postfix for `reply.tot.example` whose pipe runs `cport` with `config` as `nobody`.
fn start_postfix(dir: tempfile::TempDir, bin: &Path, config: &Path) -> Instance {
    let root = dir.path().to_path_buf();
    let conf = root.join("conf");
    for d in ["conf", "queue", "data"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let main_cf = format!(
        "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {d}\nmail_owner = postfix\n\
         setgid_group = postdrop\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = mx.test.example\n\
         mydestination =\nmynetworks = 127.0.0.0/8\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n\
         maillog_file_prefixes = {r}\nmaillog_file = {r}/maillog\nbiff = no\n\
         relay_domains = reply.tot.example\ntransport_maps = hash:{c}/transport\nrecipient_delimiter = +\n\
         cport_destination_recipient_limit = 1\nmessage_size_limit = 29360128\n",
        q = root.join("queue").display(),
        d = root.join("data").display(),
        r = root.display(),
        c = conf.display(),
    );
    std::fs::write(conf.join("main.cf"), main_cf).unwrap();
    // The system's master.cf with smtpd on our loopback port, and the documented pipe.
    let base = std::fs::read_to_string("/etc/postfix/master.cf").expect("Postfix is installed");
    let mut master = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
    for line in base.lines() {
        if !line.starts_with("smtp ") && !line.starts_with('#') && !line.trim().is_empty() {
            master.push_str(line);
            master.push('\n');
        }
    }
    master.push_str(&format!(
        "cport unix - n n - 10 pipe\n  flags=DRq user=nobody argv={} --config {} inbound-email\n",
        bin.display(),
        config.display()
    ));
    std::fs::write(conf.join("master.cf"), master).unwrap();
    std::fs::write(conf.join("transport"), "reply.tot.example  cport:\n").unwrap();
    // `-c`: this instance's main.cf (a system that never configured Postfix has none).
    let out = Command::new("postmap").arg("-c").arg(&conf).arg(conf.join("transport")).output().expect("postmap runs");
    assert!(out.status.success(), "postmap: {}", String::from_utf8_lossy(&out.stderr));
    chown_postfix(&root.join("data"));
    postfix(&conf, &["start"]);
    Instance { dir, port }
}

fn chown_postfix(p: &Path) {
    let out = Command::new("chown").arg("postfix").arg(p).output().unwrap();
    assert!(out.status.success());
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn send(port: u16, from: &str, to: &str, id: &str, body: &str) {
    let msg = format!("From: {from}\r\nTo: {to}\r\nSubject: Re: your digest\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n");
    let script = "import smtplib, sys\ns = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))\n\
                  s.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read())\ns.quit()\n";
    let mut child = Command::new("python3")
        .args(["-c", script, &port.to_string(), from, to])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(msg.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "Postfix took the message");
}

/// Waits (bounded: Postfix delivers within seconds) until the log holds `what`.
async fn log_shows(pf: &Instance, what: &str) -> String {
    for _ in 0..300 {
        let log = pf.log();
        if log.contains(what) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Postfix's log never showed `{what}`:\n{}", pf.log());
}

#[tokio::test]
async fn a_reply_through_postfix_is_acted_on_once_and_a_broken_config_defers() {
    assert!(
        std::env::var("USER").as_deref() == Ok("root")
            || Command::new("id").arg("-u").output().unwrap().stdout == b"0\n",
        "this test starts a Postfix instance: it runs as root (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    chmod(&root, 0o755);
    // The pipe runs as `nobody`: its own copy of the binary, a config it can read and a
    // store folder it can write (SQLite writes its WAL beside the file).
    let bin = root.join("cport");
    std::fs::copy(cport_bin(), &bin).unwrap();
    chmod(&bin, 0o755);
    let store = root.join("store");
    std::fs::create_dir_all(store.join("mail")).unwrap();
    let config = root.join("cport.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite://{s}/cport.db\"\ndata_dir = \"{s}\"\napi_token = \"t\"\n\
             link_secret = \"0123456789abcdef0123\"\n[email]\ndir = \"{s}/mail\"\n",
            s = store.display()
        ),
    )
    .unwrap();
    chmod(&config, 0o644);
    let doc = root.join("world.json");
    std::fs::write(&doc, world().to_string()).unwrap();
    for args in [vec!["import", "--quiet"], vec!["digest", "run", "--contact", "P-1A", "--no-send"]] {
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(&config).args(&args);
        if args[0] == "import" {
            cmd.arg(&doc);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for p in [store.clone(), store.join("mail")] {
        chmod(&p, 0o777);
    }
    for e in std::fs::read_dir(&store).unwrap().flatten() {
        if e.path().is_file() {
            chmod(&e.path(), 0o666);
        }
    }
    let db = cport::store::Db::connect(&format!("sqlite://{}/cport.db", store.display())).await.unwrap();
    let token = cport::store::outbox::list_messages(&db, None, 10)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| m.message.reply_token)
        .expect("Ann's digest has a reply token");
    let to = format!("reply+{token}@reply.tot.example");

    let pf = start_postfix(tempfile::tempdir().unwrap(), &bin, &config);
    send(pf.port, "ann@alpha.example", &to, "pf-1@alpha.example", "APPROVE V-1");
    log_shows(&pf, "status=sent (delivered via cport service").await;
    let (status,): (String,) =
        cport::store::on_db!(&db, p => sqlx::query_as("SELECT status FROM visuals WHERE id = 'V-1'")
        .fetch_one(p).await)
        .unwrap();
    assert_eq!(status, "approved", "the reply was acted on");
    // The same message again (an MTA retry): handled, not acted on twice.
    send(pf.port, "ann@alpha.example", &to, "pf-1@alpha.example", "APPROVE V-1");
    let log = log_shows(&pf, "duplicate").await;
    assert_eq!(log.matches("status=sent (delivered via cport service").count(), 2, "{log}");
    let changes = cport::store::changes::list_changes(&db, 0, 100).await.unwrap();
    assert_eq!(changes.iter().filter(|c| c.kind == "visual_approved").count(), 1, "acted on once");

    // cport's configuration unreadable: Postfix keeps the message and tries again later.
    chmod(&config, 0o600);
    send(pf.port, "ann@alpha.example", &to, "pf-2@alpha.example", "ITEMS");
    let log = log_shows(&pf, "status=deferred").await;
    assert!(!log.contains("status=bounced"), "{log}");
    let deferred = log.lines().find(|l| l.contains("status=deferred")).unwrap();
    assert!(!deferred.contains(&config.display().to_string()), "no path in what Postfix keeps: {deferred}");
    // Back in order, the kept message goes through.
    chmod(&config, 0o644);
    postfix(&pf.conf(), &["flush"]);
    for _ in 0..300 {
        if cport::store::inbound::seen(&db, "pf-2@alpha.example").await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cport::store::inbound::seen(&db, "pf-2@alpha.example").await.unwrap(), "{}", pf.log());
}
