//! `GET /api/v1/inbox/stream`: the workspace's inbox as it changes, as
//! server-sent events (`message`, `conversation`, `typing`, `read`; see
//! [`crate::inbox::live`]), and `POST /api/v1/conversations/{id}/typing`
//! for an operator's typing indicator.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use seamline_core::inbox::routing::Presence;
use seamline_core::role::Permission;
use seamline_core::{ConversationId, MemberId, TeamId, WorkspaceId};

use crate::api::conversations::{caller, load, InboxResult};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::inbox::live::{next_frame, publish, Frame, FrameKind, LiveEvent, Party, Whose};
use crate::inbox::queue;
use crate::inbox::visibility::Sight;
use crate::AppState;

pub async fn stream(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    principal.require(Permission::ReadData)?;
    let receiver = state.live.watch_workspace(principal.workspace);
    let sight = Sight::of(state.store.as_ref(), &principal).await?;
    let watch = Watch {
        _screen: caller(&principal).map(|m| Screen::open(&state, principal.workspace, m)),
        state,
        sight,
        teams: HashMap::new(),
        workspace: principal.workspace,
    };
    let frames =
        futures::stream::unfold((receiver, watch), |(mut receiver, mut watch)| async move {
            loop {
                let frame = next_frame(&mut receiver).await?;
                if watch.shows(&frame).await {
                    let event = Event::default()
                        .event(frame.kind.as_str())
                        .data(frame.json.as_ref());
                    return Some((Ok(event), (receiver, watch)));
                }
            }
        });
    Ok(Sse::new(frames).keep_alive(KeepAlive::default()))
}

/// One operator's stream: what they may see of the workspace's frames.
struct Watch {
    state: AppState,
    workspace: WorkspaceId,
    sight: Sight,
    /// Each conversation's team and assignee, as last seen.
    teams: HashMap<ConversationId, (Option<TeamId>, Option<MemberId>)>,
    _screen: Option<Screen>,
}

impl Watch {
    async fn shows(&mut self, frame: &Frame) -> bool {
        if self.sight.sees_all() {
            return true;
        }
        let id = frame.whose.conversation_id;
        if frame.kind == FrameKind::Conversation {
            if let Some(value) = frame.value() {
                let c = &value["conversation"];
                let team = serde_json::from_value(c["team"].clone()).ok().flatten();
                let assignee = serde_json::from_value(c["assignee"].clone()).ok().flatten();
                self.teams.insert(id, (team, assignee));
            }
        }
        if !self.teams.contains_key(&id) {
            let store = self.state.store.as_ref();
            let Ok(Some(found)) = store.conversation(self.workspace, id).await else {
                return false;
            };
            let c = &found.conversation;
            self.teams.insert(id, (c.team, c.assignee));
        }
        self.teams
            .get(&id)
            .is_some_and(|(team, assignee)| self.sight.sees_team(*team, *assignee))
    }
}

/// How long an online operator may have no inbox open on an instance
/// before they count as offline (a reload or a short drop is not leaving).
const GONE_AFTER: Duration = Duration::from_secs(60);

/// An operator's open inbox screen. When their last one on this instance
/// closes and none reopens in [`GONE_AFTER`], an online operator goes
/// offline, which starts the auto-unassign grace period. Screens on other
/// instances are not counted: there the operator shows online again only
/// by choosing it.
struct Screen {
    state: AppState,
    workspace: WorkspaceId,
    member: MemberId,
}

impl Screen {
    fn open(state: &AppState, workspace: WorkspaceId, member: MemberId) -> Self {
        state.live.screen_opened(workspace, member);
        Self {
            state: state.clone(),
            workspace,
            member,
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let (state, ws, member) = (self.state.clone(), self.workspace, self.member);
        if state.live.screen_closed(ws, member) > 0 {
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(GONE_AFTER).await;
            if state.live.screens(ws, member) > 0 {
                return;
            }
            let store = state.store.as_ref();
            let online = matches!(store.operator(ws, member).await, Ok(Some(o)) if o.presence == Presence::Online);
            if online {
                let gone =
                    queue::set_presence(store, state.bus.as_ref(), ws, member, Presence::Offline);
                if let Err(error) = gone.await {
                    tracing::warn!(%error, "an operator who left could not be marked offline");
                }
            }
        });
    }
}

/// The operator is typing a reply: the visitor's widget shows it.
pub async fn typing(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
) -> InboxResult<StatusCode> {
    principal.require(Permission::WriteData)?;
    let conversation = load(state.store.as_ref(), &principal, id).await?;
    let member = caller(&principal);
    let name = match member {
        Some(member) => state
            .store
            .member(principal.workspace, member)
            .await?
            .map(|m| m.name),
        None => None,
    };
    let event = LiveEvent::Typing {
        at: Whose::of(&conversation),
        party: Party::Operator,
        member,
        name: name.as_deref(),
    };
    publish(state.bus.as_ref(), event).await;
    Ok(StatusCode::NO_CONTENT)
}
