//! The EMF metrics request-api writes, as CloudWatch reads them. The only test of this binary
//! that flushes metrics (the recorder is per process; other tests only add to it, so every
//! assertion here is a lower bound or a presence).

use emulator::emf::Emf;

use crate::common::Harness;

const NAMESPACE: &str = "Deferred";
const GET: &str = "GET /v1/scores/{subject_id}";

#[tokio::test]
async fn requests_latency_and_job_starts_are_metrics_by_route_status_and_reason() {
    shared::telemetry::init_metrics(NAMESPACE, "deferred-request-api").unwrap();
    let harness = Harness::new().await;
    assert_eq!(harness.get("shop-metrics-1").await.status, 202);
    assert_eq!(harness.get("shop-metrics-1").await.status, 202);
    assert_eq!(harness.get("bad%20id").await.status, 400);

    let mut output = Vec::new();
    shared::telemetry::flush_metrics("req-metrics", &mut output);
    let emf = Emf::parse(&output).unwrap();
    let accepted = [("route", GET), ("status", "202")];
    assert!(
        emf.total(NAMESPACE, "Requests", &accepted) >= Some(2.0),
        "{emf:#?}"
    );
    assert!(emf.samples(NAMESPACE, "RequestLatency", &accepted) >= 2);
    let refused = [("route", GET), ("status", "400")];
    assert!(emf.total(NAMESPACE, "Requests", &refused) >= Some(1.0));
    // The first GET started a job; the second found it pending.
    assert!(emf.total(NAMESPACE, "JobsStarted", &[("reason", "miss")]) >= Some(1.0));
    // Never a subject id as a dimension.
    let text = String::from_utf8(output).unwrap();
    assert!(!text.contains("shop-metrics-1"), "{text}");
}
