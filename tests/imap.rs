//! IMAP polling against a real Dovecot (from the system's packages; `scripts/test` installs
//! it), started here on a loopback port with a throwaway configuration.

mod common;

use std::process::Command;

use chrono::Utc;
use common::{TestState, world};
use cport::store::outbox::{NewMessage, insert_message, list_messages};

/// Ann, a contact of the world's client: her replies are acted on.
const ANN: &str = "Ann Admin <ann@alpha.example>";

struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
}

impl Dovecot {
    fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    fn start() -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path().join("mail"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.path().join("passwd"), "cport:{PLAIN}imap-pass-123\n").unwrap();
        // A free port: bound here, released, and handed to Dovecot, which binds it before
        // its start command returns.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols = imap\nlisten = 127.0.0.1\n\
             ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\nmail_location = maildir:{d}/mail/%u\n\
             first_valid_uid = 1\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={d}/mail/%u\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        );
        let dv = Dovecot { dir, port };
        std::fs::write(dv.config_path(), conf).unwrap();
        dv.run(&[]);
        dv
    }

    fn run(&self, extra: &[&str]) {
        let status = Command::new("/usr/sbin/dovecot")
            .arg("-c")
            .arg(self.config_path())
            .args(extra)
            .status()
            .expect("dovecot runs (scripts/test installs dovecot-imapd)");
        assert!(
            status.success(),
            "dovecot {extra:?}: {}",
            std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
        );
    }

    async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client.login("cport", "imap-pass-123").await.map_err(|(e, _)| e).unwrap()
    }

    async fn deliver(&self, raw: &str) {
        let mut s = self.session().await;
        s.append("INBOX", None, None, raw.replace('\n', "\r\n")).await.unwrap();
        s.logout().await.unwrap();
    }

    async fn unseen(&self) -> usize {
        let mut s = self.session().await;
        s.select("INBOX").await.unwrap();
        let n = s.uid_search("UNSEEN").await.unwrap().len();
        s.logout().await.unwrap();
        n
    }

    async fn count(&self, mailbox: &str) -> u32 {
        let mut s = self.session().await;
        let m = s.select(mailbox).await.unwrap();
        s.logout().await.unwrap();
        m.exists
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/dovecot").arg("-c").arg(self.config_path()).arg("stop").status();
    }
}

/// The mailbox on a loopback port, signed in to as the test Dovecot's user.
fn imap_on(c: &mut cport::config::Config, port: u16) {
    c.imap.host = "127.0.0.1".into();
    c.imap.port = port;
    c.imap.tls = cport::config::Tls::None;
    c.imap.username = "cport".into();
    c.imap.password = cport::config::Secret::new("imap-pass-123");
}

