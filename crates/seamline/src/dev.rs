//! `seamline dev …`: helpers for trying Seamline out without real providers.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Subcommand};
use seamline_fakes::pbx::FakePbx;
use seamline_fakes::telegram::FakeTelegram;
use seamline_fakes::viber::FakeViber;
use seamline_fakes::vk::FakeVk;
use seamline_fakes::whatsapp::FakeWhatsApp;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Run fake provider servers (Telegram, WhatsApp, Viber, VK, a PBX) for the demo.
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
    /// Address the fake PBX (telephony) listens on.
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub pbx_listen: SocketAddr,
}

const WHATSAPP_NUMBER: &str = "106540352242922";
const WHATSAPP_TOKEN: &str = "EAAG-fake-demo-whatsapp-token";
const WHATSAPP_APP_SECRET: &str = "fake-demo-whatsapp-app-secret";
const WHATSAPP_VERIFY_TOKEN: &str = "fake-demo-verify-token";
const PBX_KEY: &str = "fake-demo-pbx-api-key";
const PBX_SALT: &str = "fake-demo-pbx-api-salt";
/// The shop's number the played customer calls.
const PBX_LINE: &str = "74951234567";
/// The played customer's number on WhatsApp and on the phone.
const CUSTOMER: &str = "79161234567";
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
    whatsapp(args.whatsapp_listen).await?;
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
    pbx(args.pbx_listen).await
}

/// The fake WhatsApp Cloud API with one business number. Each value is
/// printed as `label: value` on its own line, to copy (tests read them).
async fn whatsapp(listen: SocketAddr) -> anyhow::Result<()> {
    let whatsapp = FakeWhatsApp::start(listen)
        .await
        .context("starting the fake WhatsApp Cloud API")?;
    whatsapp.add_number(WHATSAPP_NUMBER, WHATSAPP_TOKEN, "15550001234");
    let base = whatsapp.base_url();
    let root = root_of(base);
    println!("Fake WhatsApp Cloud API at {base}");
    println!("  In Seamline: Settings → Channels → add WhatsApp with");
    println!("    phone number id: {WHATSAPP_NUMBER}");
    println!("    access token: {WHATSAPP_TOKEN}");
    println!("    app secret: {WHATSAPP_APP_SECRET}");
    println!("    verify token: {WHATSAPP_VERIFY_TOKEN}");
    println!("    Graph API URL: {base}");
    println!(
        "  then \"Test connection\", and subscribe the webhook URL it shows (Meta's dashboard):"
    );
    println!(
        "    curl -X POST {root}/_fake/whatsapp/subscribe -H 'content-type: application/json' \\\n      \
         -d '{{\"url\": \"<webhook URL>\", \"verify_token\": \"{WHATSAPP_VERIFY_TOKEN}\", \"app_secret\": \"{WHATSAPP_APP_SECRET}\"}}'"
    );
    println!("  Write as a customer:");
    println!(
        "    curl -X POST {root}/_fake/whatsapp/messages -H 'content-type: application/json' \\\n      \
         -d '{{\"phone_number_id\": \"{WHATSAPP_NUMBER}\", \"from\": \"{CUSTOMER}\", \"name\": \"Анна\", \"text\": \"Привет\"}}'"
    );
    Ok(())
}

/// The fake PBX, signing its call events with a fixed key and salt.
async fn pbx(listen: SocketAddr) -> anyhow::Result<()> {
    let pbx = FakePbx::start(listen, PBX_KEY, PBX_SALT)
        .await
        .context("starting the fake PBX")?;
    let base = pbx.base_url();
    println!("Fake PBX at {base}");
    println!("  In Seamline: Settings → Channels → add a phone line (virtual PBX) with");
    println!("    API key: {PBX_KEY}");
    println!("    API salt: {PBX_SALT}");
    println!("    PBX API URL: {base}");
    println!("  or over the API with an owner's API key:");
    println!(
        "    curl -X POST <Seamline URL>/api/v1/channels -H 'authorization: Bearer <API key>' \\\n      \
         -H 'content-type: application/json' -d '{{\"kind\": \"phone\", \"name\": \"Office\", \
         \"settings\": {{\"api_base\": \"{base}\"}}, \"secrets\": {{\"api_key\": \"{PBX_KEY}\", \"api_salt\": \"{PBX_SALT}\"}}}}'"
    );
    println!("  then \"Test connection\" (POST …/channels/<id>/test), and paste the webhook URL it shows:");
    println!(
        "    curl -X POST {base}/_fake/pbx/webhook -H 'content-type: application/json' -d '{{\"url\": \"<webhook URL>\"}}'"
    );
    println!("  Call as a customer (answered, 42 s, with a recording):");
    println!(
        "    curl -X POST {base}/_fake/pbx/calls -H 'content-type: application/json' \\\n      \
         -d '{{\"from\": \"{CUSTOMER}\", \"to\": \"{PBX_LINE}\"}}'"
    );
    Ok(())
}

/// The fake's own address (its demo routes), without the API's path.
fn root_of(base: &str) -> &str {
    base.rsplit_once('/').map_or(base, |(root, _)| root)
}
