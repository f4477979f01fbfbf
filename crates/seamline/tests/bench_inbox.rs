//! `seamline bench inbox` with tiny numbers, so its code path cannot rot:
//! every message sent reaches the operator's stream, on the product and on
//! the raw relay. No timing is asserted: a benchmark is not a timed test.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{run, seamline};

const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

fn bench(extra: &[&str]) -> Value {
    let mut command = seamline();
    command.args([
        "bench",
        "inbox",
        "--sockets",
        "20",
        "--rate",
        "10",
        "--duration",
        "1",
        "--json",
    ]);
    command.args(extra);
    run(command, BENCH_TIMEOUT).success("bench inbox").json()
}

fn assert_complete(report: &Value) {
    for run in ["product", "raw_relay"] {
        let figures = &report[run];
        assert_eq!(figures["sent"], 10, "{run}: {figures}");
        assert_eq!(figures["acked"], 10, "{run}: {figures}");
        assert_eq!(figures["refused"], 0, "{run}: {figures}");
        assert_eq!(figures["delivered"], 10, "{run}: every message on screen");
        assert_eq!(figures["all"]["count"], 10, "{run}: {figures}");
    }
    assert_eq!(report["raw_insert"]["count"], 2000);
    assert!(report["memory"]["client_kib_per_socket"].is_number());
    let targets = report["targets"].as_array().expect("targets");
    assert!(
        targets
            .iter()
            .all(|t| t["name"] == "every message on screen" || t["pass"].is_null()),
        "below the target load the latency targets are not judged: {targets:?}"
    );
}

#[test]
fn one_instance_delivers_every_message_to_the_operator() {
    let report = bench(&[]);
    assert_eq!(report["shape"], "one instance, SQLite, in-process bus");
    assert_complete(&report);
}

#[test]
fn two_instances_deliver_every_message_through_nats() {
    let Some(pg) = seamline_testing::require_env("SEAMLINE_TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let Some(nats) = seamline_testing::require_env("SEAMLINE_TEST_NATS_URL", "NATS JetStream")
    else {
        return;
    };
    let report = bench(&[
        "--two-instances",
        "--postgres-url",
        &pg,
        "--nats-url",
        &nats,
    ]);
    assert!(report["shape"]
        .as_str()
        .is_some_and(|s| s.starts_with("two instances")));
    assert_complete(&report);
}