async fn state_for(dv: &Dovecot, processed: &str) -> (TestState, String) {
    let port = dv.port;
    let processed = processed.to_string();
    let t = TestState::new(move |c| {
        imap_on(c, port);
        c.imap.processed_mailbox = processed;
    })
    .await;
    t.load(world()).await;
    let token = t.state.signer.new_reply_token();
    let mut tx = t.state.db.begin().await.unwrap();
    insert_message(
        &mut tx,
        &NewMessage {
            contact_id: Some("P-1A".into()),
            channel: cport::model::Outlet::Email,
            kind: cport::model::MessageKind::Digest,
            idem_key: "test-digest".into(),
            reply_token: Some(token.clone()),
            recipient: "ann@alpha.example".into(),
            subject: "TOT".into(),
            payload:
                serde_json::json!({"to_name": "Ann", "to": "ann@alpha.example", "subject": "TOT: 4 things need you",
                "text": "", "html": "", "message_id": "<d1@reply.tot.example>", "item_keys": []})
                .to_string(),
            next_attempt_at: Utc::now() + chrono::Duration::days(1),
        },
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (t, token)
}

fn reply(token: &str, n: u32, from: &str, extra_header: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: reply+{token}@reply.tot.example\nSubject: Re: TOT\nMessage-ID: <imap-{n}@alpha.example>\n{extra_header}Date: Wed, 25 Nov 2026 09:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

async fn answers(t: &TestState) -> usize {
    list_messages(&t.state.db, None, 100).await.unwrap().iter().filter(|m| m.message.kind.as_str() == "reply").count()
}

#[tokio::test]
async fn unseen_messages_are_handled_once_and_flagged() {
    let dv = Dovecot::start();
    let (t, token) = state_for(&dv, "").await;
    dv.deliver(&reply(&token, 1, ANN, "", "ITEMS")).await;
    dv.deliver(&reply(&token, 2, ANN, "Auto-Submitted: auto-replied\n", "Away")).await;
    dv.deliver(&reply(&token, 3, "Mallory <m@evil.example>", "", "APPROVE V-1")).await;
    assert_eq!(dv.unseen().await, 3);

    let r = cport::channels::imap::poll(&t.state).await.expect("poll");
    assert_eq!(r.handled, 3);
    assert_eq!(answers(&t).await, 1, "only the real reply is answered");
    assert_eq!(dv.unseen().await, 0, "handled messages are flagged seen");
    let r = cport::channels::imap::poll(&t.state).await.unwrap();
    assert_eq!(r.handled, 0);
}

#[tokio::test]
async fn handled_messages_can_be_moved_to_another_mailbox() {
    let dv = Dovecot::start();
    {
        let mut s = dv.session().await;
        s.create("Processed").await.unwrap();
        s.logout().await.unwrap();
    }
    let (t, token) = state_for(&dv, "Processed").await;
    dv.deliver(&reply(&token, 1, ANN, "", "JOBS")).await;
    cport::channels::imap::poll(&t.state).await.unwrap();
    assert_eq!(dv.count("INBOX").await, 0);
    assert_eq!(dv.count("Processed").await, 1);
    assert_eq!(answers(&t).await, 1);
}

#[tokio::test]
async fn the_poller_survives_the_server_going_away() {
    let dv = Dovecot::start();
    let (t, token) = state_for(&dv, "").await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(cport::channels::imap::run(t.state.services.clone(), rx));
    dv.deliver(&reply(&token, 1, ANN, "", "ITEMS")).await;
    wait_for(|| answers(&t), 1).await;

    // Dovecot restarts (the connection drops); the poller reconnects and goes on.
    dv.run(&["stop"]);
    dv.run(&[]);
    dv.deliver(&reply(&token, 2, ANN, "", "JOBS")).await;
    wait_for(|| answers(&t), 2).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Waits (bounded) until `f` reaches `want`: the poller works on its own schedule.
async fn wait_for<F, Fut>(f: F, want: usize)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        let got = f().await;
        if got >= want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {got} of {want} after 30 s");
    }
}

/// A server that takes the connection and then stays silent, at the greeting or after the
/// sign-in: the poll ends with an error naming the step instead of hanging.
#[tokio::test]
async fn a_silent_server_is_dropped_after_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (greeting, step) in [(None, "waiting for the greeting"), (Some("* OK ready\r\n"), "signing in")] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            if let Some(g) = greeting {
                s.write_all(g.as_bytes()).await.unwrap();
            }
            // Reads what cport says and answers nothing, until cport hangs up.
            let mut buf = [0u8; 1024];
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let t = TestState::new(move |c| {
            imap_on(c, port);
            c.imap.timeout_seconds = 1;
        })
        .await;
        let err = cport::channels::imap::poll(&t.state).await.expect_err("a silent server is an error");
        assert!(matches!(err, cport::channels::imap::ImapError::Timeout(..)), "{err}");
        assert!(err.to_string().contains(step), "{err}");
        // cport hung up: the server's read ends.
        server.await.unwrap();
    }
}

