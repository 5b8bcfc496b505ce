//! The EMF metrics request-api writes, as CloudWatch reads them. The only test of this binary
//! that flushes metrics (the recorder is per process; other tests only add to it, so every
//! assertion here is a lower bound or a presence).

use crate::common::Harness;

const GET: &str = "GET /v1/scores/{subject_id}";

#[tokio::test]
async fn requests_latency_and_job_starts_are_metrics_by_route_status_and_reason() {
    emulator::emf::record("deferred-request-api");
    let harness = Harness::new().await;
    assert_eq!(harness.get("shop-metrics-1").await.status, 202);
    assert_eq!(harness.get("shop-metrics-1").await.status, 202);
    assert_eq!(harness.get("bad%20id").await.status, 400);

    let emf = emulator::emf::flush();
    let accepted = [("route", GET), ("status", "202")];
    assert!(emf.total("Requests", &accepted) >= Some(2.0), "{emf:#?}");
    assert!(emf.samples("RequestLatency", &accepted) >= 2);
    let refused = [("route", GET), ("status", "400")];
    assert!(emf.total("Requests", &refused) >= Some(1.0));
    // The first GET started a job; the second found it pending.
    assert!(emf.total("JobsStarted", &[("reason", "miss")]) >= Some(1.0));
    // Never a subject id as a dimension.
    let text = serde_json::to_string(&emf.documents).unwrap();
    assert!(!text.contains("shop-metrics-1"), "{text}");
}
