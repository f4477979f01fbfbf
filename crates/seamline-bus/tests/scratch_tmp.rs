use std::time::Duration;
use seamline_bus::*;
#[tokio::test]
async fn scratch() {
    let run = uuid::Uuid::now_v7().simple();
    let mut o = NatsOptions::new("nats://127.0.0.1:4222");
    o.stream = format!("SCRATCH_{run}"); o.subject_prefix = format!("scratch-{run}");
    o.bus.ack_wait = Duration::from_secs(1);
    let a = NatsBus::connect(o.clone()).await.unwrap();
    let _s1 = a.subscribe("x.>", SubscriptionKind::Group("g.1".into())).await.unwrap();
    o.bus.ack_wait = Duration::from_secs(3);
    let b = NatsBus::connect(o.clone()).await.unwrap();
    println!("ack_wait change: {:?}", b.subscribe("x.>", SubscriptionKind::Group("g.1".into())).await.map(|_|()));
    println!("filter change: {:?}", b.subscribe("y.>", SubscriptionKind::Group("g.1".into())).await.map(|_|()));
    println!("ping: {:?}", b.ping().await);
    println!("{:?}", o);
    let bad = NatsBus::connect(NatsOptions::new("nats://user:secret@127.0.0.1:1")).await;
    println!("bad: {:?}", bad.map(|_|()));
    let bad = NatsBus::connect(NatsOptions::new("nats://user:secret@[::zz")).await;
    println!("bad parse: {:?}", bad.map(|_|()));
    let c = async_nats::connect("127.0.0.1:4222").await.unwrap();
    async_nats::jetstream::new(c).delete_stream(&o.stream).await.unwrap();
    println!("ping after delete: {:?}", b.ping().await);
}