/// A scripted IMAP server on loopback for the exchanges Dovecot cannot be made to have: it
/// greets, then answers each command line with `answer(tag, command, times seen before)`
/// until LOGOUT, at most `lines` lines. Gives the commands it heard, in order.
fn scripted_imap(
    lines: usize,
    capabilities: &'static str,
    answer: impl Fn(&str, &str, usize) -> String + Send + 'static,
) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut reader = BufReader::new(r).lines();
        w.write_all(b"* OK ready\r\n").await.unwrap();
        let mut heard: Vec<String> = Vec::new();
        for _ in 0..lines {
            let Ok(Some(line)) = reader.next_line().await else { break };
            let (tag, command) = line.split_once(' ').unwrap_or(("", line.as_str()));
            let before = heard.iter().filter(|c| *c == command).count();
            let reply = match command {
                "CAPABILITY" => format!("* CAPABILITY {capabilities}\r\n{tag} OK done\r\n"),
                c if c.starts_with("LOGIN") => format!("{tag} OK signed in\r\n"),
                c if c.starts_with("SELECT") => {
                    format!("* 3 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n{tag} OK [READ-WRITE] selected\r\n")
                }
                "LOGOUT" => format!("* BYE bye\r\n{tag} OK done\r\n"),
                c => answer(tag, c, before),
            };
            heard.push(command.to_string());
            // `PAUSE` in an answer: what follows comes 1.5 s later, as over a slow link.
            let mut written = true;
            for (i, part) in reply.split(PAUSE).enumerate() {
                if i > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                }
                written &= w.write_all(part.as_bytes()).await.is_ok();
            }
            if !written || command == "LOGOUT" {
                break;
            }
        }
        heard
    });
    (port, server)
}

/// Marks a pause in a scripted server's answer.
const PAUSE: &str = "\u{1}PAUSE\u{1}";

/// A large message over a slow link is given the time its size takes: not cut off at
/// `imap.timeout_seconds` and fetched again, over and over, in front of the mail behind it.
#[tokio::test]
async fn a_large_message_over_a_slow_link_is_read_in_the_time_its_size_takes() {
    let (port, server) = scripted_imap(20, "IMAP4rev1", |tag, command, _| match command {
        "UID SEARCH UNSEEN" => format!("* SEARCH 1\r\n{tag} OK done\r\n"),
        // 320 KiB: five seconds more than the one the exchange is given.
        "UID FETCH 1 RFC822.SIZE" => format!("* 1 FETCH (UID 1 RFC822.SIZE 327680)\r\n{tag} OK done\r\n"),
        "UID FETCH 1 BODY.PEEK[]" => {
            let whole = fetched(tag, 1);
            let (start, rest) = whole.split_at(whole.len() / 2);
            format!("{start}{PAUSE}{rest}")
        }
        c if c.starts_with("UID STORE 1 ") => format!("* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n{tag} OK done\r\n"),
        _ => format!("{tag} BAD not expected\r\n"),
    });
    let t = scripted_state(port, |c| c.imap.timeout_seconds = 1).await;
    let report = cport::channels::imap::poll(&t.state).await.expect("read, though slowly");
    assert_eq!((report.handled, report.deferred), (1, 0), "{report:?}");
    assert!(cport::store::inbound::seen(&t.state.db, "m1@b.example").await.unwrap());
    server.abort();
}

/// `imap.tls = "tls"` makes a TLS client of its own (rustls is built here with two crypto
/// providers, so it has no default one, and asking it for one panicked at every session):
/// against a server that speaks plain IMAP, the session fails with TLS's words, no panic.
#[tokio::test]
async fn implicit_tls_against_a_plain_server_fails_in_words() {
    let (port, server) = scripted_imap(1, "IMAP4rev1", |tag, _, _| format!("{tag} BAD not expected\r\n"));
    let t = scripted_state(port, |c| c.imap.tls = cport::config::Tls::Tls).await;
    let polled = tokio::spawn(async move { cport::channels::imap::poll(&t.state).await.map(|_| ()) });
    let err = polled.await.expect("no panic").expect_err("a plain server is no TLS server");
    assert!(err.to_string().to_lowercase().contains("tls"), "{err}");
    server.abort();
}

/// A state polling the scripted server on `port` (a short timeout: it answers at once or
/// not at all), then configured by `configure`.
async fn scripted_state(port: u16, configure: impl FnOnce(&mut cport::config::Config)) -> TestState {
    TestState::new(move |c| {
        imap_on(c, port);
        c.imap.timeout_seconds = 5;
        configure(c)
    })
    .await
}

/// The FETCH answer giving message `uid`: a mail from no contact, handled and ignored.
fn fetched(tag: &str, uid: u32) -> String {
    let m = format!(
        "From: a@b.example\r\nTo: someone@tot.example\r\nSubject: hello\r\nMessage-ID: <m{uid}@b.example>\r\n\r\nITEMS\r\n"
    );
    format!("* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n{m})\r\n{tag} OK done\r\n", m.len())
}

