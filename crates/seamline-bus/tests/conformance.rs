//! The conformance suite on the in-process bus, and on NATS JetStream when
//! `SEAMLINE_TEST_NATS_URL` is set (skipped loudly otherwise, required in CI).
//! Each NATS test gets its own stream and subject prefix, deleted afterwards,
//! so parallel tests and parallel runs never meet.

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use seamline_bus::{conformance, Bus, InProcessBus, NatsBus, NatsOptions};
use uuid::Uuid;

/// Returns a new handle on the bus under test.
type Connect = Box<dyn Fn() -> BoxFuture<'static, Arc<dyn Bus>>>;

fn in_process() -> Connect {
    let bus = InProcessBus::new(conformance::options());
    Box::new(move || {
        let handle: Arc<dyn Bus> = Arc::new(bus.clone());
        futures::future::ready(handle).boxed()
    })
}

fn nats_options(url: String) -> NatsOptions {
    let run = Uuid::now_v7().simple();
    NatsOptions {
        url,
        stream: format!("SEAMLINE_TEST_{run}"),
        subject_prefix: format!("seamline-test-{run}"),
        bus: conformance::options(),
        ..NatsOptions::default()
    }
}

fn nats(options: NatsOptions) -> Connect {
    Box::new(move || {
        let options = options.clone();
        async move {
            let bus = NatsBus::connect(options)
                .await
                .expect("connect to NATS JetStream");
            Arc::new(bus) as Arc<dyn Bus>
        }
        .boxed()
    })
}

/// Runs `test` on a fresh NATS stream, then deletes the stream even if it failed.
async fn with_nats<Fut>(test: impl FnOnce(Connect) -> Fut)
where
    Fut: Future<Output = ()>,
{
    let Some(url) = seamline_testing::require_env("SEAMLINE_TEST_NATS_URL", "NATS JetStream")
    else {
        return;
    };
    let options = nats_options(url);
    let outcome = AssertUnwindSafe(test(nats(options.clone())))
        .catch_unwind()
        .await;
    delete_stream(&options).await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

async fn delete_stream(options: &NatsOptions) {
    let client = async_nats::connect(options.url.as_str())
        .await
        .expect("connect to NATS to clean up");
    async_nats::jetstream::new(client)
        .delete_stream(&options.stream)
        .await
        .expect("delete the test stream");
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $test() {
                    seamline_bus::conformance::$test(super::in_process()).await;
                }
            )*
        }

        mod nats {
            $(
                #[tokio::test]
                async fn $test() {
                    super::with_nats(seamline_bus::conformance::$test).await;
                }
            )*
        }
    };
}

suite!(
    ping_and_kind,
    rejects_invalid_input,
    broadcast_reaches_every_subscriber,
    broadcast_starts_at_subscribe,
    subject_filters_isolate,
    group_handles_each_message_once,
    groups_each_get_every_message,
    group_filter_is_fixed,
    unacked_delivery_is_redelivered,
    dropped_delivery_goes_to_another_member,
    duplicate_id_is_delivered_once,
    order_is_preserved,
    payloads_round_trip,
);

/// `run_all` itself, as other crates call it: every test on one shared bus.
#[tokio::test]
async fn run_all_in_process() {
    conformance::run_all(in_process()).await;
}

#[tokio::test]
async fn run_all_on_nats() {
    with_nats(conformance::run_all).await;
}

#[tokio::test]
async fn kinds_are_named() {
    let bus = InProcessBus::new(conformance::options());
    assert_eq!(bus.kind(), "in-process");
    with_nats(|connect| async move {
        assert_eq!(connect().await.kind(), "nats");
    })
    .await;
}
