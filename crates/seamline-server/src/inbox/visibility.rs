//! What one caller may see of the inbox: the core's rule
//! ([`seamline_core::inbox::visibility`]) with the workspace's private
//! teams and the caller's own teams loaded once per request.

use seamline_core::inbox::visibility::{Viewer, Visibility};
use seamline_core::{MemberId, TeamId, WorkspaceId};
use seamline_store::{Backend, StoreResult, StoredConversation};

use crate::auth::{Actor, Principal};

/// The workspace setting that holds [`Visibility`].
pub const SETTING: &str = "inbox";

/// The workspace's rule; a stored value that no longer parses counts as
/// no restriction being set (and is logged), never as an error for readers.
pub async fn rules(store: &dyn Backend, ws: WorkspaceId) -> StoreResult<Visibility> {
    let Some(stored) = store.setting(ws, SETTING).await? else {
        return Ok(Visibility::default());
    };
    Ok(serde_json::from_value(stored).unwrap_or_else(|error| {
        tracing::warn!(%error, "the inbox visibility setting does not parse; ignoring it");
        Visibility::default()
    }))
}

/// One caller's view.
pub struct Sight {
    rules: Visibility,
    role: seamline_core::role::Role,
    member: Option<MemberId>,
    teams: Vec<TeamId>,
}

impl Sight {
    pub async fn of(store: &dyn Backend, principal: &Principal) -> StoreResult<Self> {
        let ws = principal.workspace;
        let rules = rules(store, ws).await?;
        let member = match principal.actor {
            Actor::Member(id) => Some(id),
            Actor::Key(_) => None,
        };
        let teams = match member {
            Some(id) if rules.restricts(principal.role) => store.member_teams(ws, id).await?,
            _ => Vec::new(),
        };
        Ok(Self {
            rules,
            role: principal.role,
            member,
            teams,
        })
    }

    pub fn sees(&self, conversation: &StoredConversation) -> bool {
        let c = &conversation.conversation;
        self.sees_team(c.team, c.assignee)
    }

    pub fn sees_team(&self, team: Option<TeamId>, assignee: Option<MemberId>) -> bool {
        let viewer = Viewer {
            role: self.role,
            member: self.member,
            teams: &self.teams,
        };
        self.rules.may_see(viewer, team, assignee)
    }

    /// Nothing is hidden from this caller.
    pub fn sees_all(&self) -> bool {
        !self.rules.restricts(self.role)
    }
}