/// A server that refuses to give one message (NO) or finds fault with the fetch (BAD) and
/// answers in good order otherwise: those messages stay unseen for a later pass, and the
/// rest are handled in the same pass.
#[tokio::test]
async fn a_message_the_server_refuses_to_give_is_left_and_the_rest_are_handled() {
    let (port, server) = scripted_imap(20, "IMAP4rev1", |tag, command, _| match command {
        "UID SEARCH UNSEEN" => format!("* SEARCH 1 2 3\r\n{tag} OK done\r\n"),
        "UID FETCH 1 BODY.PEEK[]" => format!("{tag} NO [UNAVAILABLE] cannot read it now\r\n"),
        "UID FETCH 3 BODY.PEEK[]" => format!("{tag} BAD not now\r\n"),
        "UID FETCH 2 BODY.PEEK[]" => fetched(tag, 2),
        c if c.starts_with("UID STORE 2 ") => format!("* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n{tag} OK done\r\n"),
        _ => format!("{tag} BAD not expected\r\n"),
    });
    let t = scripted_state(port, |_| {}).await;
    let report = cport::channels::imap::poll(&t.state).await.expect("the pass goes on past the refusals");
    assert_eq!((report.handled, report.deferred), (1, 2), "{report:?}");
    let heard = server.await.unwrap();
    let stored: Vec<_> = heard.iter().filter(|c| c.starts_with("UID STORE")).collect();
    assert_eq!(stored, ["UID STORE 2 +FLAGS (\\Seen)"], "only the message handled is flagged seen: {heard:?}");
    assert_eq!(heard.last().map(String::as_str), Some("LOGOUT"), "{heard:?}");
}

/// A message over `inbound.max_bytes` is refused by the size the server gives, without its
/// body being fetched, and flagged seen; the one beside it is fetched and handled.
#[tokio::test]
async fn a_message_too_large_is_refused_without_being_fetched() {
    // Its header is read once the store is ready: the contact's reply address.
    let header = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let served = header.clone();
    let (port, server) = scripted_imap(20, "IMAP4rev1", move |tag, command, _| match command {
        "UID SEARCH UNSEEN" => format!("* SEARCH 1 2\r\n{tag} OK done\r\n"),
        "UID FETCH 1:2 RFC822.SIZE" => {
            format!("* 1 FETCH (UID 1 RFC822.SIZE 500000)\r\n* 2 FETCH (UID 2 RFC822.SIZE 120)\r\n{tag} OK done\r\n")
        }
        "UID FETCH 1 BODY.PEEK[HEADER]" => {
            let h = served.lock().unwrap().clone();
            format!("* 1 FETCH (UID 1 BODY[HEADER] {{{}}}\r\n{h})\r\n{tag} OK done\r\n", h.len())
        }
        "UID FETCH 2 BODY.PEEK[]" => fetched(tag, 2),
        c if c.starts_with("UID STORE ") => format!("{tag} OK done\r\n"),
        _ => format!("{tag} BAD not expected\r\n"),
    });
    let t = scripted_state(port, |c| {
        c.inbound.max_attachment_bytes = 1_000;
        c.inbound.max_bytes = 100_000;
    })
    .await;
    t.load(world()).await;
    let token = common::digest_to_reply_to(&t.state.db, &t.state.signer, "P-1A", "ann@alpha.example").await;
    let domain = t.state.config.email.reply_domain.clone();
    *header.lock().unwrap() = format!(
        "From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <big-1@alpha.example>\r\nDate: Wed, 02 Dec 2026 09:00:00 +0000\r\n\r\n"
    );
    let report = cport::channels::imap::poll(&t.state).await.expect("poll");
    assert_eq!((report.handled, report.deferred), (2, 0), "{report:?}");
    let heard = server.await.unwrap();
    assert!(!heard.iter().any(|c| c == "UID FETCH 1 BODY.PEEK[]"), "the large one is not fetched: {heard:?}");
    let stored: Vec<_> = heard.iter().filter(|c| c.starts_with("UID STORE")).collect();
    assert_eq!(stored, ["UID STORE 1 +FLAGS (\\Seen)", "UID STORE 2 +FLAGS (\\Seen)"], "{heard:?}");
    // Ann is told her reply was not read, and staff see it among inbound mail.
    let answer = list_messages(&t.state.db, None, 50)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.message.kind.as_str() == "reply")
        .expect("an answer to Ann");
    assert_eq!(answer.message.recipient, "ann@alpha.example");
    assert!(
        answer.message.payload.contains("too large to read")
            && answer.message.payload.contains("nothing in it was done")
    );
    let seen = cport::store::inbound::get_message(&t.state.db, "big-1@alpha.example").await.unwrap().expect("recorded");
    assert!(seen.reason.contains("not read") && seen.reason.contains("500000 bytes"), "{seen:?}");
}

