//! Email replies: a corpus of real-world-shaped messages under tests/fixtures/email/, each
//! with its expected outcome, through the same `handle` every way in uses.

mod common;

use chrono::Utc;
use common::{TestState, world};
use cport::channels::inbound::{Disposition, InboundError, handle};
use cport::store::outbox::{NewMessage, insert_message, list_messages};
use serde_json::json;

/// Queues a message to `contact` the way a digest or alert would, and returns its reply token.
async fn sent_to(t: &TestState, contact: &str, email: &str, kind: &str, items: &[&str]) -> String {
    let token = t.state.signer.new_reply_token();
    let payload = if kind == "alert" {
        json!({"items": items, "message_id": "<alert-1@reply.tot.example>"})
    } else {
        json!({"to_name": "x", "to": email, "subject": "TOT: 4 things need you", "text": "", "html": "",
               "message_id": "<digest-1@reply.tot.example>", "item_keys": items})
    };
    let mut tx = t.state.db.begin().await.unwrap();
    insert_message(
        &mut tx,
        &NewMessage {
            contact_id: Some(contact.into()),
            channel: cport::model::Outlet::Email,
            kind: cport::model::MessageKind::parse(kind).expect("a message kind"),
            idem_key: format!("test:{token}"),
            reply_token: Some(token.clone()),
            recipient: email.into(),
            subject: "TOT".into(),
            payload: payload.to_string(),
            next_attempt_at: Utc::now() + chrono::Duration::days(1),
        },
        Utc::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    token
}

struct Corpus {
    t: TestState,
    tokens: Vec<(&'static str, String)>,
}

impl Corpus {
    async fn new() -> Corpus {
        let t = TestState::new(|c| c.inbound.trusted_authserv_ids = vec!["mx.tot.example".into()]).await;
        t.load(world()).await;
        let digest =
            sent_to(&t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1", "A2:J-1", "A3:PO-1", "A4:J-1"]).await;
        let tokens = vec![
            ("{{TOKEN_ALERT}}", sent_to(&t, "P-1A", "ann@alpha.example", "alert", &["A1:V-1"]).await),
            // The digest's bounce address, as its envelope sender carried it.
            ("{{BOUNCE_DIGEST}}", t.state.signer.bounce_token(&digest)),
            ("{{TOKEN_DIGEST}}", digest),
            ("{{TOKEN_ART}}", sent_to(&t, "P-1A", "ann@alpha.example", "alert", &["A4:J-1"]).await),
            ("{{TOKEN_BOB}}", sent_to(&t, "P-1B", "bob@alpha.example", "digest", &["A1:V-1", "A2:J-1"]).await),
        ];
        Corpus { t, tokens }
    }

    fn fixture(&self, name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/email/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut raw = std::fs::read(&path).unwrap_or_else(|_| panic!("{path}"));
        for (placeholder, token) in &self.tokens {
            let text = String::from_utf8_lossy(placeholder.as_bytes()).to_string();
            while let Some(pos) = raw.windows(text.len()).position(|w| w == text.as_bytes()) {
                raw.splice(pos..pos + text.len(), token.bytes());
            }
        }
        raw
    }

    async fn handle(&self, name: &str) -> Disposition {
        handle(&self.t.state, &self.fixture(name), Utc::now()).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn visual(&self, id: &str) -> String {
        let (s,): (String,) =
            cport::store::on_db!(&self.t.state.db, p => sqlx::query_as("SELECT status FROM visuals WHERE id = $1")
            .bind(id).fetch_one(p).await)
            .unwrap();
        s
    }

    /// The answers queued so far (newest first): their plain-text bodies.
    async fn answers(&self) -> Vec<cport::channels::email::EmailPayload> {
        list_messages(&self.t.state.db, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.message.kind.as_str() == "reply")
            .map(|m| serde_json::from_str(&m.message.payload).unwrap())
            .collect()
    }
}

fn kind(d: &Disposition) -> &'static str {
    match d {
        Disposition::Processed(_) => "processed",
        Disposition::Bounce(_) => "bounce",
        Disposition::Ignored(_) => "ignored",
        Disposition::Held(_) => "held",
        Disposition::Duplicate(_) => "duplicate",
    }
}

fn reason(d: &Disposition) -> String {
    serde_json::to_value(d).unwrap()["reason"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn the_corpus_has_the_expected_outcomes() {
    let c = Corpus::new().await;
    // (fixture, disposition, words in the reason, answered?)
    let cases: &[(&str, &str, &str, bool)] = &[
        ("apple_mail_base64.eml", "processed", "ITEMS", true),
        ("thunderbird_latin1.eml", "processed", "JOB J-1", true),
        ("html_only.eml", "processed", "JOBS; ART", true),
        ("forwarded.eml", "processed", "no command", true),
        ("auto_reply.eml", "ignored", "Auto-Submitted", false),
        ("vacation_bulk.eml", "ignored", "automatic", false),
        ("spoofed_from.eml", "ignored", "mallory@evil.example is not the contact", false),
        ("own_address_loop.eml", "ignored", "mail loop", false),
        ("dmarc_fail.eml", "held", "dmarc=fail", false),
        ("outlook_cp1252.eml", "processed", "REJECT V-1", true),
        ("gmail_html_reply.eml", "processed", "APPROVE", true),
        ("several_commands.eml", "processed", "NODELIVERY J-1; TRACK: which one? an id is missing", true),
        ("artwork_attachment.eml", "processed", "ARTWORK", true),
        ("dsn_bounce.eml", "bounce", "hard bounce 5.1.1", false),
    ];
    for (name, want, words, answered) in cases {
        let before = c.answers().await.len();
        let d = c.handle(name).await;
        assert_eq!(kind(&d), *want, "{name}: {d:?}");
        assert!(reason(&d).contains(words), "{name}: `{}` should mention `{words}`", reason(&d));
        let after = c.answers().await.len();
        assert_eq!(after > before, *answered, "{name}: answered?");
    }
    // A message seen before is not processed again.
    assert_eq!(kind(&c.handle("gmail_html_reply.eml").await), "duplicate");

    // What the messages did.
    let answers = c.answers().await;
    let text_of = |needle: &str| answers.iter().find(|a| a.text.contains(needle)).map(|a| a.text.clone());
    // Outlook's windows-1252 reply rejected V-1 with the reason intact, before Gmail's APPROVE
    // of the alert could: that one is refused with a clear message.
    let feed = cport::store::changes::list_changes(&c.t.state.db, 0, 100).await.unwrap();
    let rejected = feed.iter().find(|e| e.kind == "visual_rejected").expect("a rejection");
    assert!(rejected.payload.contains("the café logo needs more contrast"), "{}", rejected.payload);
    assert_eq!(c.visual("V-1").await, "rejected");
    assert!(text_of("was rejected; TOT will send a new visual").is_some(), "the late APPROVE is answered with why");
    // Commands below a signature, a quote or a forwarded block were never run.
    assert!(text_of("Job J-1: Tees").is_some());
    let several = text_of("Noted: job J-1 needs no delivery.").expect("NODELIVERY answered");
    assert!(several.contains("TRACK: which one? an id is missing"), "{several}");
    assert!(several.contains("Usage: TRACK <delivery id>"), "{several}");
    assert!(!several.contains("Your account"), "reading stops at the first line that is not a command");
    let forwarded = text_of("No command found").expect("a forward without commands gets help");
    assert!(forwarded.contains("APPROVE <visual id>"), "{forwarded}");
    // The artwork: the PDF kept, the .exe refused, the event in the feed, A4 gone.
    let art = text_of("Artwork for job J-1").expect("artwork answer");
    assert!(art.contains("alpha-logo.pdf") && art.contains("setup.exe: .exe files are not accepted"), "{art}");
    assert!(art.contains("a file without a name: name it with its type"), "a nameless file is answered for: {art}");
    assert!(feed.iter().any(|e| e.kind == "artwork_uploaded" && e.payload.contains("alpha-logo.pdf")));
    let stored = c.t.state.config.data_dir.join("uploads/artwork/J-1");
    let files: Vec<_> = std::fs::read_dir(&stored).unwrap().collect();
    assert_eq!(files.len(), 1);
    // The hard bounce suspended Ann's email, visible to staff.
    let s = cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap();
    assert!(s.email_suspended_at.is_some());
    assert!(s.email_suspended_reason.unwrap().contains("5.1.1"));
    // The held message waits for staff.
    let held = cport::store::inbound::list_held(&c.t.state.db, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].reason.contains("dmarc=fail"));
    // Answers are threaded.
    let first = answers
        .iter()
        .find(|a| a.in_reply_to.as_deref() == Some("<CAGmail001@mail.gmail.com>"))
        .expect("threaded answer");
    assert!(first.subject.starts_with("Re: "));
    assert!(first.references.as_deref().unwrap().contains("<CAGmail001@mail.gmail.com>"));
}

#[tokio::test]
async fn a_reply_approves_a_visual_from_its_alert_and_a_later_reply_lifts_a_suspension() {
    let c = Corpus::new().await;
    assert_eq!(kind(&c.handle("dsn_bounce.eml").await), "bounce");
    assert!(cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap().email_suspended_at.is_some());
    let d = c.handle("gmail_html_reply.eml").await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    assert_eq!(c.visual("V-1").await, "approved", "APPROVE without an id applies to the alert's visual");
    let s = cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap();
    assert!(s.email_suspended_at.is_none(), "a real reply proves the address works");
    let feed = cport::store::changes::list_changes(&c.t.state.db, 0, 10).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert!(feed[0].payload.contains("\"channel\":\"email\""));
}

/// RESET in the reply that lifts a suspension sends its link: the reply proves the address
/// before the commands run (it was once answered "email is suspended" as it lifted it).
#[tokio::test]
async fn reset_in_a_reply_from_a_suspended_address_sends_the_link() {
    let c = Corpus::new().await;
    assert_eq!(kind(&c.handle("dsn_bounce.eml").await), "bounce");
    assert!(cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap().email_suspended_at.is_some());
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "alert", &["A1:V-1"]).await;
    let d = ann_replies(&c, &token, "reset-suspended@alpha.example", "", "RESET").await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("on its way to ann@alpha.example") && !answer.contains("suspended"), "{answer}");
    assert!(cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap().email_suspended_at.is_none());
}

/// A suspension stands against the address that bounced: TOT sending the contact again with
/// the same address (in another case, with another name) keeps it; a new address lifts it
/// and forgets the old one's soft bounces.
#[tokio::test]
async fn a_new_address_from_tot_lifts_a_suspension_the_old_one_earned() {
    let c = Corpus::new().await;
    assert_eq!(kind(&c.handle("dsn_bounce.eml").await), "bounce");
    let suspended = || async {
        cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap().email_suspended_at.is_some()
    };
    assert!(suspended().await);
    let ann = |name: &str, email: &str| json!({"contacts": [{"id": "P-1A", "client_id": "C-1", "name": name, "email": email, "role": "admin"}]});
    c.t.load(ann("Ann A. Admin", "ANN@alpha.example")).await;
    assert!(suspended().await, "the same address, written otherwise");
    c.t.load(ann("Ann A. Admin", "ann.new@alpha.example")).await;
    assert!(!suspended().await, "a new address is tried");
    let s = cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap();
    assert_eq!(s.soft_bounces, 0);
    // A late report about the old address (another copy of the bounce) counts against no one.
    let late = String::from_utf8(c.fixture("dsn_bounce.eml")).unwrap().replace("dsn-0001@", "dsn-0002@");
    let d = handle(&c.t.state, late.as_bytes(), Utc::now()).await.unwrap();
    assert!(format!("{d:?}").contains("no longer has"), "{d:?}");
    assert!(!suspended().await, "the new address is not suspended by the old one's bounce");
}

#[tokio::test]
async fn oversized_and_unreadable_messages_are_refused_unread() {
    let c = Corpus::new().await;
    let big = vec![b'a'; (c.t.state.config.inbound.max_bytes + 1) as usize];
    assert!(matches!(handle(&c.t.state, &big, Utc::now()).await, Err(InboundError::TooLarge { .. })));
    assert!(matches!(handle(&c.t.state, b"\x00\x01 not mail", Utc::now()).await, Err(InboundError::Malformed(_))));
    assert!(c.answers().await.is_empty());
}

#[tokio::test]
async fn an_old_token_still_answers_enquiries_but_not_approvals() {
    let c = Corpus::new().await;
    cport::store::on_db!(&c.t.state.db, p => sqlx::query("UPDATE outbox SET created_at = $1").bind(Utc::now() - chrono::Duration::days(30)).execute(p).await.map(|_| ()))
        .unwrap();
    // The contacts were stored before that message went (as they would have been).
    cport::store::on_db!(&c.t.state.db, p => sqlx::query("UPDATE contacts SET created_at = $1").bind(Utc::now() - chrono::Duration::days(31)).execute(p).await.map(|_| ()))
        .unwrap();
    let d = c.handle("gmail_html_reply.eml").await;
    assert_eq!(kind(&d), "processed");
    assert_eq!(c.visual("V-1").await, "awaiting_approval");
    let answer = c.answers().await.remove(0);
    assert!(answer.text.contains("too old to approve"), "{}", answer.text);
    assert!(answer.text.contains("/l/"), "with a fresh link");
    assert_eq!(kind(&c.handle("apple_mail_base64.eml").await), "processed");
    assert!(c.answers().await[0].text.contains("things need you"));
    // Each decision refused names itself and links to the page where it is made.
    let token = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_DIGEST}}").unwrap().1.clone();
    ann_replies(&c, &token, "old-decisions@alpha.example", "", "NODELIVERY J-1\r\nREJECT V-1 too dark").await;
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("too old to say a job needs no delivery from"), "{answer}");
    assert!(answer.contains("too old to approve or reject from"), "{answer}");
    let subjects: Vec<String> = answer
        .split_whitespace()
        .filter(|w| w.contains("/l/"))
        .map(|l| c.t.state.signer.verify(l.rsplit("/l/").next().unwrap(), Utc::now()).unwrap().subject)
        .collect();
    assert_eq!(subjects, ["/jobs/J-1/delivery", "/visuals/V-1"], "{answer}");
    assert_eq!(c.visual("V-1").await, "awaiting_approval");
    // Artwork is a change too: an old email keeps no file.
    assert_eq!(kind(&c.handle("artwork_attachment.eml").await), "processed");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("too old to send artwork by"), "{answer}");
    assert!(!c.t.state.config.data_dir.join("uploads/artwork/J-1").exists(), "no file kept");
    let feed = cport::store::changes::list_changes(&c.t.state.db, 0, 100).await.unwrap();
    assert!(!feed.iter().any(|e| e.kind == "artwork_uploaded"), "{feed:?}");
}

