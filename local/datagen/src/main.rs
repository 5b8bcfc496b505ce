//! Generates demo transaction data (see the `datagen` library).
//!
//! ```text
//! datagen --subjects N [--seed S] --out DIR
//! datagen --subjects N [--seed S] --bucket BUCKET --catalog-table TABLE
//! ```
//! The first writes `DIR/datasets/{subject}/part-NNNN.ndjson[.gz]`; the second uploads to the
//! bucket and writes the catalog entries (AWS settings from the environment, including
//! `AWS_ENDPOINT_URL` for the local emulator). Prints one line per subject.

use std::path::PathBuf;

const USAGE: &str =
    "usage: datagen --subjects N [--seed S] (--out DIR | --bucket BUCKET --catalog-table TABLE)";

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("datagen: {err}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut subjects = 20usize;
    let mut seed = 1u64;
    let mut out: Option<PathBuf> = None;
    let mut bucket: Option<String> = None;
    let mut table: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--subjects" => subjects = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--out" => out = Some(value()?.into()),
            "--bucket" => bucket = Some(value()?),
            "--catalog-table" => table = Some(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let specs = datagen::plan(subjects, seed);
    match (out, bucket, table) {
        (Some(dir), None, None) => {
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
        }
        (None, Some(bucket), Some(table)) => {
            let sdk = shared::aws::sdk_config().await;
            let catalog =
                shared::catalog_store::CatalogStore::new(shared::aws::dynamodb(&sdk), table);
            let seeded =
                datagen::seed(&shared::aws::s3(&sdk), &catalog, &bucket, &specs, seed).await?;
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
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