/// A reply too large to read whose sender cannot be proven is not held (there would be
/// nothing for staff to release): it is recorded, unanswered.
#[tokio::test]
async fn a_reply_too_large_to_read_from_an_unproven_sender_is_not_held() {
    let t = TestState::new(|c| c.inbound.trusted_authserv_ids = vec!["mx.tot.example".into()]).await;
    t.load(world()).await;
    let token = common::digest_to_reply_to(&t.state.db, &t.state.signer, "P-1A", "ann@alpha.example").await;
    let domain = t.state.config.email.reply_domain.clone();
    let header = format!(
        "Authentication-Results: mx.tot.example; dmarc=fail (p=reject) header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <big-2@alpha.example>\r\n\r\n"
    );
    let d = cport::channels::inbound::handle_unread(&t.state, header.as_bytes(), 900_000, Utc::now()).await.unwrap();
    assert!(matches!(d, cport::channels::inbound::Disposition::Ignored(_)), "{d:?}");
    let seen = cport::store::inbound::get_message(&t.state.db, "big-2@alpha.example").await.unwrap().unwrap();
    assert!(seen.reason.contains("not read") && seen.reason.contains("could not be proven"), "{seen:?}");
    assert!(list_messages(&t.state.db, None, 50).await.unwrap().iter().all(|m| m.message.kind.as_str() != "reply"));
}

/// A message left for later is tried again after `poll_seconds` even on a server that
/// offers IDLE: waiting in IDLE, the poller would try it only when new mail came.
#[tokio::test]
async fn a_message_left_for_later_is_tried_again_without_waiting_for_new_mail() {
    let (port, server) = scripted_imap(30, "IMAP4rev1 IDLE", |tag, command, before| match (command, before) {
        ("UID SEARCH UNSEEN", _) => format!("* SEARCH 1\r\n{tag} OK done\r\n"),
        ("UID FETCH 1 BODY.PEEK[]", 0) => format!("{tag} NO [UNAVAILABLE] cannot read it now\r\n"),
        ("UID FETCH 1 BODY.PEEK[]", _) => fetched(tag, 1),
        (c, _) if c.starts_with("UID STORE 1 ") => format!("* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n{tag} OK done\r\n"),
        // IDLE is taken and then nothing more happens: no new mail comes.
        ("IDLE", _) => "+ idling\r\n".to_string(),
        _ => format!("{tag} BAD not expected\r\n"),
    });
    let t = TestState::new(move |c| {
        imap_on(c, port);
        c.imap.poll_seconds = 1;
    })
    .await;
    let tried = poll_until_seen(&t, "m1@b.example").await;
    assert!(tried, "the message left for later was not tried again within 15 s");
    server.abort();
}

