//! `seamline dev …`: helpers for trying Seamline out without real providers.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Subcommand};
use seamline_fakes::telegram::FakeTelegram;
use seamline_fakes::viber::FakeViber;
use seamline_fakes::vk::FakeVk;
use seamline_fakes::whatsapp::FakeWhatsApp;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Run fake provider servers (Telegram, WhatsApp, Viber, VK) for the demo.
    FakeProviders(FakeArgs),
}

#[derive(Debug, Args)]
pub struct FakeArgs {
    /// Address the fake Telegram Bot API listens on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub telegram_listen: SocketAddr,
    /// The bot token the fake accepts (enter it in Settings → Channels).
    #[arg(long, default_value = "123456789:FAKE-demo-token-for-seamline")]
    pub telegram_token: String,
    /// Address the fake WhatsApp Cloud API (Graph) listens on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub whatsapp_listen: SocketAddr,
    /// Address the fake Viber Bot API listens on.
    #[arg(long, default_value = "127.0.0.1:8083")]
    pub viber_listen: SocketAddr,
    /// Address the fake VK API listens on.
    #[arg(long, default_value = "127.0.0.1:8084")]
    pub vk_listen: SocketAddr,
}

const WHATSAPP_NUMBER: &str = "106540352242922";
const WHATSAPP_TOKEN: &str = "EAAG-fake-demo-whatsapp-token";
const VIBER_TOKEN: &str = "445da6az1s345z78-fake-demo-viber";
const VK_GROUP: i64 = 218_000_001;
const VK_TOKEN: &str = "vk1.a.fake-demo-community-token";

pub async fn run(command: DevCommand) -> anyhow::Result<()> {
    match command {
        DevCommand::FakeProviders(args) => fake_providers(args).await,
    }
}

async fn fake_providers(args: FakeArgs) -> anyhow::Result<()> {
    let telegram = FakeTelegram::start(args.telegram_listen)
        .await
        .context("starting the fake Telegram Bot API")?;
    telegram.add_bot(&args.telegram_token);
    let base = telegram.base_url();
    let token = &args.telegram_token;
    println!("Fake Telegram Bot API at {base}");
    println!("  In Seamline: Settings → Channels → add Telegram with");
    println!("    bot token: {token}");
    println!("    API base URL: {base}");
    println!("  then press \"Test connection\" (it sets the webhook).");
    println!("  Write as a customer:");
    println!(
        "    curl -X POST {base}/_fake/telegram/{token}/messages \\\n      -H 'content-type: application/json' -d '{{\"from\": 42, \"name\": \"Анна\", \"text\": \"Привет\"}}'"
    );
    messengers(&args).await?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    let sent = telegram.delivered();
    println!("Stopped; the bot sent {} message(s).", sent.len());
    Ok(())
}

/// The fake WhatsApp, Viber and VK, with how to connect each.
async fn messengers(args: &FakeArgs) -> anyhow::Result<()> {
    let whatsapp = FakeWhatsApp::start(args.whatsapp_listen)
        .await
        .context("starting the fake WhatsApp Cloud API")?;
    whatsapp.add_number(WHATSAPP_NUMBER, WHATSAPP_TOKEN, "15550001234");
    let base = whatsapp.base_url();
    let root = root_of(base);
    println!("Fake WhatsApp Cloud API at {base}");
    println!(
        "  Add WhatsApp with phone number id {WHATSAPP_NUMBER}, access token {WHATSAPP_TOKEN},"
    );
    println!("    any app secret and verify token, Graph API URL {base}; then subscribe:");
    println!(
        "    curl -X POST {root}/_fake/whatsapp/subscribe -H 'content-type: application/json' \\"
    );
    println!(
        "      -d '{{\"url\": \"<webhook URL>\", \"verify_token\": \"…\", \"app_secret\": \"…\"}}'"
    );
    println!("  Write as a customer: POST {root}/_fake/whatsapp/messages {{\"phone_number_id\": \"{WHATSAPP_NUMBER}\", \"from\": \"79161234567\", \"text\": \"Привет\"}}");
    let viber = FakeViber::start(args.viber_listen)
        .await
        .context("starting the fake Viber Bot API")?;
    viber.add_bot(VIBER_TOKEN, "Seamline demo");
    let base = viber.base_url();
    let root = root_of(base);
    println!("Fake Viber Bot API at {base}");
    println!(
        "  Add Viber with bot token {VIBER_TOKEN} and API URL {base}, then \"Test connection\"."
    );
    println!("  Write as a customer: POST {root}/_fake/viber/{VIBER_TOKEN}/messages {{\"from\": \"01234567890A=\", \"text\": \"Привет\"}}");
    let vk = FakeVk::start(args.vk_listen)
        .await
        .context("starting the fake VK API")?;
    vk.add_group(VK_GROUP, VK_TOKEN, "demo-confirm");
    let base = vk.base_url();
    let root = root_of(base);
    println!("Fake VK API at {base}");
    println!(
        "  Add VK with community id {VK_GROUP}, token {VK_TOKEN}, any secret key, API URL {base};"
    );
    println!("    \"Test connection\", then confirm: POST {root}/_fake/vk/confirm {{\"group_id\": {VK_GROUP}, \"url\": \"<webhook URL>\", \"secret\": \"…\"}}");
    println!("  Write as a customer: POST {root}/_fake/vk/messages {{\"from\": 1234567, \"text\": \"Привет\"}}");
    Ok(())
}

/// The fake's own address (its demo routes), without the API's path.
fn root_of(base: &str) -> &str {
    base.rsplit_once('/').map_or(base, |(root, _)| root)
}