/// A reply in a Japanese or Chinese charset is read as the client wrote it: a reason in
/// ISO-2022-JP (whose escapes are control characters) is kept as its words.
#[tokio::test]
async fn a_reply_in_a_multibyte_charset_is_read_as_written() {
    let c = Corpus::new().await;
    let digest = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_DIGEST}}").unwrap().1.clone();
    let mail = |id: &str, charset: &str, body: &[u8]| {
        let mut m = format!(
            "From: ann@alpha.example\r\nTo: reply+{digest}@reply.tot.example\r\nSubject: Re: TOT\r\n\
             Message-ID: <{id}@client.example>\r\nContent-Type: text/plain; charset={charset}\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(body);
        m
    };
    // "REJECT V-1 色が違います" as ISO-2022-JP writes it.
    let jis = mail("jp1", "ISO-2022-JP", b"REJECT V-1 \x1b$B?'$,0c$$$^$9\x1b(B\r\n");
    assert_eq!(kind(&handle(&c.t.state, &jis, Utc::now()).await.unwrap()), "processed");
    assert_eq!(c.visual("V-1").await, "rejected");
    let decisions = cport::store::visuals::list_decisions(&c.t.state.db, "V-1").await.unwrap();
    assert_eq!(decisions.last().unwrap().reason.as_deref(), Some("色が違います"));
}

