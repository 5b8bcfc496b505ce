//! The benchmark harness itself, run briefly on the debug binaries (`make test` builds them), so
//! `make bench` cannot rot between runs: every binary starts, answers its first and warm calls
//! as expected (the harness checks each answer), and its figures are real measurements. Speed is
//! not asserted here.

use std::path::PathBuf;

use deferred_bench::report::{self, ColdStarts};
use deferred_bench::tls::TlsProxy;
use deferred_bench::{Bench, InitTrace, FLOOR, FUNCTIONS};

fn debug_bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir")
        .to_path_buf()
}

#[tokio::test]
async fn every_binary_cold_starts_and_stays_warm_under_the_harness() {
    let mut bench = Bench::new(&debug_bin_dir()).await.expect("bench arranges");
    let binaries: Vec<&str> = std::iter::once(FLOOR)
        .chain(FUNCTIONS.iter().map(|(name, _)| *name))
        .collect();
    let mut rows = Vec::new();
    for binary in &binaries {
        let start = bench
            .cold_start(binary)
            .await
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        assert!(start.init > std::time::Duration::ZERO, "{binary}");
        assert!(start.rss_kib > 0, "{binary}: no RSS read");
        rows.push(ColdStarts {
            binary: (*binary).to_owned(),
            starts: vec![start],
        });
    }
    // compute's cold start left the data subject done: request-api's done path answers 200.
    let mut warm = Vec::new();
    for binary in &binaries {
        for path in Bench::warm_paths(binary) {
            let run = bench
                .warm(binary, path, 3)
                .await
                .unwrap_or_else(|e| panic!("{binary} {path}: {e}"));
            assert_eq!(run.invocations, 3);
            assert!(
                run.cpu_per_invocation > std::time::Duration::ZERO,
                "{binary} {path}"
            );
            assert!(run.rss_after_kib > 0, "{binary} {path}");
            warm.push(run);
        }
    }
    let targets = report::targets(&rows, &rows[0], &warm);
    // Per function: init and RSS after the first call; per warm path: RSS; request-api's done
    // path: CPU.
    assert_eq!(targets.len(), 4 * 2 + 6 + 1);
    let table = report::cold_start_table(&rows, &rows[0]);
    assert_eq!(table.lines().count(), 2 + binaries.len(), "{table}");
}

#[tokio::test]
async fn a_warm_function_reuses_its_connection_to_the_emulator_as_it_would_in_aws() {
    // The emulator closes every connection after one answer; the bench's endpoint must not,
    // or every warm figure would include a TCP connection per AWS call.
    let mut bench = Bench::new(&debug_bin_dir()).await.expect("bench arranges");
    let before = bench.endpoint_connections();
    // Each new-subject request reads, writes and publishes: at least three AWS calls.
    let run = bench
        .warm("request-api", "new subject", 4)
        .await
        .expect("request-api stays warm");
    assert_eq!(run.invocations, 4);
    let opened = bench.endpoint_connections() - before;
    assert!(
        (1..=2).contains(&opened),
        "{opened} connections for at least 15 AWS calls"
    );
}

#[tokio::test]
async fn a_function_trusts_the_https_endpoint_it_is_given_in_aws_ca_bundle() {
    let mut bench = Bench::new(&debug_bin_dir()).await.expect("bench arranges");
    let dir = std::env::temp_dir().join(format!("bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proxy = TlsProxy::start(deferred_bench::emulator_address().unwrap(), &dir)
        .await
        .expect("proxy starts");
    bench.set_extra_env(
        [
            ("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint.clone()),
            (
                "AWS_CA_BUNDLE".to_owned(),
                proxy.ca_file.to_string_lossy().into_owned(),
            ),
        ]
        .into(),
    );
    // request-api's first call reads and writes the table and publishes: all over HTTPS.
    bench
        .cold_start("request-api")
        .await
        .expect("request-api answers through the HTTPS endpoint");

    // Without the CA the same endpoint is refused: the trust is real, not switched off.
    bench.set_extra_env([("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint.clone())].into());
    let refused = bench.cold_start("request-api").await;
    assert!(refused.is_err(), "an unknown CA was trusted");
}

#[test]
fn an_init_trace_counts_files_and_connections_but_not_the_loader_or_the_runtime_api() {
    let log = r#"100 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
100 openat(AT_FDCWD, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY|O_CLOEXEC) = 3
100 openat(AT_FDCWD, "/proc/self/maps", O_RDONLY|O_CLOEXEC) = 3
101 openat(AT_FDCWD, "/sys/fs/cgroup/cpu.max", O_RDONLY|O_CLOEXEC) = 3
101 openat(AT_FDCWD, "/etc/ssl/certs/ca-certificates.crt", O_RDONLY|O_CLOEXEC) = 4
102 connect(5, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("169.254.169.254")}, 16) = -1
102 connect(6, {sa_family=AF_INET, sin_port=htons(41000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
"#;
    let trace = InitTrace::parse(log);
    assert_eq!(trace.files, ["/etc/ssl/certs/ca-certificates.crt"]);
    assert_eq!(trace.other_connects, 1);
}
