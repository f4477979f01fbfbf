//! Reads every active e-mail account's mailbox: one task per account,
//! started and stopped as accounts come, change and go, all ended by the
//! server's stop token.
//!
//! Each mail is stored before the account's cursor (UIDVALIDITY, last
//! UID, kept in its settings as `imap_state`) moves past it: a crash in
//! between fetches it again and its `Message-ID` makes that a no-op, so a
//! restart neither loses nor duplicates mail. A changed UIDVALIDITY voids
//! the UIDs: the mailbox is read again from the start under the same
//! dedupe. Several instances reading one mailbox store each mail once for
//! the same reason (the store's unique external id).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::{ChannelAccountId, FieldError, ProfileId, WorkspaceId};
use seamline_store::{Attachment, Backend, ChannelAccount, DeliveryStatus, StoreError};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::imap::{self, Cursor, ImapError};
use super::read::{read, File, Mail};
use super::settings::Settings;
use super::thread;
use crate::channels::secrets::SecretError;
use crate::channels::sender::push;
use crate::channels::{accounts, webhook, Account};
use crate::inbox::attachments;
use crate::inbox::{self, Customer, Inbound, InboxError};
use crate::AppState;

/// The settings key of the mailbox cursor.
const CURSOR: &str = "imap_state";
/// Longest wait before a failed mailbox is tried again.
const MAX_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the account's settings: {}", .0.message)]
    Settings(#[from] FieldError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error("an attachment could not be kept: {0}")]
    Blob(#[from] std::io::Error),
    #[error("the account is gone")]
    Gone,
}

/// How often a mailbox is checked and the account list re-read.
fn every(state: &AppState) -> Duration {
    state.config.channels.poll * 4
}

struct Watch {
    fingerprint: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

pub async fn run(state: AppState, stop: CancellationToken) {
    let mut watching: HashMap<ChannelAccountId, Watch> = HashMap::new();
    while !stop.is_cancelled() {
        match email_accounts(state.store.as_ref()).await {
            Ok(accounts) => reconcile(&state, &stop, &mut watching, accounts),
            Err(error) => tracing::warn!(%error, "e-mail accounts could not be listed"),
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(every(&state) * 5) => {}
        }
    }
    for (_, watch) in watching {
        watch.stop.cancel();
        let _ = watch.task.await;
    }
}

async fn email_accounts(store: &dyn Backend) -> Result<Vec<ChannelAccount>, StoreError> {
    let mut all = Vec::new();
    for workspace in store.list_workspaces().await? {
        let accounts = store.list_channel_accounts(workspace.id).await?;
        all.extend(
            accounts
                .into_iter()
                .filter(|a| a.kind == Channel::Email && a.active),
        );
    }
    Ok(all)
}

/// What restarts a watch when it changes: the settings the operator gave
/// (not the cursor the watch itself writes) and the secrets.
fn fingerprint(account: &ChannelAccount) -> String {
    let mut settings = account.settings.clone();
    if let Some(map) = settings.as_object_mut() {
        map.remove(CURSOR);
    }
    format!("{settings}{}", account.secrets.0)
}

fn reconcile(
    state: &AppState,
    stop: &CancellationToken,
    watching: &mut HashMap<ChannelAccountId, Watch>,
    accounts: Vec<ChannelAccount>,
) {
    watching.retain(|id, watch| {
        let current = accounts.iter().find(|a| a.id == *id);
        let keep = current.is_some_and(|a| fingerprint(a) == watch.fingerprint)
            && !watch.task.is_finished();
        if !keep {
            watch.stop.cancel();
        }
        keep
    });
    for account in accounts {
        if watching.contains_key(&account.id) {
            continue;
        }
        let token = stop.child_token();
        let task = tokio::spawn(watch(
            state.clone(),
            account.workspace_id,
            account.id,
            token.clone(),
        ));
        let fingerprint = fingerprint(&account);
        watching.insert(
            account.id,
            Watch {
                fingerprint,
                stop: token,
                task,
            },
        );
    }
}

/// Reads one mailbox until stopped, reconnecting after failures.
async fn watch(state: AppState, ws: WorkspaceId, id: ChannelAccountId, stop: CancellationToken) {
    let mut retry = every(&state);
    while !stop.is_cancelled() {
        match session(&state, ws, id, &stop).await {
            Ok(()) => return,
            Err(WatchError::Gone) => return,
            Err(error) => {
                tracing::warn!(account = %id, %error, "e-mail mailbox not read; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

async fn load(
    state: &AppState,
    ws: WorkspaceId,
    id: ChannelAccountId,
) -> Result<Account, WatchError> {
    let stored = state
        .store
        .channel_account(ws, id)
        .await?
        .ok_or(WatchError::Gone)?;
    Ok(accounts::open(&state.config.channels.secret_key, &stored)?)
}

fn cursor_of(account: &ChannelAccount, uid_validity: u32) -> Cursor {
    let saved = &account.settings[CURSOR];
    let same = saved["uid_validity"].as_u64() == Some(u64::from(uid_validity));
    let last_uid = saved["last_uid"]
        .as_u64()
        .filter(|_| same)
        .and_then(|uid| u32::try_from(uid).ok())
        .unwrap_or(0);
    Cursor {
        uid_validity,
        last_uid,
    }
}

async fn save(
    state: &AppState,
    ws: WorkspaceId,
    id: ChannelAccountId,
    cursor: Cursor,
) -> Result<(), WatchError> {
    let mut stored = state
        .store
        .channel_account(ws, id)
        .await?
        .ok_or(WatchError::Gone)?;
    if let Some(map) = stored.settings.as_object_mut() {
        map.insert(
            CURSOR.into(),
            json!({"uid_validity": cursor.uid_validity, "last_uid": cursor.last_uid}),
        );
    }
    stored.updated_at = Utc::now();
    state.store.update_channel_account(&stored).await?;
    Ok(())
}

/// One connection: reads new mail every poll until stopped or failed.
async fn session(
    state: &AppState,
    ws: WorkspaceId,
    id: ChannelAccountId,
    stop: &CancellationToken,
) -> Result<(), WatchError> {
    let account = load(state, ws, id).await?;
    let settings = Settings::parse(&account.stored.settings)?;
    let password = account.secrets.get("imap_password").unwrap_or_default();
    let (mut mailbox, validity) = imap::open(&settings.imap, password).await?;
    let mut cursor = cursor_of(&account.stored, validity);
    loop {
        for (uid, raw) in imap::fetch_after(&mut mailbox, cursor.last_uid).await? {
            take(state, &account, &settings, &raw).await?;
            cursor.last_uid = uid;
            save(state, ws, id, cursor).await?;
        }
        tokio::select! {
            () = stop.cancelled() => {
                imap::close(mailbox).await;
                return Ok(());
            }
            () = tokio::time::sleep(every(state)) => {}
        }
    }
}

/// Stores one mail (or applies a bounce). A mail the inbox cannot take
/// is logged and passed over; only a store failure stops the cursor.
async fn take(
    state: &AppState,
    account: &Account,
    settings: &Settings,
    raw: &[u8],
) -> Result<(), WatchError> {
    let ws = account.stored.workspace_id;
    let Some(mail) = read(raw) else {
        tracing::warn!(account = %account.stored.id, "an unreadable mail was passed over");
        return Ok(());
    };
    if let Some(bounce) = &mail.bounce {
        if let Some(original) = &bounce.original {
            failed(state, ws, original, &bounce.reason).await?;
        }
        return Ok(());
    }
    if mail.from.is_none() {
        return Ok(());
    }
    let (files, refused) = keep_files(state, ws, &mail.files).await?;
    let Some(mut inbound) = inbound(state, account, settings, mail).await? else {
        return Ok(());
    };
    for name in refused {
        inbound
            .body
            .push_str(&format!("\n\n[attachment {name} not accepted]"));
    }
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    match inbox::receive_with_files(store, bus, inbound, files).await {
        Ok(_) => Ok(()),
        Err(InboxError::Invalid(error)) => {
            tracing::warn!(account = %account.stored.id, error = %error.message, "a mail was passed over");
            Ok(())
        }
        Err(InboxError::Store(error)) => Err(error.into()),
    }
}

/// Files the blob store's check accepts, kept; the names of the others.
async fn keep_files(
    state: &AppState,
    ws: WorkspaceId,
    files: &[File],
) -> Result<(Vec<Attachment>, Vec<String>), WatchError> {
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for file in files.iter().take(attachments::MAX_FILES) {
        match attachments::check(&file.name, &file.content_type, &file.bytes) {
            Ok(checked) => kept.push(state.blobs.put(ws, checked, &file.bytes).await?),
            Err(_) => refused.push(file.name.clone()),
        }
    }
    refused.extend(
        files
            .iter()
            .skip(attachments::MAX_FILES)
            .map(|f| f.name.clone()),
    );
    Ok((kept, refused))
}

/// Our message `id` bounced: failed with the report's reason, shown live.
async fn failed(
    state: &AppState,
    ws: WorkspaceId,
    id: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    let status = DeliveryStatus::Failed;
    let reason = Some(reason.to_owned());
    let moved = webhook::report(store, ws, Channel::Email, id, status, reason).await?;
    if let Some(message) = moved {
        let (profile, id) = (message.profile_id, message.message.id);
        if let Err(error) = push(store, bus, ws, profile, id).await {
            tracing::warn!(%error, "a bounce was saved but not pushed live");
        }
    }
    Ok(())
}

async fn inbound(
    state: &AppState,
    account: &Account,
    settings: &Settings,
    mail: Mail,
) -> Result<Option<Inbound>, WatchError> {
    let Some(from) = mail.from.clone() else {
        return Ok(None);
    };
    let threaded = thread_profile(state.store.as_ref(), account, settings, &mail).await?;
    let address = match threaded {
        Some(profile) => address_on(state.store.as_ref(), account, profile, &from).await?,
        None => from.clone(),
    };
    let name = match &mail.name {
        Some(name) => format!("{name} <{from}>"),
        None => from,
    };
    let body = if mail.text.trim().is_empty() {
        "(an e-mail without text)".to_owned()
    } else {
        mail.text
    };
    Ok(Some(Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Email,
        customer: Customer {
            email: Some(address.clone()),
            channel_id: Some(("email".into(), address)),
            name: Some(name),
            automatic: mail.automatic,
            ..Customer::default()
        },
        body,
        external_id: Some(mail.id),
        at: Utc::now(),
    }))
}

/// The customer whose conversation the mail answers: by our reply
/// address among its recipients, else by a `Message-ID` of the
/// conversation in `In-Reply-To`/`References` (reference §5, in order).
async fn thread_profile(
    store: &dyn Backend,
    account: &Account,
    settings: &Settings,
    mail: &Mail,
) -> Result<Option<ProfileId>, StoreError> {
    let ws = account.stored.workspace_id;
    let key = account.secrets.get("thread_key").unwrap_or_default();
    for recipient in &mail.recipients {
        if let Some(id) = thread::conversation_of(key, &settings.reply_domain, recipient) {
            if let Some(conversation) = store.conversation(ws, id).await? {
                return Ok(Some(conversation.conversation.profile));
            }
        }
    }
    for parent in &mail.parents {
        if let Some(message) = store
            .message_by_external_id(ws, Channel::Email, parent)
            .await?
        {
            return Ok(Some(message.profile_id));
        }
    }
    Ok(None)
}

/// The address the mail is filed under: the sender's when the profile
/// has it, else the profile's own (someone answering from another
/// address stays in the thread they answered).
async fn address_on(
    store: &dyn Backend,
    account: &Account,
    profile: ProfileId,
    from: &str,
) -> Result<String, StoreError> {
    let ws = account.stored.workspace_id;
    let emails: Vec<String> = store
        .profile_identifiers(ws, profile)
        .await?
        .into_iter()
        .filter(|i| i.identifier.kind == IdentifierKind::Email)
        .map(|i| i.identifier.value)
        .collect();
    let known = emails.iter().any(|e| e.eq_ignore_ascii_case(from));
    Ok(match emails.last() {
        Some(own) if !known => own.clone(),
        _ => from.to_owned(),
    })
}
