//! The five roles of cellqc and what each may do (API.md "Roles").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role a user may hold; a user may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records test results and custody events.
    Technician,
    /// Reviews results performed by someone else.
    Reviewer,
    /// Quality unit / Qualified Person: approves specifications, signs release.
    Qa,
    /// Reads everything, including the audit trail; writes nothing.
    Auditor,
    /// Manages users; writes no GMP record.
    Admin,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 5] = [
        Role::Technician,
        Role::Reviewer,
        Role::Qa,
        Role::Auditor,
        Role::Admin,
    ];

    /// The role's name as stored and as shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Technician => "technician",
            Role::Reviewer => "reviewer",
            Role::Qa => "qa",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the five role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected one of technician, reviewer, qa, auditor, admin")]
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

/// A non-empty, duplicate-free, ordered set of roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSet(Vec<Role>);

/// Why a list of roles is not a valid role set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleSetError {
    /// No role at all.
    #[error("at least one role is required")]
    Empty,
    /// A name that is not a role.
    #[error(transparent)]
    Unknown(#[from] UnknownRole),
}

impl RoleSet {
    /// Parses role names; duplicates collapse, order is normalised.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, RoleSetError> {
        let mut roles = names
            .iter()
            .map(|n| n.as_ref().trim().parse::<Role>())
            .collect::<Result<Vec<_>, _>>()?;
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err(RoleSetError::Empty);
        }
        Ok(RoleSet(roles))
    }

    /// Whether the set holds `role`.
    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Whether the set holds any of `roles`.
    pub fn contains_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.contains(*r))
    }

    /// The roles as stored (`text[]`).
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_owned()).collect()
    }

    /// The roles.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn role_set_normalises_and_refuses_empty_or_unknown() {
        let set = RoleSet::parse(&["qa", "technician", "qa"]).unwrap();
        assert_eq!(set.names(), vec!["technician", "qa"]);
        assert_eq!(RoleSet::parse::<&str>(&[]), Err(RoleSetError::Empty));
        assert!(matches!(
            RoleSet::parse(&["qp"]),
            Err(RoleSetError::Unknown(_))
        ));
    }
}
