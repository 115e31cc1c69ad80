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
    // Everything the demo would delete: a store, a config, pictures, artwork, mail, a reply.
    let holds_cport =
        ["cport.db", "cport.toml", "media", "mail", crate::demo::REPLY_FILE].iter().any(|f| dir.join(f).exists());
    if holds_cport && !written_by_demo {
        anyhow::bail!(
            "--data-dir: {} holds a cport store, config, media or mail that `cport demo` did not \
             write; the demo would delete it. Name another folder.",
            crate::model::path_shown(dir)
        );
    }
    Ok(())
}

/// Removes only what an earlier demo wrote, never anything else in the folder.
pub(crate) fn clear_demo_files(dir: &Path) -> std::io::Result<()> {
    for f in ["cport.db", "cport.db-wal", "cport.db-shm", "cport.toml", crate::demo::REPLY_FILE] {
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

/// The CPORT_… variables the demo sets itself, whatever the environment says: its store,
/// folder and secrets are its own.
const DEMO_OWN: [&str; 5] =
    ["CPORT_DATABASE_URL", "CPORT_DATA_DIR", "CPORT_API_TOKEN", "CPORT_LINK_SECRET", "CPORT_EMAIL__DIR"];

pub(crate) async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    // Absolute, so the config file it writes works from any folder (`--config` given from
    // elsewhere would otherwise read its relative store path against the wrong place).
    let dir = &std::path::absolute(&args.data_dir)
        .with_context(|| format!("--data-dir: {} cannot be made absolute", crate::model::path_shown(&args.data_dir)))?;
    // Defaults and the environment (so CPORT_TELEGRAM_TOKEN, CPORT_DISCORD_* and the like
    // work here too; what was taken is printed), then what the demo decides itself: all
    // checked before the folder is touched.
    let mut env = Config::environment()?;
    if args.listen.is_some() {
        // The flag rules: CPORT_LISTEN, whatever it holds, is not read.
        env.retain(|(var, _)| var != "CPORT_LISTEN");
    }
    let (ignored, taken): (Vec<_>, Vec<_>) = env
        .iter()
        .map(|(var, _)| var.clone())
        .partition(|v| DEMO_OWN.contains(&v.as_str()) || DEMO_OWN.iter().any(|own| own.replace("__", "_") == *v));
    // Not taken is not read: a value of them the demo would refuse stops nothing.
    env.retain(|(var, _)| !ignored.contains(var));
    let mut config = Config::load_from(None, &env, Need::StoreOnly)?;
    if let Some(listen) = &args.listen {
        config.listen = listen.clone();
    }
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("--data-dir: {} is not a folder", crate::model::path_shown(dir));
    }
    let Some(store_url) = crate::store::sqlite_url(&dir.join("cport.db")) else {
        anyhow::bail!("--data-dir: {} is not UTF-8 text; name a folder whose path is", crate::model::path_shown(dir));
    };
    check_demo_folder(dir)?;
    // The port first: one in use is said before an earlier demo's files are cleared, and
    // port 0 becomes the port the system gave.
    let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| {
        let flag = if args.listen.is_some() { "--listen" } else { "listen" };
        anyhow::anyhow!("{flag} {}: cannot listen there: {e}{}", config.listen, crate::state::in_use_hint(&e))
    })?;
    config.listen = listener.local_addr()?.to_string();
    // The portal's links point at where the demo listens, unless CPORT_PUBLIC_URL says
    // otherwise (a proxy in front of it).
    if config.public_url == Config::default().public_url {
        config.public_url = format!("http://{}", config.listen);
    }
    config.database_url = Secret::new(store_url);
    config.data_dir = dir.clone();
    config.api_token = Secret::new(random_secret());
    config.link_secret = Secret::new(random_secret());
    config.email.dir = dir.join("mail");
    config.validate(Need::Secrets)?;
    // Its owner's alone: it holds the store, the config's secrets and mail with sign-in links.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .with_context(|| format!("--data-dir: cannot create {}", crate::model::path_shown(dir)))?;
    // One demo a folder: a second would delete the store the first is serving from.
    let lock = demo_lock(dir)?;
    clear_demo_files(dir).with_context(|| format!("cannot clear the old demo in {}", crate::model::path_shown(dir)))?;
    let config_file = dir.join("cport.toml");
    write_secret_file(&config_file, format!("{DEMO_MARK}\n{}", config.to_toml()).as_bytes())
        .with_context(|| format!("cannot write {}", crate::model::path_shown(&config_file)))?;
    let pictures = crate::demo::write_media(dir)?;

    let db = make_store(&config).await?;
    let now = chrono::Utc::now();
    let doc = crate::demo::document(now);
    let reports = crate::sync::import::apply_document(&db, &doc, false)
        .await
        .map_err(|e| anyhow::anyhow!("demo data did not load: {e}"))?;
    let records: usize = reports.iter().map(|r| r.received).sum();

    start_warnings(&config);
    let app = App::build_on(config.clone(), db, listener).await?;
    // What is sent is sent after the records it is about were written (a reply to a message
    // older than its contact's record is not taken as that contact's).
    let now = chrono::Utc::now();
    crate::actions::banners::post(&app.state, crate::demo::banner(now), "demo", now).await?;
    run_pass(&app.state, now, None, Trigger::Manual { force: false }).await?;
    let sent = crate::outbox::drain(&app.state).await?;
    crate::demo::dead_letter(&app.state, now).await?;
    let base = &config.public_url;
    let cfg = shell_word(&config_file);
    println!();
    println!("cport demo is running at {base}  (Ctrl-C stops it)");
    println!();
    println!("  store      {} ({records} records, {pictures} pictures)", dir.join("cport.db").display());
    match config.email.transport {
        crate::config::Transport::File => {
            println!("  digests    {} emails written to {}", sent.sent, config.mail_dir().display())
        }
        crate::config::Transport::Smtp => println!(
            "  digests    {} emails handed to {}:{} (email.transport is smtp)",
            sent.sent, config.smtp.host, config.smtp.port
        ),
    }
    println!("  config     {}", config_file.display());
    if !taken.is_empty() {
        println!("  taken from the environment: {}", taken.join(", "));
    }
    if !ignored.is_empty() {
        println!("  not taken (the demo sets its own): {}", ignored.join(", "));
    }
    println!("  api token  {}", config.api_token.expose());
    println!();
    println!("Try next, in another terminal:");
    println!("  curl {base}/healthz");
    println!("  curl -s {base}/metrics | head");
    // Pictures are private: this address is signed and opens for a day without a session.
    println!(
        "  {}\n      (a visual awaiting approval, for a browser; signed, it opens for a day without signing in)",
        app.state.picture_url("/media/visuals/V-1001.svg", now + chrono::Duration::days(1))
    );
    let cport = own_command();
    println!("  {cport} --config {cfg} digest run --dry-run");
    println!("  {cport} --config {cfg} digest run --dry-run --contact P-101 --json");
    // The example records are in a clone of the repository, where this is run from.
    if Path::new("examples/visuals.json").is_file() {
        println!("  curl -X PUT {base}/api/v1/visuals -H 'Authorization: Bearer {}' \\", config.api_token.expose());
        println!("       -H 'Content-Type: application/json' --data @examples/visuals.json");
    }
    println!();
    if crate::actions::chat_link::chat_on(&config) {
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
    println!("  (one dead message, a made-up bounce, waits in its outbox to be queued again or set aside)");
    println!();
    if let Some(reply) = crate::demo::reply_file(&app.state, dir, now).await? {
        let reply = shell_word(&reply);
        println!("Reply to Maya's digest by email ({}), handed over as a mail server would:", crate::demo::REPLY_SAYS);
        println!("  {cport} --config {cfg} inbound-email < {reply}");
        println!();
    }
    println!("Open the portal as a demo contact (each link signs you in):");
    for c in crate::demo::DEMO_CONTACTS {
        println!("  {:<6} {}\n         {}", c.id, c.who, app.state.portal_link(c.id, "/", now));
    }
    println!();
    std::io::stdout().flush()?;
    app.run(crate::app::shutdown_signal()).await?;
    drop(lock);
    Ok(())
}

