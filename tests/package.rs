//! The Debian package, as an operator installs it: `cargo deb` packs the binary, the systemd
//! unit, the service user and an example configuration; the package installs into a throwaway
//! root with `dpkg --root` (no container: the maintainer scripts run with `DPKG_ROOT` set); the
//! unit as installed passes `systemd-analyze verify`; and the installed binary prints its
//! version and migrates a store. `scripts/test` installs cargo-deb when it is missing.
//!
//! The package holds the binary this test suite was built with (`--profile dev`), so the suite
//! needs no release build; `scripts/package` packs the release build the same way.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dpkg(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", root.display()));
    c
}

#[test]
fn the_debian_package_installs_into_a_root_verifies_and_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("cport.deb");
    run(
        "cargo deb",
        Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            // Stripped as for release, compressed by the system's gzip: seconds, not minutes.
            .args([
                "deb",
                "--no-build",
                "--profile",
                "dev",
                "--fast",
                "-Z",
                "gz",
                "--compress-system",
                "--quiet",
                "--output",
            ])
            .arg(&deb),
    );
    let info =
        String::from_utf8(run("dpkg-deb --info", Command::new("dpkg-deb").arg("--info").arg(&deb)).stdout).unwrap();
    assert!(info.contains("Package: cport") && info.contains("Depends:"), "{info}");
    let contents =
        String::from_utf8(run("dpkg-deb --contents", Command::new("dpkg-deb").arg("--contents").arg(&deb)).stdout)
            .unwrap();
    for path in [
        "./usr/bin/cport",
        "./lib/systemd/system/cport.service",
        "./usr/lib/sysusers.d/cport.conf",
        "./etc/cport/cport.toml",
        "./usr/share/doc/cport/configuration.md",
        "./usr/share/man/man1/cport.1",
    ] {
        assert!(contents.contains(path), "{path} is not in the package:\n{contents}");
    }

    // A root with an empty dpkg database; the base system it depends on is the host's.
    let root = dir.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    run(
        "dpkg --install",
        dpkg(&root).args(["--force-depends", "--force-script-chrootless", "--force-not-root", "--install"]).arg(&deb),
    );
    let status = String::from_utf8(run("dpkg --status", dpkg(&root).args(["--status", "cport"])).stdout).unwrap();
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(status.contains("/etc/cport/cport.toml"), "the config is a conffile:\n{status}");
    // A removal stops and disables the service before its binary goes.
    let prerm = std::fs::read_to_string(root.join("var/lib/dpkg/info/cport.prerm")).expect("the package has a prerm");
    assert!(prerm.contains("systemctl stop cport.service"), "{prerm}");

    // The maintainer script made the service user, and the configuration (secrets) is
    // readable by its group only.
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    let gid: u32 = group
        .lines()
        .find_map(|l| l.strip_prefix("cport:x:"))
        .and_then(|rest| rest.split(':').next())
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no group cport in the root:\n{group}"));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("cport:")), "no user cport:\n{passwd}");
    let meta = std::fs::metadata(root.join("etc/cport/cport.toml")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (0, gid), "root:cport");

    // The unit as installed, with its binary in place, beside the host's own units (the
    // targets every service depends on). A misspelt key is only a warning to systemd: the
    // verifier must print nothing at all.
    let units = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    run("copy the host's units", Command::new("cp").arg("-r").arg("/usr/lib/systemd/system").arg(&units));
    let verified = run(
        "systemd-analyze verify",
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(format!("--root={}", root.display()))
            .arg("cport.service"),
    );
    assert_eq!(String::from_utf8_lossy(&verified.stderr).trim(), "", "systemd-analyze verify warned about the unit");

    let cport = root.join("usr/bin/cport");
    let version = String::from_utf8(run("cport --version", Command::new(&cport).arg("--version")).stdout).unwrap();
    assert_eq!(version.trim(), format!("cport {}", env!("CARGO_PKG_VERSION")));
    let store = dir.path().join("cport.db");
    let migrated = run(
        "cport migrate",
        Command::new(&cport)
            .arg("--config")
            .arg(root.join("etc/cport/cport.toml"))
            .arg("migrate")
            .env_clear()
            .env("CPORT_DATABASE_URL", format!("sqlite://{}", store.display()))
            .env("CPORT_DATA_DIR", dir.path()),
    );
    assert!(store.exists(), "{}", String::from_utf8_lossy(&migrated.stderr));

    // Removing the package keeps the store and the user.
    run("dpkg --remove", dpkg(&root).args(["--force-script-chrootless", "--force-not-root", "--remove", "cport"]));
    assert!(!cport.exists());
    assert!(store.exists());
}
