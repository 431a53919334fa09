//! Extractors that state, in a handler's signature, who may call it:
//! [`CurrentUser`] for any signed-in user, [`Authorized<R>`] for a role
//! requirement such as [`AdminOnly`].
//!
//! Per-record rules (self-review, independence) are not here: they live in
//! the domain and the services.

use crate::app::AppState;
use crate::domain::roles::Role;
use crate::error::{AppError, Problem};
use crate::services::auth::{Authenticated, authenticate};
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use std::marker::PhantomData;
use std::ops::Deref;

/// The signed-in user of this request (any role).
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Authenticated);

impl Deref for CurrentUser {
    type Target = Authenticated;
    fn deref(&self) -> &Authenticated {
        &self.0
    }
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The outcome of authenticating a request's token, taken once by
/// [`authenticate_first`] before the handler's extractors run.
#[derive(Debug, Clone)]
pub struct AuthOutcome(Result<Authenticated, Problem>);

/// Middleware: authenticates a presented bearer token before any extractor
/// runs, so that the identity (and with it 401/403) is decided before a path,
/// query or body is judged. It refuses nothing itself: a handler that needs a
/// user says so with [`CurrentUser`] or [`Authorized`].
pub async fn authenticate_first(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let (Some(token), Some(state)) = (
        bearer_token(req.request()),
        req.app_data::<web::Data<AppState>>().cloned(),
    ) {
        let cfg = state.auth.clone();
        let outcome = state
            .db(move |c| authenticate(c, &cfg, &token))
            .await
            .map_err(|e| e.to_problem());
        req.extensions_mut().insert(AuthOutcome(outcome));
    }
    next.call(req).await
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let taken = req.extensions().get::<AuthOutcome>().cloned();
        if let Some(AuthOutcome(outcome)) = taken {
            // Ready at the first poll: the identity is decided before the
            // extractors after it in the handler's signature.
            return Box::pin(std::future::ready(
                outcome
                    .map(CurrentUser)
                    .map_err(|p| AppError::Problem(Box::new(p))),
            ));
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("application state is not configured"))
            })?;
            let token = token.ok_or_else(|| {
                AppError::unauthorized("missing_token", "send `Authorization: Bearer <token>`")
            })?;
            let cfg = state.auth.clone();
            let who = state.db(move |c| authenticate(c, &cfg, &token)).await?;
            Ok(CurrentUser(who))
        })
    }
}

/// A set of roles, any one of which allows the call.
pub trait RoleRequirement {
    /// The roles that satisfy the requirement.
    const ROLES: &'static [Role];
}

/// Only `admin`.
#[derive(Debug)]
pub struct AdminOnly;
impl RoleRequirement for AdminOnly {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Only `qa`: the quality unit.
#[derive(Debug)]
pub struct QaOnly;
impl RoleRequirement for QaOnly {
    const ROLES: &'static [Role] = &[Role::Qa];
}

/// `technician`: records results.
#[derive(Debug)]
pub struct TechnicianOnly;
impl RoleRequirement for TechnicianOnly {
    const ROLES: &'static [Role] = &[Role::Technician];
}

/// `reviewer`: reviews results performed by someone else.
#[derive(Debug)]
pub struct ReviewerOnly;
impl RoleRequirement for ReviewerOnly {
    const ROLES: &'static [Role] = &[Role::Reviewer];
}

/// `technician` or `qa`: create batches, record custody.
#[derive(Debug)]
pub struct BatchWriter;
impl RoleRequirement for BatchWriter {
    const ROLES: &'static [Role] = &[Role::Technician, Role::Qa];
}

/// `technician`, `reviewer` or `qa`: open a deviation.
#[derive(Debug)]
pub struct DeviationOpener;
impl RoleRequirement for DeviationOpener {
    const ROLES: &'static [Role] = &[Role::Technician, Role::Reviewer, Role::Qa];
}

/// `auditor` or `qa`: readers of the audit trail.
#[derive(Debug)]
pub struct AuditReader;
impl RoleRequirement for AuditReader {
    const ROLES: &'static [Role] = &[Role::Auditor, Role::Qa];
}

/// A signed-in user holding one of `R::ROLES`; anyone else gets 403.
#[derive(Debug)]
pub struct Authorized<R: RoleRequirement> {
    /// The user.
    pub user: CurrentUser,
    _requirement: PhantomData<R>,
}

impl<R: RoleRequirement> Deref for Authorized<R> {
    type Target = Authenticated;
    fn deref(&self) -> &Authenticated {
        &self.user.0
    }
}

impl<R: RoleRequirement + 'static> FromRequest for Authorized<R> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if !user.actor.roles.contains_any(R::ROLES) {
                let needed = R::ROLES
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ");
                return Err(AppError::forbidden(
                    "forbidden_role",
                    format!("this action needs the role {needed}"),
                ));
            }
            Ok(Authorized {
                user,
                _requirement: PhantomData,
            })
        })
    }
}