/// `inbound-email --dir` handles a backlog with senders side by side, but one sender's
/// messages in the order given: Ann's REJECT comes first and stands, her later APPROVE of
/// the same visual is refused as already decided. A repeated Message-ID is a duplicate and a
/// file that is not mail is refused; neither stops the rest.
#[tokio::test]
async fn a_backlog_keeps_each_senders_order_and_handles_the_rest_alongside() {
    let c = Corpus::new().await;
    let token = |name: &str| c.tokens.iter().find(|(p, _)| *p == name).unwrap().1.clone();
    let mail = |from: &str, token: &str, id: &str, body: &str| {
        format!(
            "From: {from}\r\nTo: TOT replies <reply+{token}@reply.tot.example>\r\nSubject: Re: TOT\r\n\
             Message-ID: <{id}@client.example>\r\nDate: Wed, 25 Nov 2026 09:00:00 +0000\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let digest = token("{{TOKEN_DIGEST}}");
    let mut files = Vec::new();
    let mut put = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path);
    };
    put("001.eml", mail("ann@alpha.example", &digest, "a1", "REJECT V-1 the logo is too small"));
    for i in 0..20 {
        put(&format!("002-{i:02}.eml"), mail("bob@alpha.example", &token("{{TOKEN_BOB}}"), &format!("b{i}"), "ITEMS"));
    }
    put("003.eml", mail("ann@alpha.example", &digest, "a2", "APPROVE V-1"));
    put("004.eml", mail("ann@alpha.example", &digest, "a1", "REJECT V-1 the logo is too small"));
    put("005.eml", "\u{0}\u{1} not mail at all".to_string());
    let backlog = cport::channels::inbound::handle_backlog(&c.t.state, &files).await.unwrap();
    let counts = backlog.counts;
    assert_eq!(c.visual("V-1").await, "rejected", "Ann's first message decided");
    assert_eq!(counts.get("processed"), Some(&22), "{counts:?}");
    assert_eq!(counts.get("duplicate"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("refused"), Some(&1), "{counts:?}");
    let [(file, why)] = &backlog.refused[..] else { panic!("{:?}", backlog.refused) };
    assert!(file.ends_with("005.eml") && why.contains("not an email message"), "{file:?}: {why}");
    let answers = c.answers().await;
    assert_eq!(answers.len(), 22, "one answer per processed message");
    assert!(
        answers.iter().any(|a| a.text.contains("V-1: visual V-1 was rejected")),
        "the later APPROVE was answered as already decided: {:?}",
        answers.iter().map(|a| a.text.lines().take(4).collect::<Vec<_>>()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_reply_to_the_unsubscribe_mailto_stops_that_kind_of_email_without_an_answer() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let digest = sent_to(&t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1"]).await;
    let alert = sent_to(&t, "P-1B", "bob@alpha.example", "alert", &["A1:V-1"]).await;
    let stop = |from: &str, token: &str, id: &str, subject: &str| {
        format!(
            "From: <{from}>\r\nTo: reply+{token}@reply.tot.example\r\nSubject: {subject}\r\n\
             Message-ID: <{id}@alpha.example>\r\nDate: Wed, 02 Dec 2026 09:00:00 +0000\r\n\r\n"
        )
    };
    let replies = || async {
        list_messages(&t.state.db, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.message.kind.as_str() == "reply")
            .count()
    };
    let before = replies().await;
    let d =
        handle(&t.state, stop("ann@alpha.example", &digest, "u1", "unsubscribe").as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(d, Disposition::Processed("unsubscribed from digest emails".into()));
    let d =
        handle(&t.state, stop("bob@alpha.example", &alert, "u2", "Unsubscribe ").as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(d, Disposition::Processed("unsubscribed from alert emails".into()));
    let ann = cport::store::settings::get_settings(&t.state.db, "P-1A").await.unwrap();
    let bob = cport::store::settings::get_settings(&t.state.db, "P-1B").await.unwrap();
    assert!(!ann.email_digests && ann.email_alerts, "Ann: digests only");
    assert!(bob.email_digests && !bob.email_alerts, "Bob: alerts only");
    assert_eq!(replies().await, before, "no answer to an unsubscribe");
    let feed = cport::store::changes::list_changes(&t.state.db, 0, 100).await.unwrap();
    let stops: Vec<_> = feed.iter().filter(|c| c.kind == "email_unsubscribed").collect();
    assert_eq!(stops.len(), 2);
    assert!(stops[0].payload.contains("\"via\":\"email\""), "{}", stops[0].payload);
    // Someone else's From, or another subject, is no unsubscribe.
    let d = handle(&t.state, stop("eve@elsewhere.example", &digest, "u3", "unsubscribe").as_bytes(), Utc::now())
        .await
        .unwrap();
    assert!(matches!(d, Disposition::Ignored(_)), "{d:?}");
    let d =
        handle(&t.state, stop("ann@alpha.example", &digest, "u4", "Re: TOT: 4 things need you").as_bytes(), Utc::now())
            .await
            .unwrap();
    assert!(matches!(d, Disposition::Processed(ref r) if r.starts_with("no command")), "{d:?}");
}

/// NUL bytes in a reply (its Message-ID, its subject as an encoded word, its body, and so in
/// what is kept of a held message) are no reason to fail: on PostgreSQL, which refuses NUL in
/// text, the message must still get an outcome, or the mail system would retry it for days.
#[tokio::test]
async fn a_reply_holding_nul_bytes_gets_an_outcome_on_both_engines() {
    let c = Corpus::new().await;
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1"]).await;
    let domain = c.t.state.config.email.reply_domain.clone();
    for (n, auth) in [(1, "dmarc=pass"), (2, "dmarc=fail (p=none)")] {
        let mail = format!(
            "Authentication-Results: mx.tot.example; {auth} header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\n\
             Subject: =?utf-8?q?Re=00_digest?=\r\nMessage-ID: <nul-{n}\0@alpha.example>\r\n\r\n\
             APPROVE V-1\0\r\nthanks\0\r\n"
        );
        let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap_or_else(|e| panic!("{auth}: {e}"));
        assert!(["processed", "held", "ignored"].contains(&kind(&d)), "{auth}: {d:?}");
    }
    // A NUL inside an id is not dropped to make another id: `V-<NUL>1` names no visual.
    let mail = format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <nul-3@alpha.example>\r\n\r\nAPPROVE V-\01\r\n"
    );
    assert_eq!(kind(&handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap()), "processed");
    assert_eq!(c.visual("V-1").await, "awaiting_approval", "nothing was approved");
    // A reason with a NUL (read as U+FFFD) or bytes of another charset than the one named is
    // not kept with a mark in place of the words: it is refused, naming the reason.
    for (n, reason) in [(4, &b"too\0dark"[..]), (5, &b"zu dunkel \xe4ndern"[..])] {
        let mut mail = format!(
            "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
             Content-Type: text/plain; charset=utf-8\r\nMessage-ID: <nul-{n}@alpha.example>\r\n\r\nREJECT V-1 "
        )
        .into_bytes();
        mail.extend_from_slice(reason);
        mail.extend_from_slice(b"\r\n");
        assert_eq!(kind(&handle(&c.t.state, &mail, Utc::now()).await.unwrap()), "processed");
        assert_eq!(c.visual("V-1").await, "awaiting_approval", "{n}: nothing was rejected");
        let answer = last_answer(&c).await.text;
        assert!(answer.contains("REJECT: holds U+FFFD where its text could not be read"), "{n}: {answer}");
    }
    // So is a command whose id came damaged: said to be written again, not as an id typed
    // wrong.
    let mut mail = format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Content-Type: text/plain; charset=utf-8\r\nMessage-ID: <nul-6@alpha.example>\r\n\r\nJOB J-1"
    )
    .into_bytes();
    mail.extend_from_slice(b"\xe9\r\n");
    assert_eq!(kind(&handle(&c.t.state, &mail, Utc::now()).await.unwrap()), "processed");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("JOB: holds U+FFFD where its text could not be read"), "{answer}");
}

/// In a reply to an alert about one visual, a reason whose first word looks like an id is
/// read as one; the answer says how to write it for the visual the alert is about.
#[tokio::test]
async fn a_reason_read_as_an_id_is_answered_with_how_to_write_it() {
    let c = Corpus::new().await;
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "alert", &["A1:V-1"]).await;
    ann_replies(&c, &token, "pms@alpha.example", "", "REJECT PMS-286 is too dark").await;
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("visual PMS-286 not found: to reject V-1, write REJECT V-1 <reason>"), "{answer}");
    assert_eq!(c.visual("V-1").await, "awaiting_approval");
}

/// Text the store cannot hold is the message's fault: the MTA is told not to try again (the
/// pipe exits 65, IMAP moves on), while a store that fails is worth another try (75).
#[test]
fn only_a_failing_store_or_cport_itself_asks_for_another_try() {
    use cport::store::StoreError;
    assert!(!InboundError::Store(StoreError::Unstorable).is_temporary());
    assert!(InboundError::Store(StoreError::Conflict("x".into())).is_temporary());
    assert!(InboundError::Internal("template".into()).is_temporary());
    assert!(!InboundError::Malformed("x".into()).is_temporary());
}

/// A reply to `token` from Ann with this Message-ID, extra headers and body.
async fn ann_replies(c: &Corpus, token: &str, message_id: &str, headers: &str, body: &str) -> Disposition {
    ann_replies_to(&c.t.state, token, message_id, headers, body).await
}

/// [`ann_replies`], taken in by `state`.
async fn ann_replies_to(
    state: &cport::services::Services,
    token: &str,
    message_id: &str,
    headers: &str,
    body: &str,
) -> Disposition {
    let domain = &state.config.email.reply_domain;
    let mail = format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <{message_id}>\r\n{headers}\r\n{body}\r\n"
    );
    handle(state, mail.as_bytes(), Utc::now()).await.unwrap_or_else(|e| panic!("{message_id:.40}: {e}"))
}

/// A reply to mail sent before `link_secret` changed is acted on while the old secret is
/// kept as `previous_link_secret`; with the old one dropped, its reply address is no longer
/// cport's and nothing is done.
#[tokio::test]
async fn a_reply_to_mail_sent_before_the_secret_changed_is_acted_on_while_the_old_one_is_kept() {
    let c = Corpus::new().await;
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "alert", &["A1:V-1"]).await;
    let changed = |previous: &str| {
        let mut config = (*c.t.state.config).clone();
        config.previous_link_secret = cport::config::Secret::new(previous.to_string());
        config.link_secret = cport::config::Secret::new("a-new-link-secret-after-a-leak".to_string());
        cport::services::Services::new(config, c.t.state.db.clone())
    };
    let dropped = ann_replies_to(&changed(""), &token, "after-1@alpha.example", "", "APPROVE").await;
    assert_eq!(kind(&dropped), "ignored", "{dropped:?}");
    assert_eq!(c.visual("V-1").await, "awaiting_approval");
    let kept = changed(c.t.state.config.link_secret.expose());
    let d = ann_replies_to(&kept, &token, "after-2@alpha.example", "", "APPROVE").await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    assert_eq!(c.visual("V-1").await, "approved");
}

/// The answer queued last, as it will be sent.
async fn last_answer(c: &Corpus) -> cport::channels::email::EmailPayload {
    let rows = list_messages(&c.t.state.db, None, 200).await.unwrap();
    let row = rows.iter().filter(|m| m.message.kind.as_str() == "reply").max_by_key(|m| m.id).expect("an answer");
    serde_json::from_str(&row.message.payload).unwrap()
}

