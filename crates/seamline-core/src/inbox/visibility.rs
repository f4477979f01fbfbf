//! Who sees a conversation. Everyone in the workspace does, unless its
//! team is private: then only the team's members, whoever has it, and
//! those who run the inbox (owners, admins, supervisors).

use serde::{Deserialize, Serialize};

use crate::ids::{MemberId, TeamId};
use crate::role::{Permission, Role};

/// The workspace's private teams (the `inbox` workspace setting).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Visibility {
    /// Conversations of these teams are seen only by their members.
    pub private_teams: Vec<TeamId>,
}

/// Who is looking: their role, id (none for an API key) and teams.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub role: Role,
    pub member: Option<MemberId>,
    pub teams: &'a [TeamId],
}

impl Visibility {
    /// Does anything restrict `viewer` at all? (Saves looking up teams.)
    pub fn restricts(&self, role: Role) -> bool {
        !self.private_teams.is_empty() && !role.allows(Permission::Supervise)
    }

    pub fn may_see(
        &self,
        viewer: Viewer<'_>,
        team: Option<TeamId>,
        assignee: Option<MemberId>,
    ) -> bool {
        let Some(team) = team.filter(|t| self.private_teams.contains(t)) else {
            return true;
        };
        !self.restricts(viewer.role)
            || viewer.teams.contains(&team)
            || (assignee.is_some() && assignee == viewer.member)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn team() -> TeamId {
        TeamId(Uuid::now_v7())
    }

    #[test]
    fn a_private_team_is_seen_by_its_members_its_assignee_and_supervisors() {
        let (vip, general) = (team(), team());
        let rules = Visibility {
            private_teams: vec![vip],
        };
        let me = MemberId(Uuid::now_v7());
        let outsider = Viewer {
            role: Role::Operator,
            member: Some(me),
            teams: &[general],
        };
        assert!(rules.may_see(outsider, None, None), "no team: everyone");
        assert!(rules.may_see(outsider, Some(general), None));
        assert!(!rules.may_see(outsider, Some(vip), None));
        assert!(rules.may_see(outsider, Some(vip), Some(me)), "their own");
        let member = Viewer {
            teams: &[vip],
            ..outsider
        };
        assert!(rules.may_see(member, Some(vip), None));
        for role in [Role::Owner, Role::Admin, Role::Supervisor] {
            let boss = Viewer { role, ..outsider };
            assert!(rules.may_see(boss, Some(vip), None), "{role:?}");
        }
        let analyst = Viewer {
            role: Role::Analyst,
            ..outsider
        };
        assert!(!rules.may_see(analyst, Some(vip), None));
        assert!(!rules.restricts(Role::Admin) && rules.restricts(Role::Operator));
        assert!(!Visibility::default().restricts(Role::Operator));
    }
}