/// Holds the folder's lock file for as long as the demo runs (the system lets go of it when
/// the process ends, however it ends); refuses when another demo holds it.
fn demo_lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("demo.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("--data-dir: cannot write {}", crate::model::path_shown(&path)))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "--data-dir: another `cport demo` is running in {}; stop it (Ctrl-C) or name another folder",
            crate::model::path_shown(dir)
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("--data-dir: cannot lock {}", crate::model::path_shown(&path)))
        }
    }
}

/// `path` written as the shell reads it, for the commands the demo suggests: a folder named
/// `my demo` stays one argument (the demo's folder is UTF-8 text, checked before).
fn shell_word(path: &Path) -> String {
    path.to_str().and_then(|p| shlex::try_quote(p).ok()).map_or_else(|| path.display().to_string(), |q| q.into_owned())
}

/// The command that runs this binary, for the commands the demo suggests: `cargo run
/// --release --` (or `cargo run --` for a debug build) when it was built in the clone the
/// demo runs in (the README's way), `cport` when that name on the PATH is this binary, else
/// the binary's own path (a clone's binary run from elsewhere: `cargo run` would not work
/// there).
fn own_command() -> String {
    let Ok(exe) = std::env::current_exe() else { return "cport".into() };
    let clone = exe.ancestors().find(|a| a.file_name() == Some("target".as_ref())).and_then(Path::parent);
    if let Some(clone) = clone {
        let here = std::env::current_dir().is_ok_and(|d| d.starts_with(clone));
        if here && clone.join("Cargo.toml").is_file() {
            let release = exe.parent().and_then(Path::file_name) == Some("release".as_ref());
            return if release { "cargo run --release --" } else { "cargo run --" }.into();
        }
    }
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(&exe).ok();
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("cport").is_file() && same(&d.join("cport"))));
    match (on_path, exe.to_str()) {
        (true, _) => "cport".into(),
        (false, Some(p)) => shlex::try_quote(p).map_or_else(|_| p.to_string(), |q| q.into_owned()),
        (false, None) => "cport".into(),
    }
}