/// A reply as Thunderbird and Apple Mail write it (`format=flowed`: a long line broken where
/// it ends in a space) is read whole, and a byte-order mark before the first command is no
/// part of it.
#[tokio::test]
async fn flowed_text_is_read_whole_and_a_byte_order_mark_is_not_a_command() {
    let c = Corpus::new().await;
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1"]).await;
    let flowed = "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no\r\n";
    let body = "REJECT V-1 The logo needs to be twice as large and the navy should \r\nmatch Pantone 533 C, please.";
    assert_eq!(kind(&ann_replies(&c, &token, "flowed@alpha.example", flowed, body).await), "processed");
    let reasons = cport::store::visuals::list_decisions(&c.t.state.db, "V-1").await.unwrap();
    let reason = reasons.last().and_then(|d| d.reason.clone()).unwrap_or_default();
    assert_eq!(reason, "The logo needs to be twice as large and the navy should match Pantone 533 C, please.");

    // A command misspelt is named, with the nearest one, and the lines after it still run.
    let plain = "Content-Type: text/plain; charset=utf-8\r\n";
    let before = c.visual("V-2").await;
    let d =
        ann_replies(&c, &token, "typo@alpha.example", plain, "ART\r\nAPROVE V-2\r\nVISUALS\r\n\r\nThanks, Ann").await;
    assert_eq!(kind(&d), "processed");
    let answer = last_answer(&c).await;
    assert!(answer.text.contains("APROVE: is not a command (APPROVE is nearest)"), "{}", answer.text);
    assert!(answer.text.contains("awaiting approval"), "the line after it ran: {}", answer.text);
    assert_eq!(c.visual("V-2").await, before, "nothing was decided");

    assert_eq!(kind(&ann_replies(&c, &token, "bom@alpha.example", plain, "\u{feff}JOBS").await), "processed");
    let answer = last_answer(&c).await;
    assert!(answer.text.contains("open job(s)") && !answer.text.contains("No command"), "{}", answer.text);
}

/// Replies no person would write still get an outcome (never a failure the mail system would
/// retry for days) and a bounded answer: a Message-ID too long for an index, more commands
/// than a reply runs, a search too long for a LIKE pattern, HTML of endless hidden tags,
/// threading headers holding control characters.
#[tokio::test]
async fn odd_replies_get_an_outcome_and_a_bounded_answer() {
    let c = Corpus::new().await;
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1"]).await;

    // A 3,000-character Message-ID: known by its hash, once; not written back into headers.
    let long_id = format!("{}@alpha.example", "x".repeat(3000));
    let d = ann_replies(&c, &token, &long_id, "", "ITEMS").await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await;
    assert!(answer.in_reply_to.is_none(), "{:?}", answer.in_reply_to);
    assert_eq!(kind(&ann_replies(&c, &token, &long_id, "", "ITEMS").await), "duplicate");

    // A From with no address, or naming a second person beside the contact: not acted on,
    // and said so (not mistaken for a mail loop).
    let domain = c.t.state.config.email.reply_domain.clone();
    for (from, says) in [
        ("From: \r\n", "no sender address in From"),
        ("", "no sender address in From"),
        ("From: Ann <ann@alpha.example>, Eve <eve@evil.example>\r\n", "more than one sender in From"),
        // Two From headers: a DMARC check judges the first, a reader may take the last.
        ("From: <eve@evil.example>\r\nFrom: Ann <ann@alpha.example>\r\n", "more than one sender in From"),
    ] {
        let mail = format!(
            "{from}To: reply+{token}@{domain}\r\nSubject: Re: digest\r\nMessage-ID: <from-{}@alpha.example>\r\n\r\nAPPROVE V-1\r\n",
            says.len() + from.len()
        );
        let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
        assert_eq!(kind(&d), "ignored", "{from:?}: {d:?}");
        assert!(reason(&d).contains(says), "{from:?}: {}", reason(&d));
    }
    assert_eq!(c.visual("V-1").await, "awaiting_approval");

    // Threading headers: a folded References and ids holding control characters.
    let refs = "References: <a@alpha.example>\r\n <b\u{1}@alpha.example> <c@alpha.example>\r\n";
    ann_replies(&c, &token, "thread-1@alpha.example", refs, "ITEMS").await;
    let answer = last_answer(&c).await;
    assert_eq!(answer.in_reply_to.as_deref(), Some("<thread-1@alpha.example>"));
    assert_eq!(
        answer.references.as_deref(),
        Some("<a@alpha.example> <c@alpha.example> <thread-1@alpha.example>"),
        "clean ids only, on one line"
    );

    // Fifteen commands, one of them five times: each runs once, ten at most, the rest named.
    let mut body: Vec<String> = (1..=14).map(|i| format!("JOB J-{i}")).collect();
    body.extend(std::iter::repeat_n("RESET".to_string(), 5));
    let before = list_messages(&c.t.state.db, None, 500).await.unwrap().len();
    let d = ann_replies(&c, &token, "many@alpha.example", "", &body.join("\r\n")).await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await;
    assert!(answer.text.contains("only the first 10 commands of a reply are run"), "{}", answer.text);
    assert!(
        answer.text.contains("not run: JOB J-11, JOB J-12, JOB J-13, JOB J-14, RESET (send them again)"),
        "{}",
        answer.text
    );
    let after = list_messages(&c.t.state.db, None, 500).await.unwrap().len();
    assert!(after - before <= 2, "one answer, and at most one reset email: {before} → {after}");

    // Answered in the order written, a line that is no command in its place.
    ann_replies(&c, &token, "order@alpha.example", "", "BALANCE\r\nJOB tomorrow\r\nVISUALS").await;
    let answer = last_answer(&c).await;
    let at = |what: &str| answer.text.find(what).unwrap_or_else(|| panic!("no `{what}`: {}", answer.text));
    let (balance, job, visuals) = (at("No account summary"), at("`tomorrow` is not an id"), at("awaiting approval:"));
    assert!(balance < job && job < visuals, "{}", answer.text);

    // A search of 60,000 characters (SQLite refuses LIKE patterns over 50,000 bytes), and `%`
    // searched as itself.
    let d = ann_replies(&c, &token, "search@alpha.example", "", &format!("STOCK {}", "a".repeat(60_000))).await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    c.t.load(json!({"stock": [{"sku": "SKU-1", "client_id": "C-1", "description": "Tee", "warehouse_balance": 5,
                                "available_to_order": 5}]}))
        .await;
    ann_replies(&c, &token, "tee@alpha.example", "", "STOCK tee").await;
    assert!(last_answer(&c).await.text.contains("SKU-1"), "a search finds the tee");
    ann_replies(&c, &token, "percent@alpha.example", "", "STOCK %").await;
    let answer = last_answer(&c).await;
    assert!(!answer.text.contains("SKU-1"), "`%` is searched as itself: {}", answer.text);

    // HTML only, with 40,000 hidden tags before the command.
    let html = format!("<html>{}<body><div>ITEMS</div></body></html>", "<head></head>".repeat(40_000));
    let headers = "Content-Type: text/html; charset=utf-8\r\n";
    let d = ann_replies(&c, &token, "html@alpha.example", headers, &html).await;
    assert_eq!(kind(&d), "processed", "{d:?}");
    assert!(last_answer(&c).await.text.contains("need you"), "ITEMS was read");

    // A refusal names the command it answers, even when its reason is about a field.
    let ids: Vec<String> = (1..=101).map(|i| format!("V-{i}")).collect();
    ann_replies(&c, &token, "batch@alpha.example", "", &format!("APPROVE {}\r\nJOB J-404", ids.join(" "))).await;
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("APPROVE: visuals: at most 100 visuals at once"), "{answer}");
    assert!(answer.contains("JOB: job J-404 not found"), "{answer}");

    // REJECT of a visual approved since the message was sent withdraws no approval unseen.
    ann_replies(&c, &token, "approve-1@alpha.example", "", "APPROVE V-1").await;
    assert_eq!(c.visual("V-1").await, "approved");
    ann_replies(&c, &token, "reject-1@alpha.example", "", "REJECT V-1 the blue is too dark").await;
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("visual V-1 was approved by Ann Admin at"), "{answer}");
    assert_eq!(c.visual("V-1").await, "approved");
    // The record of a reply says what was not done and why, in the answer's words (the
    // console shows it when staff release a held reply): an approval made already.
    let d = ann_replies(&c, &token, "approve-2@alpha.example", "", "APPROVE V-1").await;
    let why = reason(&d);
    assert!(why.starts_with("APPROVE V-1: Nothing was approved") && why.contains("already approved"), "{why}");

    // RESET in two replies a moment apart: one reset email, and the second answer says so.
    let resets = || async {
        let rows = list_messages(&c.t.state.db, None, 500).await.unwrap();
        rows.iter()
            .filter(|m| m.message.recipient == "ann@alpha.example" && m.message.subject.contains("reset"))
            .count()
    };
    let before = resets().await;
    ann_replies(&c, &token, "reset-1@alpha.example", "", "RESET").await;
    assert!(last_answer(&c).await.text.contains("on its way to ann@alpha.example"));
    ann_replies(&c, &token, "reset-2@alpha.example", "", "RESET").await;
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("went to ann@alpha.example at") && answer.contains("use that one"), "{answer}");
    assert_eq!(resets().await, before + 1);
}

