//! deferred-ops against the whole local system: what the runner sends to notifier's on-failure
//! destination (Lambda's record of the batch, with its shard) is what
//! `replay-notifier-failures` reads, and replaying it publishes the events subscribers missed.

use std::sync::Arc;
use std::time::Duration;

use deferred_ops::replay::Outcome;
use deferred_ops::{Clients, Command, Report};
use e2e_tests::System;
use emulator::faults::{Fault, FaultPlan, Rule};

const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_batch_notifier_gave_up_on_is_replayed_from_the_failure_queue() {
    // Every PublishBatch of notifier fails, and its stream mapping retries no more: the batch's
    // description goes to NotifierFailureQueue.
    let plan = FaultPlan::new(
        vec![Rule::new(
            "sns:PublishBatch",
            0,
            usize::MAX,
            Fault::ServerError,
        )],
        0.0,
        1,
    );
    let system = System::start_with_faults(
        &[("NotifierMaximumRetryAttempts", "0")],
        Some(Arc::new(plan)),
    )
    .await;
    let events = system.subscribe_score_events(None).await;
    // No data in the lake: the job ends failed (NO_DATA), a transition notifier must announce.
    let answer = system.wait_for_result("ops-replay", WITHIN).await;
    let job_id = answer.body["job_id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WITHIN;
    while system.queue_depth("NotifierFailureQueue").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing reached NotifierFailureQueue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        emulator::drain_queue(&system.runner.sdk, &events, 0, Duration::ZERO)
            .await
            .is_empty()
    );

    // The operator replays with their own (fault-free) credentials.
    let names = system.names();
    let command = Command::ReplayNotifierFailures(deferred_ops::replay::Args {
        failure_queue_url: system
            .runner
            .resources
            .queue("NotifierFailureQueue")
            .url
            .clone(),
        score_events_topic_arn: names.score_events_topic_arn,
        max_messages: 10,
        dry_run: false,
    });
    let report = deferred_ops::run(
        command,
        &Clients::new(&system.runner.sdk),
        chrono::Utc::now(),
    )
    .await
    .unwrap();

    let Report::Replay(replay) = &report else {
        panic!("{report:?}")
    };
    assert_eq!(replay.ranges.len(), 1, "{replay:?}");
    assert_eq!(replay.ranges[0].outcome, Outcome::Replayed, "{replay:?}");
    let published = emulator::drain_queue(&system.runner.sdk, &events, 1, WITHIN).await;
    let bodies: Vec<serde_json::Value> = published
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|e| e["type"] == "score.failed" && e["job_id"] == job_id.as_str()),
        "{bodies:?}"
    );
    assert_eq!(system.queue_depth("NotifierFailureQueue").await, 0);
    system.runner.shutdown().await;
}
