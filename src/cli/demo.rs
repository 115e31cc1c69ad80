//! `cport demo`: a store with demo data, its digests written as files, and the server.

use super::*;

pub(crate) fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The first line of the config a demo writes: what marks a folder as a demo's.
const DEMO_MARK: &str = "# Written by `cport demo`.";

/// Refuses a folder holding a cport store or config that no demo wrote (a real one, named
/// by mistake): the demo empties what it finds there.
fn check_demo_folder(dir: &Path) -> anyhow::Result<()> {
    let config = dir.join("cport.toml");
    let written_by_demo = std::fs::read_to_string(&config).is_ok_and(|t| t.starts_with(DEMO_MARK));
    // Everything the demo would delete: a store, a config, pictures, artwork, mail.
    let holds_cport = ["cport.db", "cport.toml", "media", "mail"].iter().any(|f| dir.join(f).exists());
    if holds_cport && !written_by_demo {
        anyhow::bail!(
            "--data-dir: {} holds a cport store, config, media or mail that `cport demo` did not \
             write; the demo would delete it. Name another folder.",
            dir.display()
        );
    }
    Ok(())
}

/// Removes only what an earlier demo wrote, never anything else in the folder.
pub(crate) fn clear_demo_files(dir: &Path) -> std::io::Result<()> {
    for f in ["cport.db", "cport.db-wal", "cport.db-shm", "cport.toml"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    for d in ["media", "mail"] {
        let p = dir.join(d);
        if p.exists() {
            std::fs::remove_dir_all(p)?;
        }
    }
    Ok(())
}

/// Writes a file that holds secrets: readable by its owner only (0600), whatever the umask.
fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An older file keeps its mode through `open`: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

pub(crate) async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    // Defaults and the environment (so CPORT_TELEGRAM_TOKEN, CPORT_DISCORD_* and the like
    // work here too), then what the demo decides itself: all checked before the folder is
    // touched.
    let mut env = Config::environment()?;
    if args.listen.is_some() {
        // The flag rules: CPORT_LISTEN, whatever it holds, is not read.
        env.retain(|(var, _)| var != "CPORT_LISTEN");
    }
    let mut config = Config::load_from(None, &env, Need::StoreOnly)?;
    if let Some(listen) = &args.listen {
        config.listen = listen.clone();
    }
    // The portal's links point at where the demo listens, unless CPORT_PUBLIC_URL says
    // otherwise (a proxy in front of it).
    if config.public_url == Config::default().public_url {
        config.public_url = format!("http://{}", config.listen);
    }
    config.database_url = Secret::new(format!("sqlite://{}", dir.join("cport.db").display()));
    config.data_dir = dir.clone();
    config.api_token = Secret::new(random_secret());
    config.link_secret = Secret::new(random_secret());
    config.email.dir = dir.join("mail");
    config.validate(Need::Secrets)?;
    check_demo_folder(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clear_demo_files(dir).with_context(|| format!("cannot clear the old demo in {}", dir.display()))?;
    let config_file = dir.join("cport.toml");
    write_secret_file(&config_file, format!("{DEMO_MARK}\n{}", config.to_toml()).as_bytes())
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let pictures = crate::demo::write_media(dir)?;

    let db = make_store(&config).await?;
    let now = chrono::Utc::now();
    let doc = crate::demo::document(now);
    let reports = crate::sync::import::apply_document(&db, &doc, false)
        .await
        .map_err(|e| anyhow::anyhow!("demo data did not load: {e}"))?;
    let records: usize = reports.iter().map(|r| r.received).sum();

    let app = App::build_with(config.clone(), db).await?;
    // What is sent is sent after the records it is about were written (a reply to a message
    // older than its contact's record is not taken as that contact's).
    let now = chrono::Utc::now();
    crate::actions::banners::post(&app.state, crate::demo::banner(now), "demo", now).await?;
    run_pass(&app.state, now, None, Trigger::Manual { force: false }).await?;
    let sent = crate::outbox::drain(&app.state).await?;
    crate::demo::dead_letter(&app.state, now).await?;
    let base = &config.public_url;
    let cfg = config_file.display();
    println!();
    println!("cport demo is running at {base}  (Ctrl-C stops it)");
    println!();
    println!("  store      {} ({records} records, {pictures} pictures)", dir.join("cport.db").display());
    println!("  digests    {} emails written to {}", sent.sent, config.mail_dir().display());
    println!("  config     {cfg}");
    println!("  api token  {}", config.api_token.expose());
    println!();
    println!("Try next, in another terminal:");
    println!("  curl {base}/healthz");
    println!("  curl -s {base}/metrics | head");
    // Pictures are private: this address is signed and opens for a day without a session.
    println!(
        "  open '{}'   (a visual awaiting approval; signed, for a day)",
        app.state.picture_url("/media/visuals/V-1001.svg", now + chrono::Duration::days(1))
    );
    // The command as this binary was started: from cargo in a clone, or installed.
    let cport = if std::env::current_exe().is_ok_and(|p| p.components().any(|c| c.as_os_str() == "target")) {
        "cargo run --release --"
    } else {
        "cport"
    };
    println!("  {cport} --config {cfg} digest run --dry-run");
    println!("  {cport} --config {cfg} digest run --dry-run --contact P-101 --json");
    println!("  curl -X PUT {base}/api/v1/visuals -H 'Authorization: Bearer {}' \\", config.api_token.expose());
    println!("       -H 'Content-Type: application/json' --data @examples/visuals.json");
    println!();
    if !config.telegram.token.is_empty() || !config.discord.public_key.is_empty() {
        let code = crate::actions::chat_link::new_link_code(&app.state, "P-101", now).await?;
        println!("Chat: link yourself as P-101 ({}) with the code {code}:", crate::demo::DEMO_CONTACTS[0].who);
        for line in crate::actions::chat_link::how_to_link(&app.state.config, &code) {
            println!("  {line}");
        }
        println!(
            "  then try /items, /track D-2002, /visuals; more codes: {cport} --config {cfg} link-code --contact P-102"
        );
        println!();
    }
    println!("Staff console ({base}/staff): make yourself an account, then open the link it prints:");
    println!("  {cport} --config {cfg} staff add --email you@tot.example");
    println!("  (one dead message, a made-up bounce, waits in its outbox to be queued again)");
    println!();
    println!("Open the portal as a demo contact (each link signs you in):");
    for c in crate::demo::DEMO_CONTACTS {
        println!("  {:<6} {}\n         {}", c.id, c.who, app.state.portal_link(c.id, "/", now));
    }
    println!();
    std::io::stdout().flush()?;
    app.run(crate::app::shutdown_signal()).await?;
    Ok(())
}