#[tokio::test]
async fn a_report_counts_only_on_the_bounce_address_and_for_the_address_the_message_went_to() {
    let c = Corpus::new().await;
    let real = String::from_utf8(c.fixture("dsn_bounce.eml")).unwrap();
    let suspended = || async {
        cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap().email_suspended_at.is_some()
    };
    // To the reply address (printed in every message, so anyone forwarded one has it): not a bounce.
    let (reply, bounce) = (&c.tokens[2].1, &c.tokens[1].1);
    let to_reply =
        real.replacen(&format!("bounce+{bounce}"), &format!("reply+{reply}"), 1).replace("dsn-0001@", "dsn-0002@");
    assert_eq!(kind(&handle(&c.t.state, to_reply.as_bytes(), Utc::now()).await.unwrap()), "ignored");
    // Nor is the reply token under the bounce prefix: the bounce address cannot be made from
    // the reply address, so whoever has seen a message cannot forge its bounces.
    let forged =
        real.replacen(&format!("bounce+{bounce}"), &format!("bounce+{reply}"), 1).replace("dsn-0001@", "dsn-0008@");
    assert_eq!(kind(&handle(&c.t.state, forged.as_bytes(), Utc::now()).await.unwrap()), "ignored");
    // About another address (a forward's failure): not this contact's bounce.
    let other =
        real.replace("rfc822; ann@alpha.example", "rfc822; ann@elsewhere.example").replace("dsn-0001@", "dsn-0003@");
    assert_eq!(kind(&handle(&c.t.state, other.as_bytes(), Utc::now()).await.unwrap()), "ignored");
    // Naming no address at all: not a bounce either.
    let unnamed: String = real
        .lines()
        .filter(|l| !l.starts_with("Final-Recipient") && !l.starts_with("Original-Recipient"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("dsn-0001@", "dsn-0004@");
    assert_eq!(kind(&handle(&c.t.state, unnamed.as_bytes(), Utc::now()).await.unwrap()), "ignored");
    // A report that the message was delivered, or is still being tried, is no bounce.
    for (n, action, status) in [(5, "delivered", "2.0.0"), (6, "delayed", "4.4.7"), (7, "relayed", "2.0.0")] {
        let report = real
            .replace("Action: failed", &format!("Action: {action}"))
            .replace("Status: 5.1.1", &format!("Status: {status}"))
            .replace("dsn-0001@", &format!("dsn-000{n}@"));
        assert_eq!(kind(&handle(&c.t.state, report.as_bytes(), Utc::now()).await.unwrap()), "ignored", "{action}");
    }
    let s = cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap();
    assert_eq!(s.soft_bounces, 0, "no report of success or delay counted");
    assert!(!suspended().await, "none of these suspended Ann's email");
    // Nor does one about a message sent longer ago than any mail server keeps trying (the
    // bounce address is in every delivered copy's Return-Path): said why, counted nowhere.
    let late = real.replace("dsn-0001@", "dsn-0010@");
    let d = handle(&c.t.state, late.as_bytes(), Utc::now() + chrono::Duration::days(15)).await.unwrap();
    assert!(kind(&d) == "ignored" && reason(&d).contains("more than 14 days before it"), "{d:?}");
    assert!(!suspended().await);
    // The real one, to the bounce address and about Ann's address, does.
    assert_eq!(kind(&c.handle("dsn_bounce.eml").await), "bounce");
    assert!(suspended().await);
    // Another for a message in flight meanwhile is a bounce, but no new suspension: the
    // first one's time and reason stand.
    let settings = || async { cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap() };
    let first = settings().await;
    let d = handle(&c.t.state, real.replace("dsn-0001@", "dsn-0011@").as_bytes(), Utc::now()).await.unwrap();
    assert!(kind(&d) == "bounce" && !reason(&d).contains("email suspended"), "{d:?}");
    let now = settings().await;
    assert_eq!(
        (now.email_suspended_at, now.email_suspended_reason),
        (first.email_suspended_at, first.email_suspended_reason)
    );
}

/// One report taken twice at once (two processes polling one mailbox, or IMAP and the MTA
/// pipe) counts once: the second finds it recorded.
#[tokio::test]
async fn a_report_taken_twice_at_once_counts_once() {
    let c = Corpus::new().await;
    let soft = String::from_utf8(c.fixture("dsn_bounce.eml"))
        .unwrap()
        .replace("Status: 5.1.1", "Status: 4.2.2")
        .replace("550 5.1.1", "452 4.2.2")
        .replace("dsn-0001@", "dsn-0009@");
    let (a, b) =
        tokio::join!(handle(&c.t.state, soft.as_bytes(), Utc::now()), handle(&c.t.state, soft.as_bytes(), Utc::now()));
    let mut kinds = [kind(&a.unwrap()), kind(&b.unwrap())];
    kinds.sort();
    assert_eq!(kinds, ["bounce", "duplicate"]);
    let s = cport::store::settings::get_settings(&c.t.state.db, "P-1A").await.unwrap();
    assert_eq!(s.soft_bounces, 1, "one report, one bounce");
    assert!(s.email_suspended_at.is_none());
}

/// What a stranger puts in a From address, or a contact in a search, is recorded (and shown
/// by `cport inbound list`) on one line and cut short: no escape sequence a terminal would
/// run, however long the address.
#[tokio::test]
async fn a_sender_s_words_are_recorded_on_one_line_and_cut_short() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let odd = format!("x\u{1b}]0;owned\u{7}{}@elsewhere.example", "y".repeat(3000));
    let raw = format!(
        "From: <{odd}>\r\nTo: help@reply.tot.example\r\nMessage-ID: <odd-1@elsewhere.example>\r\nSubject: hi\r\n\r\nITEMS\r\n"
    );
    let d = handle(&t.state, raw.as_bytes(), Utc::now()).await.unwrap();
    let why = reason(&d);
    assert!(why.contains("no valid reply token"), "{why}");
    assert!(!why.chars().any(char::is_control) && why.chars().count() < 400, "{why:?}");
    let token = sent_to(&t, "P-1A", "ann@alpha.example", "digest", &[]).await;
    let search = format!("STOCK cap\u{1b}[2J{}", "z".repeat(3000));
    let raw = format!(
        "From: Ann <ann@alpha.example>\r\nTo: reply+{token}@reply.tot.example\r\nMessage-ID: <odd-2@alpha.example>\r\nSubject: Re\r\n\r\n{search}\r\n"
    );
    let d = handle(&t.state, raw.as_bytes(), Utc::now()).await.unwrap();
    let why = reason(&d);
    assert!(why.contains("STOCK") && !why.chars().any(char::is_control) && why.chars().count() < 400, "{why:?}");
}

/// Mail built to hurt the reader or to pass for someone else: messages nested fifty thousand
/// deep (once a stack overflow that aborted the server), a DMARC pass for the attacker's own
/// domain, and attachments whose base64 does not decode (once kept as artwork, the art marked
/// received).
#[tokio::test]
async fn hostile_mime_is_refused_and_a_pass_for_another_domain_is_held() {
    let c = Corpus::new().await;
    let domain = c.t.state.config.email.reply_domain.clone();
    let art_token = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_ART}}").unwrap().1.clone();

    let nested = format!(
        "From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nMessage-ID: <deep@alpha.example>\r\n\
         Content-Type: message/rfc822\r\n\r\n{}Subject: x\r\n\r\nJOBS\r\n",
        "Content-Type: message/rfc822\r\n\r\n".repeat(50_000)
    );
    // On a thread with a worker's stack, as the server would run it.
    let state = c.t.state.clone();
    let out = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(handle(&state, nested.as_bytes(), Utc::now())).map(|d| format!("{d:?}"))
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    match out {
        Err(InboundError::Malformed(why)) => assert!(why.contains("nests messages more than 16 deep"), "{why}"),
        other => panic!("refused as unreadable, not {other:?}"),
    }

    // DMARC passed, but for evil.example: the sender's own domain was never checked.
    let mail = format!(
        "Authentication-Results: mx.tot.example; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nSubject: Re: art\r\n\
         Message-ID: <aligned@alpha.example>\r\n\r\nJOBS\r\n"
    );
    let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "held", "{d:?}");
    assert!(reason(&d).contains("checked evil.example, not the sender's domain"), "{}", reason(&d));

    // A failure is a failure however RFC 8601 lets the MTA write it: a version after its
    // name, spaces around `=`, a comment holding `;`.
    for (n, auth) in [
        "mx.tot.example 1; dkim=fail header.d=alpha.example; dmarc=fail (p=reject) header.from=alpha.example",
        "mx.tot.example; dkim=pass header.d=alpha.example; dmarc = fail header.from=alpha.example",
        "mx.tot.example (via relay; 2) ; dmarc=pass; dkim / 1 = permerror",
        // A sender's words copied in unescaped, leaving a quote or a comment open: never
        // read on past them (the failure after them would be hidden).
        "mx.tot.example; spf=pass smtp.mailfrom=\"ann@alpha.example; dmarc=fail",
        "mx.tot.example; spf=pass (sender \"x(\"@alpha.example) smtp.mailfrom=alpha.example; dkim=pass",
    ]
    .iter()
    .enumerate()
    {
        let mail = format!(
            "Authentication-Results: {auth}\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nSubject: Re: art\r\n\
             Message-ID: <spelled-{n}@alpha.example>\r\n\r\nNODELIVERY J-1\r\n"
        );
        let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
        assert_eq!(kind(&d), "held", "{auth}: {d:?}");
    }

    // Artwork whose base64 is junk, cut short, or has junk inside: refused by name.
    for (n, body) in ["!!!!####$$$$", "JVBERi0xL", "JVBE!!Ri0xLjQK"].iter().enumerate() {
        let mail = format!(
            "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nSubject: Re: art\r\n\
             Message-ID: <damaged-{n}@alpha.example>\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n\
             --zz\r\nContent-Type: text/plain\r\n\r\nHere it is\r\n\
             --zz\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=logo.pdf\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--zz--\r\n"
        );
        let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
        assert_eq!(kind(&d), "processed", "{body}: {d:?}");
        let answer = last_answer(&c).await.text;
        assert!(answer.contains("logo.pdf: the file arrived damaged"), "{body}: {answer}");
    }
    let (received,): (bool,) = cport::store::on_db!(&c.t.state.db, p =>
        sqlx::query_as("SELECT art_received FROM art_requirements WHERE job_id = 'J-1'").fetch_one(p).await)
    .unwrap();
    assert!(!received, "nothing damaged marks the art received");
    let feed = cport::store::changes::list_changes(&c.t.state.db, 0, 100).await.unwrap();
    assert!(!feed.iter().any(|e| e.kind == "artwork_uploaded"), "{feed:?}");
    assert!(!c.t.state.config.data_dir.join("uploads/artwork/J-1").exists(), "no file kept");

    // An empty plain part beside the HTML one: the HTML is read, numeric references and all.
    // A plain part whose base64 does not decode: the answer says so, not "no command found".
    for (n, parts, says) in [
        (
            1,
            "--zz\r\nContent-Type: text/plain\r\n\r\n\r\n--zz\r\nContent-Type: text/html\r\n\r\n<p>JOB J&#45;1</p>\r\n",
            "Job J-1",
        ),
        (
            2,
            "--zz\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!####$$$$\r\n",
            "arrived damaged",
        ),
        // A bare CR ends a line as a mailer of old wrote it.
        (3, "--zz\r\nContent-Type: text/plain\r\n\r\nTRACK D-404\rJOB J-1\r\n", "Job J-1"),
    ] {
        let mail = format!(
            "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nSubject: Re: art\r\n\
             Message-ID: <body-{n}@alpha.example>\r\nContent-Type: multipart/alternative; boundary=zz\r\n\r\n\
             {parts}--zz--\r\n"
        );
        let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
        assert_eq!(kind(&d), "processed", "{parts}: {d:?}");
        let answer = last_answer(&c).await.text;
        assert!(answer.contains(says), "{parts}: {answer}");
    }
}

