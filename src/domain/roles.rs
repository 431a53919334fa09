//! The five roles of cellqc and what each may do (API.md "Roles"; 21 CFR
//! 11.10(g) authority checks): one table, [`roles_for`], that the services
//! check and that the API extractors and the web pages ask, so no face keeps
//! a list of its own. Which role may sign which meaning is part of it
//! ([`signer_roles`]).

use super::signature::Meaning;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

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

impl RoleSetError {
    /// The words saying why.
    pub fn words(&self) -> super::Words {
        match self {
            RoleSetError::Empty => super::Words::new("fe-roles-empty"),
            RoleSetError::Unknown(UnknownRole(name)) => {
                super::Words::with("fe-role-unknown", &[("role", name.clone())])
            }
        }
    }
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

    /// Administrators are independent of the record: `admin` is never held
    /// with a role that generates or approves it (FDA data-integrity
    /// guidance; API v1.1 `role_conflict`).
    pub fn check_independent(&self) -> Result<(), RoleConflict> {
        const RECORD_ROLES: [Role; 3] = [Role::Technician, Role::Reviewer, Role::Qa];
        if self.contains(Role::Admin) && self.contains_any(&RECORD_ROLES) {
            Err(RoleConflict)
        } else {
            Ok(())
        }
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

/// Something a user asks to do, as the authority check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create, change, unlock and list user accounts.
    ManageUsers,
    /// Create products and draft specifications.
    DefineProducts,
    /// Start a batch.
    CreateBatch,
    /// Record a test result.
    RecordResult,
    /// Record a custody event.
    RecordCustody,
    /// Open a deviation by hand.
    OpenDeviation,
    /// Read the audit trail, a batch's history and the chain verification.
    ReadAuditTrail,
    /// Register an instrument.
    RegisterInstruments,
    /// Record a calibration, or take an instrument out of service.
    MaintainInstruments,
    /// Receive a material lot into quarantine.
    ReceiveMaterials,
    /// Sign with this meaning.
    Sign(Meaning),
}

/// `admin` together with `technician`, `reviewer` or `qa` (422 `role_conflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleConflict;

/// A change of one's own roles or active flag (403 `own_account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnAccount;

/// Nobody changes their own roles or active flag.
pub fn check_not_own(
    actor: Uuid,
    target: Uuid,
    changes_roles_or_active: bool,
) -> Result<(), OwnAccount> {
    if actor == target && changes_roles_or_active {
        Err(OwnAccount)
    } else {
        Ok(())
    }
}

/// The roles any one of which allows `action`.
pub fn roles_for(action: Action) -> &'static [Role] {
    match action {
        Action::ManageUsers => &[Role::Admin],
        Action::DefineProducts => &[Role::Qa],
        Action::CreateBatch | Action::RecordCustody => &[Role::Technician, Role::Qa],
        Action::RecordResult => &[Role::Technician],
        Action::OpenDeviation => &[Role::Technician, Role::Reviewer, Role::Qa],
        Action::ReadAuditTrail => &[Role::Auditor, Role::Qa],
        Action::RegisterInstruments => &[Role::Qa],
        Action::MaintainInstruments | Action::ReceiveMaterials => &[Role::Technician, Role::Qa],
        Action::Sign(meaning) => signer_roles(meaning),
    }
}

/// Who may sign each meaning: reviewers review results (the second person,
/// Annex 11 §6); only the quality unit approves specifications, certifies,
/// rejects or recalls batches and closes deviations (Annex 11 §15; 211.22).
pub fn signer_roles(meaning: Meaning) -> &'static [Role] {
    match meaning {
        Meaning::Reviewed | Meaning::ReviewRejected => &[Role::Reviewer],
        Meaning::SpecApproved
        | Meaning::Released
        | Meaning::ConditionallyReleased
        | Meaning::Rejected
        | Meaning::Recalled
        | Meaning::DeviationClosed
        | Meaning::QualificationGranted
        | Meaning::QualificationRevoked
        | Meaning::InstrumentReturned
        | Meaning::MaterialReleased
        | Meaning::MaterialRejected
        | Meaning::AuditTrailReviewed
        | Meaning::CorrectionOpened => &[Role::Qa],
    }
}

/// The user holds none of the roles an action needs (403 `forbidden_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleRefusal {
    /// The roles that would allow it.
    pub needed: &'static [Role],
}

impl RoleRefusal {
    /// The roles, as a reader would list them (`technician or qa`).
    pub fn needed_words(&self) -> String {
        self.needed
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Checks that `roles` allow `action`.
pub fn check(roles: &RoleSet, action: Action) -> Result<(), RoleRefusal> {
    let needed = roles_for(action);
    if roles.contains_any(needed) {
        Ok(())
    } else {
        Err(RoleRefusal { needed })
    }
}

impl RoleSet {
    /// Whether these roles allow `action`.
    pub fn may(&self, action: Action) -> bool {
        check(self, action).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_holds_no_role_of_the_record_and_nobody_changes_their_own() {
        let set = |r: &[&str]| RoleSet::parse(r).unwrap();
        for other in ["technician", "reviewer", "qa"] {
            assert_eq!(
                set(&["admin", other]).check_independent(),
                Err(RoleConflict)
            );
        }
        assert_eq!(set(&["admin", "auditor"]).check_independent(), Ok(()));
        assert_eq!(set(&["qa", "reviewer"]).check_independent(), Ok(()));
        let me = Uuid::from_u128(1);
        assert_eq!(check_not_own(me, me, true), Err(OwnAccount));
        assert_eq!(check_not_own(me, me, false), Ok(()));
        assert_eq!(check_not_own(me, Uuid::from_u128(2), true), Ok(()));
    }

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

    #[test]
    fn only_qa_signs_for_the_quality_unit_and_only_reviewers_review() {
        let qa = RoleSet::parse(&["qa"]).unwrap();
        let reviewer = RoleSet::parse(&["reviewer"]).unwrap();
        let tech = RoleSet::parse(&["technician"]).unwrap();
        let admin = RoleSet::parse(&["admin"]).unwrap();
        for m in <Meaning as strum::VariantArray>::VARIANTS {
            let by_qa = qa.may(Action::Sign(*m));
            let by_reviewer = reviewer.may(Action::Sign(*m));
            match m {
                Meaning::Reviewed | Meaning::ReviewRejected => {
                    assert!(by_reviewer && !by_qa, "{m:?}")
                }
                _ => assert!(by_qa && !by_reviewer, "{m:?}"),
            }
            assert!(!tech.may(Action::Sign(*m)) && !admin.may(Action::Sign(*m)));
        }
    }

    #[test]
    fn every_action_has_its_roles_and_admins_write_no_gmp_record() {
        let admin = RoleSet::parse(&["admin"]).unwrap();
        assert!(admin.may(Action::ManageUsers));
        for a in [
            Action::DefineProducts,
            Action::CreateBatch,
            Action::RecordResult,
            Action::RecordCustody,
            Action::OpenDeviation,
            Action::ReadAuditTrail,
        ] {
            assert!(!admin.may(a), "{a:?}");
        }
        let auditor = RoleSet::parse(&["auditor"]).unwrap();
        assert!(auditor.may(Action::ReadAuditTrail));
        assert!(!auditor.may(Action::RecordResult));
        let refusal = check(&auditor, Action::CreateBatch).unwrap_err();
        assert_eq!(refusal.needed_words(), "technician or qa");
    }
}