/// Mail that comes while a pass runs is handled before the poller waits in IDLE: the server
/// told of it beside a command's answer (EXISTS), and IDLE would not tell of it again.
#[tokio::test]
async fn mail_that_comes_during_a_pass_is_not_left_waiting_for_the_next() {
    let (port, server) = scripted_imap(30, "IMAP4rev1 IDLE", |tag, command, before| match (command, before) {
        ("UID SEARCH UNSEEN", 0) => format!("* SEARCH 1\r\n{tag} OK done\r\n"),
        ("UID SEARCH UNSEEN", 1) => format!("* SEARCH 2\r\n{tag} OK done\r\n"),
        ("UID SEARCH UNSEEN", _) => format!("* SEARCH\r\n{tag} OK done\r\n"),
        ("UID FETCH 1 BODY.PEEK[]", _) => fetched(tag, 1),
        ("UID FETCH 2 BODY.PEEK[]", _) => fetched(tag, 2),
        // Message 2 arrives while message 1 is flagged: said unasked, as Dovecot does.
        (c, _) if c.starts_with("UID STORE 1 ") => {
            format!("* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n* 4 EXISTS\r\n{tag} OK done\r\n")
        }
        (c, _) if c.starts_with("UID STORE 2 ") => format!("* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n{tag} OK done\r\n"),
        ("IDLE", _) => "+ idling\r\n".to_string(),
        _ => format!("{tag} BAD not expected\r\n"),
    });
    let t = scripted_state(port, |c| c.imap.poll_seconds = 3600).await;
    let handled = poll_until_seen(&t, "m2@b.example").await;
    assert!(handled, "the mail that came during the pass waited for other mail");
    server.abort();
}

/// Runs the poller until the message `id` is recorded, or 15 s: whether it was, in time.
async fn poll_until_seen(t: &TestState, id: &str) -> bool {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(cport::channels::imap::run(t.state.services.clone(), rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        seen = cport::store::inbound::seen(&t.state.db, id).await.unwrap();
    }
    stop.send(true).unwrap();
    poller.abort();
    let _ = poller.await;
    seen
}

/// A message the server never gives is left to a person after five tries: the poller then
/// waits in IDLE again rather than polling for it every `poll_seconds` for ever.
#[tokio::test]
async fn a_message_the_server_never_gives_does_not_keep_the_poller_from_idle() {
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = heard.clone();
    let (port, server) = scripted_imap(40, "IMAP4rev1 IDLE", move |tag, command, _| {
        seen.lock().unwrap().push(command.to_string());
        match command {
            "UID SEARCH UNSEEN" => format!("* SEARCH 1\r\n{tag} OK done\r\n"),
            "UID FETCH 1 BODY.PEEK[]" => format!("{tag} NO [UNAVAILABLE] cannot read it\r\n"),
            "IDLE" => "+ idling\r\n".to_string(),
            _ => format!("{tag} BAD not expected\r\n"),
        }
    });
    let t = scripted_state(port, |c| c.imap.poll_seconds = 1).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(cport::channels::imap::run(t.state.services.clone(), rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !heard.lock().unwrap().iter().any(|c| c == "IDLE") {
        assert!(std::time::Instant::now() < deadline, "never waited in IDLE: {:?}", heard.lock().unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    poller.abort();
    let _ = poller.await;
    server.abort();
    let heard = heard.lock().unwrap().clone();
    let tries = heard.iter().filter(|c| *c == "UID FETCH 1 BODY.PEEK[]").count();
    assert_eq!(tries, 5, "five tries, then left to a person: {heard:?}");
    assert!(!heard.iter().any(|c| c.starts_with("UID STORE")), "left unread in the mailbox: {heard:?}");
}

/// A message that makes reading it panic (a parser's bug) is refused as unreadable: the pass
/// goes on to the next, the bad one is flagged seen so the mailbox is not stuck behind it,
/// and the poller is not brought down.
#[tokio::test]
async fn a_message_that_makes_reading_it_panic_is_refused_and_the_rest_are_handled() {
    let dv = Dovecot::start();
    let (t, token) = state_for(&dv, "").await;
    for n in 1..=2 {
        dv.deliver(&reply(&token, n, ANN, "", "ITEMS")).await;
    }
    t.state.faults.arm("inbound:parse", 1);
    let r = cport::channels::imap::poll(&t.state).await.expect("the pass goes on past the panic");
    assert_eq!((r.handled, r.deferred), (2, 0), "{r:?}");
    assert_eq!(answers(&t).await, 1, "the second message is answered");
    assert_eq!(dv.unseen().await, 0, "the unreadable one is not fetched again and again");
    // Its sender is told nothing over IMAP: staff see it among inbound mail, with why.
    let ignored =
        cport::store::inbound::list_recent(&t.state.db, Some(cport::model::InboundOutcome::Ignored), 10).await.unwrap();
    assert!(
        ignored.iter().any(|m| m.reason.starts_with("refused unread") && m.reason.contains("could not be read")),
        "{ignored:?}"
    );
}
