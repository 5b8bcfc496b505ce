//! `fetch-objects`: compute's feature source (catalog query, then every object streamed from S3
//! and parsed) over one large subject, with 1, 2, 4 and 8 objects in flight, against the
//! emulator. S3's time to first byte, which the emulator on loopback does not have, is injected
//! as a delay on every GetObject. Prints a Markdown table; run by `make bench` under
//! `scripts/moto.sh run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use datagen::{Profile, SubjectSpec};
use emulator::faults::{Fault, FaultPlan, FaultyHttp, Rule};
use emulator::TestEnv;
use shared::catalog_store::CatalogStore;
use shared::domain::SubjectId;

#[derive(Parser)]
#[command(about = "compute's object downloads at once: wall time per subject against the emulator")]
struct Args {
    /// Objects of the subject.
    #[arg(long, default_value_t = 24)]
    objects: usize,
    /// Transactions per object (about 137 bytes each).
    #[arg(long, default_value_t = 20_000)]
    rows_per_object: usize,
    /// Objects in flight to compare (the first is the baseline).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    in_flight: Vec<usize>,
    /// Injected time to first byte of each GetObject, milliseconds (comma-separated: one table
    /// row per value and setting).
    #[arg(long, value_delimiter = ',', default_value = "0,50")]
    first_byte_ms: Vec<u64>,
    /// Runs per setting; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let subject = SubjectId::parse("bench-large")?;
    let spec = SubjectSpec {
        files: args.objects,
        ..SubjectSpec::new(
            subject.clone(),
            args.objects * args.rows_per_object,
            Profile::Normal,
        )
    };
    let seeded = datagen::seed(
        &env.s3(),
        &env.catalog_store(),
        &env.names.data_bucket,
        &[spec],
        1,
    )
    .await?;
    let bytes = seeded[0].bytes;
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "One subject of {} objects, {} transactions, {mib:.1} MiB; median of {} runs each.\n",
        seeded[0].objects, seeded[0].rows, args.runs
    );
    println!("| time to first byte | objects in flight | wall time | MiB/s | speed-up |");
    println!("|---|---|---|---|---|");
    let function_sdk = env.function_sdk("ComputeFunction");
    for first_byte_ms in &args.first_byte_ms {
        let mut baseline = None;
        for in_flight in &args.in_flight {
            let delay = Fault::Delay(Duration::from_millis(*first_byte_ms));
            let plan = FaultPlan::new(
                vec![Rule::new("s3:GetObject", 0, usize::MAX, delay)],
                0.0,
                0,
            );
            let sdk = FaultyHttp::apply(&function_sdk, Arc::new(plan));
            let source = compute::LakeSource::new(
                CatalogStore::new(shared::aws::dynamodb(&sdk), &env.names.catalog_table),
                shared::aws::s3(&sdk),
            )
            .with_objects_in_flight(*in_flight);
            let mut walls = Vec::with_capacity(args.runs);
            for _ in 0..args.runs {
                let started = Instant::now();
                let summary = compute::FeatureSource::gather(&source, &subject).await?;
                walls.push(started.elapsed());
                if summary.rows != seeded[0].rows as u64 {
                    return Err(format!(
                        "scored {} rows of {} with {in_flight} in flight",
                        summary.rows, seeded[0].rows
                    )
                    .into());
                }
            }
            let wall = deferred_bench::median(&mut walls);
            let baseline = *baseline.get_or_insert(wall);
            println!(
                "| {first_byte_ms} ms | {in_flight} | {} | {:.1} | {:.2}x |",
                deferred_bench::report::ms(wall),
                mib / wall.as_secs_f64(),
                baseline.as_secs_f64() / wall.as_secs_f64()
            );
        }
    }
    Ok(())
}
