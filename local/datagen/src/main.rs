//! Generates demo transaction data (see the `datagen` library).
//!
//! ```text
//! datagen [--subjects N] [--seed S] --out DIR
//! datagen [--subjects N] [--seed S] --bucket BUCKET --catalog-table TABLE
//! ```
//! The first writes `DIR/datasets/{subject}/part-NNNN.ndjson[.gz]`; the second uploads to the
//! bucket and writes the catalog entries (AWS settings from the environment, including
//! `AWS_ENDPOINT_URL` for the local emulator). Prints one line per subject.

use std::path::PathBuf;

use clap::{ArgGroup, Parser};

/// Generates seeded demo transaction datasets (NDJSON): to a directory, or into a bucket and
/// its catalog.
#[derive(Debug, Parser)]
#[command(name = "datagen")]
#[command(group(ArgGroup::new("target").required(true).args(["out", "bucket"])))]
#[command(
    after_help = "AWS settings (with --bucket) come from the environment, including \
AWS_ENDPOINT_URL for the local emulator (scripts/moto.sh env prints it)."
)]
struct Args {
    /// Number of subjects (shop-0001, ...) to generate
    #[arg(long, value_name = "N", default_value_t = 20)]
    subjects: usize,
    /// Seed: the same seed gives the same bytes
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Write DIR/datasets/{subject}/part-NNNN.ndjson[.gz] (the bucket layout)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Upload to this bucket and write the catalog entries (with --catalog-table)
    #[arg(long, value_name = "BUCKET", requires = "catalog_table")]
    bucket: Option<String>,
    /// The catalog table the uploads are written to (with --bucket)
    #[arg(long, value_name = "TABLE", requires = "bucket")]
    catalog_table: Option<String>,
}

#[tokio::main]
async fn main() {
    // Usage errors print the usage and exit 2; --help prints the help and exits 0.
    let args = Args::parse();
    if let Err(err) = run(args).await {
        eprintln!("datagen: {}", report(&*err));
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Args {
        subjects,
        seed,
        out,
        bucket,
        catalog_table,
    } = args;
    let specs = datagen::plan(subjects, seed);
    if let Some(dir) = out {
        let files = datagen::write_dir(&dir, &specs, seed)?;
        for spec in &specs {
            println!(
                "{}\t{}\t{} rows\t{} files{}",
                spec.subject_id,
                spec.profile,
                spec.rows,
                spec.files,
                if spec.gzip { " (gz)" } else { "" }
            );
        }
        eprintln!("{} files under {}", files.len(), dir.display());
        return Ok(());
    }
    let (Some(bucket), Some(table)) = (bucket, catalog_table) else {
        unreachable!("clap requires --out, or --bucket with --catalog-table");
    };
    let sdk = shared::aws::sdk_config().await;
    let catalog = shared::catalog_store::CatalogStore::new(shared::aws::dynamodb(&sdk), table);
    let seeded = datagen::seed(&shared::aws::s3(&sdk), &catalog, &bucket, &specs, seed).await?;
    for s in &seeded {
        println!(
            "{}\t{}\t{} rows\t{} objects\t{} bytes",
            s.subject_id, s.profile, s.rows, s.objects, s.bytes
        );
    }
    eprintln!(
        "{} subjects seeded into s3://{bucket}/datasets/ and the catalog",
        seeded.len()
    );
    Ok(())
}

/// The error and its sources, `: `-separated.
fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("datagen").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn out_or_bucket_with_table() {
        let a = parse(&["--subjects", "5", "--seed", "9", "--out", "d"]).unwrap();
        assert_eq!((a.subjects, a.seed), (5, 9));
        assert_eq!(a.out, Some(PathBuf::from("d")));
        let b = parse(&["--bucket", "b", "--catalog-table", "t"]).unwrap();
        assert_eq!((b.subjects, b.seed), (20, 1));
        assert_eq!(
            (b.bucket.as_deref(), b.catalog_table.as_deref()),
            (Some("b"), Some("t"))
        );
        for wrong in [
            &[][..],
            &["--bucket", "b"],
            &["--catalog-table", "t"],
            &["--out", "d", "--bucket", "b", "--catalog-table", "t"],
            &["--out", "d", "--subjects", "many"],
            &["--out", "d", "--what"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn help_lists_every_flag() {
        let help = Args::command().render_help().to_string();
        for flag in [
            "--subjects",
            "--seed",
            "--out",
            "--bucket",
            "--catalog-table",
        ] {
            assert!(help.contains(flag), "{flag} missing from\n{help}");
        }
    }
}