/// A reply to a message sent to a contact TOT has since removed, from the address of the new
/// record under the same id, is not taken as that record's: nothing is answered or done.
#[tokio::test]
async fn a_reply_to_a_message_for_a_removed_contact_is_not_the_new_records() {
    let t = TestState::new(|_| {}).await;
    t.load(world()).await;
    let token = sent_to(&t, "P-1B", "bob@alpha.example", "digest", &[]).await;
    // Sent an hour ago; the record it went to is removed, and a new one takes its id now.
    let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
    cport::store::on_db!(&t.state.db, p => sqlx::query("UPDATE outbox SET created_at = $1 WHERE reply_token = $2")
        .bind(an_hour_ago).bind(&token).execute(p).await.map(|r| r.rows_affected()))
    .unwrap();
    cport::sync::delete_batch(&t.state.db, "contacts", vec!["P-1B".into()]).await.unwrap();
    t.load(json!({"contacts": [{"id": "P-1B", "client_id": "C-1", "name": "Bob Newcomer",
        "email": "bob@alpha.example", "role": "admin"}]}))
        .await;
    let raw = format!(
        "From: <bob@alpha.example>\r\nTo: reply+{token}@reply.tot.example\r\nSubject: Re: TOT\r\n\
         Message-ID: <removed-1@alpha.example>\r\n\r\nAPPROVE V-1\r\n"
    );
    let d = handle(&t.state, raw.as_bytes(), Utc::now()).await.unwrap();
    assert!(matches!(&d, Disposition::Ignored(why) if why.contains("since removed")), "{d:?}");
    let visual: (String,) = cport::store::on_db!(&t.state.db, p => sqlx::query_as(
        "SELECT status FROM visuals WHERE id = 'V-1'").fetch_one(p).await)
    .unwrap();
    assert_eq!(visual.0, "awaiting_approval");
}

/// Replies of every shape the corpus has, damaged at random (a seeded, repeatable run): a
/// byte changed, bytes cut out, doubled, inserted, a tail cut off, a piece of another
/// message spliced in. Each gets an outcome or is refused as the message's fault; none makes
/// cport fail (a panic caught, or an error the mail system would retry for days), and a good
/// reply after them is handled as ever.
#[tokio::test]
async fn damaged_replies_are_answered_or_refused_never_fail() {
    use rand::{Rng, SeedableRng};
    let c = Corpus::new().await;
    let names: Vec<String> = std::fs::read_dir(format!("{}/tests/fixtures/email", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let corpus: Vec<Vec<u8>> = names.iter().map(|n| c.fixture(n)).collect();
    // Bytes that mean something to a MIME reader, beside random ones.
    let pieces: [&[u8]; 8] = [
        b"\r\n",
        b"\0",
        b"=?utf-8?B?",
        b"--",
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n",
        b"\xff\xfe",
        b"=\r\n",
    ];
    let seed = 20261204;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for round in 0..400 {
        let which = round % corpus.len();
        // A Message-ID of its own, so each is read rather than passed over as seen before.
        let mut raw = corpus[which].clone();
        let id_at = raw.windows(13).position(|w| w == b"Message-ID: <").expect("every fixture has a Message-ID") + 13;
        raw.splice(id_at..id_at, format!("damaged-{round}.").into_bytes());
        for _ in 0..rng.gen_range(1..=4) {
            let at = rng.gen_range(0..=raw.len());
            match rng.gen_range(0..6) {
                0 if at < raw.len() => raw[at] = rng.r#gen(),
                1 => {
                    let end = (at + rng.gen_range(1..200)).min(raw.len());
                    raw.drain(at..end);
                }
                2 => {
                    let end = (at + rng.gen_range(1..400)).min(raw.len());
                    let copy = raw[at..end].to_vec();
                    raw.splice(at..at, copy);
                }
                3 => {
                    let piece = pieces[rng.gen_range(0..pieces.len())];
                    raw.splice(at..at, piece.iter().copied());
                }
                4 => raw.truncate(at),
                _ => {
                    let other = &corpus[rng.gen_range(0..corpus.len())];
                    let from = rng.gen_range(0..other.len());
                    let to = (from + rng.gen_range(1..600)).min(other.len());
                    raw.splice(at..at, other[from..to].iter().copied());
                }
            }
        }
        let case = format!("round {round} (seed {seed}) from {}", names[which]);
        match handle(&c.t.state, &raw, Utc::now()).await {
            Ok(d) => *outcomes.entry(kind(&d)).or_default() += 1,
            Err(e) => {
                let said = e.to_string();
                assert!(!e.is_temporary() && !said.contains("cport failed"), "{case}: {said}");
                *outcomes.entry("refused").or_default() += 1;
            }
        }
    }
    assert!(outcomes.len() >= 3, "the damage reached more than one outcome: {outcomes:?}");
    // cport goes on: a good reply after all that is read and answered.
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1"]).await;
    let d = ann_replies(&c, &token, "after-the-damage@alpha.example", "", "ITEMS").await;
    assert_eq!(kind(&d), "processed", "{d:?}");
}

/// Mail programs send a file `inline` with its name, or with only a name in its type: either
/// is a file sent, and kept as artwork. A picture the message's own HTML shows (a signature's
/// logo, a picture pasted into the text) is not taken, and the answer names it: a picture
/// meant as artwork is never passed over in silence.
#[tokio::test]
async fn files_sent_inline_are_artwork_and_pictures_in_the_text_are_named() {
    let c = Corpus::new().await;
    let domain = c.t.state.config.email.reply_domain.clone();
    let art_token = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_ART}}").unwrap().1.clone();
    let pdf =
        |body: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("%PDF-1.4\n{body}\n"));
    let png = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR logo");
    let mail = format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nSubject: Re: art\r\n\
         Message-ID: <inline-art@alpha.example>\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n\
         --outer\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n\
         --rel\r\nContent-Type: text/html\r\n\r\n<p>Here you go</p><img src=\"cid:logo1@alpha\">\r\n\
         --rel\r\nContent-Type: image/png; name=\"sig-logo.png\"\r\nContent-Disposition: inline; filename=\"sig-logo.png\"\r\n\
         Content-ID: <logo1@alpha>\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n--rel--\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"front.pdf\"\r\nContent-Disposition: inline; filename=\"front.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{front}\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"back.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{back}\r\n\
         --outer--\r\n",
        front = pdf("front"),
        back = pdf("back"),
    );
    let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("front.pdf (") && answer.contains("back.pdf ("), "both files kept: {answer}");
    assert!(answer.contains("sig-logo.png in the text of your message was not taken as artwork"), "{answer}");
    let stored = c.t.state.config.data_dir.join("uploads/artwork/J-1");
    let mut names: Vec<String> =
        std::fs::read_dir(&stored).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with("back.pdf") || n.ends_with("front.pdf")), "{names:?}");

    // Only a picture in the text, in answer to the artwork reminder: named, nothing kept.
    let mail = format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{art_token}@{domain}\r\nSubject: Re: art\r\n\
         Message-ID: <only-pasted@alpha.example>\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n\
         --rel\r\nContent-Type: text/html\r\n\r\n<p><img src=\"cid:pasted@alpha\"></p>\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <pasted@alpha>\r\nContent-Transfer-Encoding: base64\r\n\r\n{png}\r\n\
         --rel--\r\n"
    );
    let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("a picture in the text of your message was not taken as artwork"), "{answer}");
    assert_eq!(std::fs::read_dir(&stored).unwrap().count(), 2, "nothing more kept");
    // The art received, TOT waits for none from this client: said so, not as a count of 0.
    ann_replies(&c, &art_token, "art-after@alpha.example", "", "ART").await;
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("TOT is not waiting for any artwork from you."), "{answer}");
}

