//! Workspace roles and what each may do. Routes ask for a [`Permission`],
//! never for a role, so the matrix lives in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Supervisor,
    Operator,
    /// Read-only: sees data and reports, changes nothing.
    Analyst,
}

/// Something a route needs to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read events, profiles, reports.
    ReadData,
    /// Change customer-facing data (answer conversations, edit profiles).
    WriteData,
    /// Invite, remove and re-role members; create and revoke keys.
    ManageWorkspace,
    /// See the workspace's integrations (webhooks and their delivery log),
    /// which reveal where its data goes.
    ReadIntegrations,
    /// Set up teams: members, capacity, routing, hours, bots.
    ManageTeams,
    /// Watch every queue and operator live; take conversations over.
    Supervise,
    /// Grant or take away the owner role.
    ManageOwners,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Supervisor,
        Role::Operator,
        Role::Analyst,
    ];

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            ReadData => true,
            WriteData => !matches!(self, Role::Analyst),
            ManageWorkspace => matches!(self, Role::Owner | Role::Admin),
            ReadIntegrations => matches!(self, Role::Owner | Role::Admin | Role::Supervisor),
            ManageTeams => matches!(self, Role::Owner | Role::Admin | Role::Supervisor),
            Supervise => matches!(self, Role::Owner | Role::Admin | Role::Supervisor),
            ManageOwners => matches!(self, Role::Owner),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
            Role::Analyst => "analyst",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}; expected owner, admin, supervisor, operator or analyst")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyst_is_read_only() {
        assert!(Role::Analyst.allows(Permission::ReadData));
        assert!(!Role::Analyst.allows(Permission::WriteData));
        assert!(!Role::Analyst.allows(Permission::ManageWorkspace));
    }

    #[test]
    fn only_owner_and_admin_manage_the_workspace() {
        for role in Role::ALL {
            let expected = matches!(role, Role::Owner | Role::Admin);
            assert_eq!(role.allows(Permission::ManageWorkspace), expected, "{role}");
        }
        assert!(!Role::Admin.allows(Permission::ManageOwners));
        assert!(Role::Owner.allows(Permission::ManageOwners));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
