//! `cport import`: a whole document of TOT's records, as the sync API takes them.

use super::*;

pub(crate) async fn import(db: &Db, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let progress = !args.quiet && std::io::stderr().is_terminal();
    match import_file(db, &args.file, progress).await {
        Ok(reports) => {
            let mut total = 0;
            for r in &reports {
                total += r.received;
                println!(
                    "{:<18} {:>8} received {:>8} inserted {:>8} updated {:>8} unchanged",
                    r.entity, r.received, r.inserted, r.updated, r.unchanged
                );
            }
            println!("imported {total} records in {:.1}s", started.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Err(ImportError::Sync(SyncError::Invalid(refused))) => {
            // The first problems, then how many more in all (not how many more were listed).
            let shown = refused.problems.min(200);
            for e in refused.errors.iter().take(shown) {
                super::say_problem(format_args!("{e}"));
            }
            if refused.problems > shown {
                super::say_problem(format_args!("… and {} more", refused.problems - shown));
            }
            super::say_error(format_args!(
                "{} in {}; nothing was written",
                refused.counted(),
                crate::model::path_shown(&args.file)
            ));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