/// A digest asking for one job's artwork among other things takes a file sent in reply as
/// that job's artwork (the digest says so); one asking for two jobs' cannot tell which, and
/// says so, keeping nothing.
#[tokio::test]
async fn a_file_in_reply_to_a_digest_is_the_artwork_of_its_one_art_job() {
    let c = Corpus::new().await;
    let domain = c.t.state.config.email.reply_domain.clone();
    let pdf = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "%PDF-1.4\nlogo\n");
    let with_file = |token: &str, id: &str| {
        format!(
            "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
             Message-ID: <{id}@alpha.example>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n\
             --b\r\nContent-Type: application/pdf; name=\"logo.pdf\"\r\nContent-Disposition: attachment; filename=\"logo.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b--\r\n"
        )
    };
    let two = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1", "A4:J-1", "A4:J-5"]).await;
    let d = handle(&c.t.state, with_file(&two, "two-jobs").as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(
        answer.contains(
            "Attachments were not kept: the message you replied to asks for no artwork, or for more than one job"
        ),
        "{answer}"
    );
    let stored = c.t.state.config.data_dir.join("uploads/artwork/J-1");
    assert!(!stored.exists(), "nothing kept");

    let digest = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_DIGEST}}").unwrap().1.clone();
    let d = handle(&c.t.state, with_file(&digest, "one-job").as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("logo.pdf ("), "kept for J-1: {answer}");
    assert_eq!(std::fs::read_dir(&stored).unwrap().count(), 1);
}

/// A reply with more files than one upload may hold (the portal's limit) keeps none of them
/// and says so, naming the limit: each would be written, recorded and listed.
#[tokio::test]
async fn a_reply_with_too_many_files_keeps_none_and_says_why() {
    let c = Corpus::new().await;
    let domain = c.t.state.config.email.reply_domain.clone();
    let token = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_DIGEST}}").unwrap().1.clone();
    let pdf = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "%PDF-1.4\nlogo\n");
    let files: String = (0..=cport::actions::artwork::MAX_FILES)
        .map(|n| {
            format!(
                "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"logo{n}.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n"
            )
        })
        .collect();
    let mail = format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
         Message-ID: <many-files@alpha.example>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nHere they are.\r\n{files}--b--\r\n"
    );
    let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(answer.contains("11 files were sent; at most 10 go at once"), "{answer}");
    assert!(!c.t.state.config.data_dir.join("uploads/artwork/J-1").exists(), "nothing kept");
}

/// HELP lists what the asker's role may send: finance is not offered JOBS or TRACK, a viewer
/// (who reads everything) is not offered the decisions it would be refused.
#[tokio::test]
async fn help_lists_the_commands_of_the_askers_role() {
    let c = Corpus::new().await;
    let domain = c.t.state.config.email.reply_domain.clone();
    for (id, email, name, has, lacks) in [
        (
            "P-1F",
            "fay@alpha.example",
            "Fay",
            &["INVOICES", "BALANCE", "PO <purchase order id>"][..],
            &["JOBS", "TRACK", "APPROVE"][..],
        ),
        ("P-1V", "vic@alpha.example", "Vic", &["JOBS", "TRACK", "VISUALS"], &["APPROVE", "REJECT", "NODELIVERY"]),
        ("P-1A", "ann@alpha.example", "Ann", &["JOBS", "APPROVE", "NODELIVERY", "INVOICES"], &[]),
    ] {
        let token = sent_to(&c.t, id, email, "digest", &[]).await;
        let mail = format!(
            "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
             From: {name} <{email}>\r\nTo: reply+{token}@{domain}\r\nSubject: Re: digest\r\n\
             Message-ID: <help-{id}@alpha.example>\r\n\r\nHELP\r\n"
        );
        let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
        assert_eq!(kind(&d), "processed", "{id}: {d:?}");
        let answer = last_answer(&c).await.text;
        for word in has {
            assert!(answer.contains(word), "{id} is offered {word}: {answer}");
        }
        for word in lacks {
            assert!(!answer.contains(word), "{id} is not offered {word}: {answer}");
        }
        // A reply with no command is shown an example the role may send.
        let mail = mail.replace("help-", "none-").replace("\r\n\r\nHELP\r\n", "\r\n\r\nThanks, will do.\r\n");
        handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
        let answer = last_answer(&c).await.text;
        assert!(answer.contains("No command found"), "{id}: {answer}");
        for word in lacks {
            assert!(!answer.contains(word), "{id} is not offered {word}: {answer}");
        }
    }
}

/// A reply that decides and then asks is answered as things stand after its decisions: the
/// visual it approved and the job it said needs no delivery are not listed again as waiting
/// (the reads that answer ITEMS and VISUALS do not see the reply's uncommitted writes).
#[tokio::test]
async fn what_a_reply_decided_is_not_listed_again_in_its_answer() {
    let c = Corpus::new().await;
    let token = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1", "A2:J-1"]).await;
    let body = "APPROVE V-1\r\nNODELIVERY J-1\r\nITEMS\r\nVISUALS";
    assert_eq!(kind(&ann_replies(&c, &token, "decide-then-ask@alpha.example", "", body).await), "processed");
    let text = last_answer(&c).await.text;
    assert!(text.contains("V-1: approved") && text.contains("job J-1 needs no delivery"), "{text}");
    let (_, asked) = text.split_once("need you:").unwrap_or_else(|| panic!("the ITEMS answer: {text}"));
    assert!(!asked.contains("APPROVE V-1") && !asked.contains("NODELIVERY J-1"), "{text}");
    assert!(asked.contains("No visual is awaiting approval."), "{text}");
    // Nor in the next reply's, now from the store.
    let again = sent_to(&c.t, "P-1A", "ann@alpha.example", "digest", &["A1:V-1"]).await;
    ann_replies(&c, &again, "ask-again@alpha.example", "", "VISUALS").await;
    assert!(last_answer(&c).await.text.contains("No visual is awaiting approval."));
}

/// Artwork in a reply whose processing fails after the file was written (the store busy, the
/// process stopped: the MTA tries again later) leaves no file of its own behind: the retry,
/// seconds later, writes the same file, and the job's folder holds the one its record names.
#[tokio::test]
async fn artwork_from_a_failed_attempt_is_not_left_beside_the_retrys() {
    let c = Corpus::new().await;
    let mail = art_reply(&c, "art-retry@alpha.example");
    for (point, ago) in [("inbound:after-attachments", 7), ("unit:commit", 3)] {
        c.t.state.faults.arm(point, 1);
        let at = Utc::now() - chrono::Duration::seconds(ago);
        let e = handle(&c.t.state, mail.as_bytes(), at).await.expect_err(point);
        assert!(e.is_temporary(), "{point}: {e}");
    }
    let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let stored = c.t.state.config.data_dir.join("uploads/artwork/J-1");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&stored).unwrap().map(|e| e.unwrap().path()).collect();
    let (path,): (String,) = cport::store::on_db!(&c.t.state.db, p =>
        sqlx::query_as("SELECT path FROM artwork_uploads WHERE job_id = 'J-1'").fetch_one(p).await)
    .unwrap();
    assert_eq!(files, vec![std::path::PathBuf::from(&path)], "one file, the one its record names");
}

/// Artwork cport's disk will not take (full, failing) is no answer of "received": the reply
/// is refused for now (the MTA's exit 75) with nothing recorded, not even its Message-ID, so
/// the retry once there is room keeps the file.
#[tokio::test]
async fn artwork_the_disk_will_not_take_is_tried_again_not_lost() {
    let c = Corpus::new().await;
    let mail = art_reply(&c, "art-full@alpha.example");
    // The artwork folder cannot be made: a file stands where it goes.
    let uploads = c.t.state.config.data_dir.join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("artwork"), b"in the way").unwrap();
    let e = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.expect_err("the disk refused");
    assert!(e.is_temporary(), "{e}");
    assert!(e.to_string().contains("the disk refused a write"), "{e}");
    let seen = cport::store::inbound::get_message(&c.t.state.db, "art-full@alpha.example").await.unwrap();
    assert!(seen.is_none(), "the reply is not recorded: {seen:?}");
    // Room again: the MTA's retry keeps the file.
    std::fs::remove_file(uploads.join("artwork")).unwrap();
    let d = handle(&c.t.state, mail.as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let kept: i64 = cport::store::on_db!(&c.t.state.db, p =>
        sqlx::query_scalar("SELECT COUNT(*) FROM artwork_uploads WHERE job_id = 'J-1'").fetch_one(p).await)
    .unwrap();
    assert_eq!(kept, 1);
}

/// A signed reply (S/MIME, as Outlook sends from many companies) carries its signature as a
/// part: it is no file the sender sent, so it is neither kept nor refused as artwork.
#[tokio::test]
async fn a_signed_replys_signature_is_not_taken_for_artwork() {
    let c = Corpus::new().await;
    let (domain, art, pdf) = art_reply_parts(&c);
    let signed = |id: &str, file: &str| {
        format!(
            "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
             From: Ann <ann@alpha.example>\r\nTo: reply+{art}@{domain}\r\nSubject: Re: art\r\n\
             Message-ID: <{id}@alpha.example>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=SS\r\n\r\n\
             --SS\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nITEMS\r\n{file}--b--\r\n\
             --SS\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\
             Content-Disposition: attachment; filename=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIB\r\n--SS--\r\n"
        )
    };
    let d = handle(&c.t.state, signed("signed-items", "").as_bytes(), Utc::now()).await.unwrap();
    assert_eq!(kind(&d), "processed", "{d:?}");
    let answer = last_answer(&c).await.text;
    assert!(
        answer.contains("need you") && !answer.contains("smime.p7s") && !answer.contains("artwork kept"),
        "{answer}"
    );
    let file = format!(
        "--b\r\nContent-Type: application/pdf; name=\"logo.pdf\"\r\nContent-Disposition: attachment; filename=\"logo.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n"
    );
    handle(&c.t.state, signed("signed-art", &file).as_bytes(), Utc::now()).await.unwrap();
    let answer = last_answer(&c).await.text;
    assert!(
        answer.contains("logo.pdf (") && !answer.contains("smime.p7s"),
        "the PDF kept, the signature not named: {answer}"
    );
}

/// A decision with no id, in reply to a digest (which shows many), is answered with what is
/// missing and its usage line; the answer's HTML does not claim replies go unread (its own
/// reply address is read); a message with headers but neither sender nor Message-ID is
/// recorded as ignored, not refused as unreadable (the MTA would bounce it).
#[tokio::test]
async fn a_decision_without_an_id_gets_its_usage_and_headerless_sender_mail_is_ignored() {
    let c = Corpus::new().await;
    let digest = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_DIGEST}}").unwrap().1.clone();
    ann_replies(&c, &digest, "approve-what@alpha.example", "", "APPROVE\r\nNODELIVERY").await;
    let answer = last_answer(&c).await;
    assert!(
        answer.text.contains("say which one, for example APPROVE V-1001. Usage: APPROVE <visual id>"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("Usage: NODELIVERY <job id>"), "{}", answer.text);
    assert!(!answer.html.contains("replies are not read"), "{}", answer.html);

    let no_sender =
        b"To: reply@reply.tot.example\r\nSubject: hello\r\nDate: Sat, 5 Dec 2026 10:00:00 +0000\r\n\r\nITEMS\r\n";
    let d = handle(&c.t.state, no_sender, Utc::now()).await.expect("taken in, not refused");
    assert_eq!(kind(&d), "ignored", "{d:?}");
    let e = handle(&c.t.state, b"\x00\x01 not mail at all", Utc::now()).await.unwrap_err();
    assert!(e.to_string().contains("not an email message"), "{e}");
}

/// What a reply with artwork is made of: the reply domain, the token of the alert asking for
/// J-1's artwork, and a small PDF in base64.
/// Ann's reply, with Message-ID `message_id`, to the message asking for J-1's artwork,
/// attaching logo.pdf.
fn art_reply(c: &Corpus, message_id: &str) -> String {
    let (domain, art, pdf) = art_reply_parts(c);
    format!(
        "Authentication-Results: mx.tot.example; dmarc=pass header.from=alpha.example\r\n\
         From: Ann <ann@alpha.example>\r\nTo: reply+{art}@{domain}\r\nSubject: Re: art\r\n\
         Message-ID: <{message_id}>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n\
         --b\r\nContent-Type: application/pdf; name=\"logo.pdf\"\r\nContent-Disposition: attachment; filename=\"logo.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b--\r\n"
    )
}

fn art_reply_parts(c: &Corpus) -> (String, String, String) {
    let domain = c.t.state.config.email.reply_domain.clone();
    let art = c.tokens.iter().find(|(p, _)| *p == "{{TOKEN_ART}}").unwrap().1.clone();
    let pdf = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "%PDF-1.4\nlogo\n");
    (domain, art, pdf)
}

/// Pieces that damage a message where they land: control and bidi characters, line ends,
/// encoded-word and MIME openings, commands, headers that matter to the pipeline.
const DAMAGE: &[&str] = &[
    "\u{0}",
    "\r\n",
    "\n",
    "\r",
    "=?utf-8?b?",
    "=?UTF-8?Q?=FF?=",
    "--",
    "Content-Type: multipart/mixed; boundary=",
    "charset=\"unknown-8bit\"",
    "Content-Transfer-Encoding: base64",
    "\u{202e}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "APPROVE V-1",
    "REJECT V-1 ",
    "DELIVERY J-1 ",
    "STOP",
    "=\r\n",
    "> ",
    "<html><body>",
    "&#0;",
    "&#x110000;",
    "\t",
    "From: <>",
    "In-Reply-To: ",
    "Authentication-Results: mx.tot.example; dmarc=pass",
    "日本",
];

/// `raw` damaged a few times over: a byte changed, a piece of [`DAMAGE`] put in, cut short, a
/// run spliced in twice, a run taken out, a long run of one byte, a letter's case changed.
fn damaged(rng: &mut rand::rngs::StdRng, raw: &[u8]) -> Vec<u8> {
    use rand::Rng;
    let mut v = raw.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        if v.is_empty() {
            v.push(b'x');
        }
        let at = rng.gen_range(0..v.len());
        match rng.gen_range(0..7) {
            0 => v[at] = rng.r#gen(),
            1 => {
                let piece = DAMAGE[rng.gen_range(0..DAMAGE.len())];
                v.splice(at..at, piece.bytes());
            }
            2 => v.truncate(at),
            3 => {
                let run = v[at..(at + rng.gen_range(0..200)).min(v.len())].to_vec();
                let to = rng.gen_range(0..v.len());
                v.splice(to..to, run);
            }
            4 => {
                let end = (at + rng.gen_range(0..50)).min(v.len());
                v.drain(at..end);
            }
            5 => {
                let byte = [b'a', b' ', b'\n', b'>', b'=', 0xff][rng.gen_range(0..6)];
                v.splice(at..at, std::iter::repeat_n(byte, rng.gen_range(1..3000)));
            }
            _ => v[at] = v[at].to_ascii_uppercase(),
        }
    }
    v
}

/// The corpus damaged at random (seeded, so a failure is found again), each message with a
/// Message-ID of its own: every one is taken (answered, ignored, held, a bounce) or refused
/// as not an email, never a store or internal failure, and none puts a character text may
/// not hold into the change feed TOT reads.
#[tokio::test]
async fn damaged_messages_are_taken_or_refused_and_never_fail() {
    const SEED: u64 = 7;
    const N: usize = 600;
    use rand::{Rng, SeedableRng};
    let c = Corpus::new().await;
    let mut names: Vec<String> = std::fs::read_dir(format!("{}/tests/fixtures/email", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let corpus: Vec<Vec<u8>> = names.iter().map(|n| c.fixture(n)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut taken = 0;
    for i in 0..N {
        let original = String::from_utf8_lossy(&corpus[rng.gen_range(0..corpus.len())]).into_owned();
        let own_id = original.replacen("Message-ID: <", &format!("Message-ID: <damaged-{i}-"), 1);
        let raw = damaged(&mut rng, own_id.as_bytes());
        match handle(&c.t.state, &raw, Utc::now()).await {
            Ok(_) => taken += 1,
            Err(InboundError::Malformed(_) | InboundError::TooLarge { .. }) => {}
            Err(e) => panic!("damaged message {i} failed: {e}\n{}", String::from_utf8_lossy(&raw)),
        }
    }
    assert!(taken > N * 3 / 4, "most damaged messages are still read: {taken} of {N}");
    let payloads: Vec<(String,)> =
        cport::store::on_db!(&c.t.state.db, p => sqlx::query_as("SELECT payload FROM changes").fetch_all(p).await)
            .unwrap();
    assert!(!payloads.is_empty(), "some damaged messages still acted");
    // The answers repeat what they were sent (commands, ids, the subject) shown, never raw.
    let answers: Vec<cport::channels::email::EmailPayload> = list_messages(&c.t.state.db, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.message.kind.as_str() == "reply")
        .map(|m| serde_json::from_str(&m.message.payload).unwrap())
        .collect();
    assert!(answers.len() > 100, "{} answers", answers.len());
    for a in &answers {
        let bad = cport::model::forbidden_char(&a.text, cport::model::Lines::Many)
            .or(cport::model::forbidden_char(&a.subject, cport::model::Lines::One));
        assert!(bad.is_none(), "{bad:?} in an answer: {}\n{}", a.subject, a.text);
    }
    for (payload,) in &payloads {
        let bad = common::forbidden_in(&serde_json::from_str(payload).unwrap());
        assert!(bad.is_none(), "{bad:?} reached the change feed: {payload}");
    }
}
