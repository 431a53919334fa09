//! Extractors that state, in a handler's signature, who may call it:
//! [`CurrentUser`] for any signed-in user, [`Authorized<R>`] for what the
//! caller must be allowed to do, such as [`ManagesUsers`]; the roles come from
//! the one table in [`crate::domain::roles`].
//!
//! Per-record rules (self-review, independence) are not here: they live in
//! the domain and the services.

use crate::domain::roles::{Action, check};
use crate::domain::signature::Meaning;
use crate::error::Code;
use crate::error::{AppError, Problem};
use crate::http::{AppState, HeldConnection};
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

impl AuthOutcome {
    /// The user the token belongs to, when it was good.
    pub fn user_id(&self) -> Option<uuid::Uuid> {
        self.0.as_ref().ok().map(|who| who.actor.id)
    }
}

/// The routes whose session check runs in the use case's own blocking task
/// ([`Caller`], [`crate::http::Db::run_as`]): one thread hop per request
/// instead of two. Their handlers keep the body unjudged until the caller
/// is decided there, so 401/403 still come before 422.
const ONE_HOP: &[(&str, &str)] = &[
    ("POST", "/api/v1/batches/{id}/results"),
    ("GET", "/api/v1/batches/{id}"),
];

/// A one-hop route's token, its signature and lifetime checked (no database
/// yet): the session is checked by [`crate::http::Db::run_as`].
#[derive(Debug, Clone)]
struct Deferred(Result<String, Problem>);

/// Middleware: authenticates a presented bearer token before any extractor
/// runs, so that the identity (and with it 401/403) is decided before a path,
/// query or body is judged. It refuses nothing itself: a handler that needs a
/// user says so with [`CurrentUser`] or [`Authorized`]. On a one-hop route
/// it only checks the token's signature and leaves the session to the use
/// case's task ([`Caller`]).
pub async fn authenticate_first(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let one_hop = req.match_pattern().is_some_and(|pattern| {
        ONE_HOP
            .iter()
            .any(|(m, p)| *p == pattern && req.method().as_str() == *m)
    });
    let presented = (
        bearer_token(req.request()),
        req.app_data::<web::Data<AppState>>().cloned(),
    );
    if one_hop {
        if let (Some(token), Some(state)) = presented {
            let checked = match state.auth.keys.verify(&token) {
                Some(_) => Ok(token),
                None => Err(crate::services::auth::invalid_token().to_problem()),
            };
            req.extensions_mut().insert(Deferred(checked));
        }
        return next.call(req).await;
    }
    if let (Some(token), Some(state)) = presented {
        let cfg = state.auth.clone();
        let (outcome, conn) = state
            .db_on(None, move |c| authenticate(c, &cfg, &token))
            .await;
        req.extensions_mut()
            .insert(AuthOutcome(outcome.map_err(|e| e.to_problem())));
        // The handler's database work reuses the connection (`Db`).
        if let Some(conn) = conn {
            req.extensions_mut().insert(HeldConnection::new(conn));
        }
    }
    let res = next.call(req).await?;
    // Back to the pool before the response is written, if the handler did
    // not take it.
    res.request().extensions_mut().remove::<HeldConnection>();
    Ok(res)
}

/// Whether a session on a temporary password may send `req`: a read, or
/// its own sign-out or password change (the rule is
/// `domain::users::temporary_password_allows`).
fn allowed_on_a_temporary_password(req: &HttpRequest) -> bool {
    let writes = !matches!(
        *req.method(),
        actix_web::http::Method::GET
            | actix_web::http::Method::HEAD
            | actix_web::http::Method::OPTIONS
    );
    let own = matches!(req.path(), "/api/v1/auth/logout" | "/api/v1/auth/password");
    crate::domain::users::temporary_password_allows(writes, own)
}

/// A session on a password someone else set reads, signs out and changes
/// its own password (`POST /auth/logout`, `POST /auth/password`); any other
/// write is 403 `password_change_required`, whatever the route, and the
/// refusal is kept in the trail.
async fn reads_only_on_a_temporary_password(
    req: &HttpRequest,
    state: Option<web::Data<AppState>>,
    who: Authenticated,
) -> Result<Authenticated, AppError> {
    if !who.actor.password_change_required || allowed_on_a_temporary_password(req) {
        return Ok(who);
    }
    let state = state.ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("application state is not configured"))
    })?;
    let (method, path) = (req.method().to_string(), req.path().to_owned());
    let refusal = state
        .db(move |c| {
            crate::services::auth::refuse_write_on_temporary_password(c, &who, &method, &path)
        })
        .await?;
    Err(refusal)
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let taken = req.extensions().get::<AuthOutcome>().cloned();
        let request = req.clone();
        if let Some(AuthOutcome(outcome)) = taken {
            let who = match outcome {
                Ok(who) if !who.actor.password_change_required => {
                    // Ready at the first poll: the identity is decided before
                    // the extractors after it in the handler's signature.
                    return Box::pin(std::future::ready(Ok(CurrentUser(who))));
                }
                Ok(who) => who,
                Err(p) => {
                    return Box::pin(std::future::ready(Err(AppError::Problem(Box::new(p)))));
                }
            };
            let state = req.app_data::<web::Data<AppState>>().cloned();
            return Box::pin(async move {
                Ok(CurrentUser(
                    reads_only_on_a_temporary_password(&request, state, who).await?,
                ))
            });
        }
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("application state is not configured"))
            })?;
            let token = token.ok_or_else(|| {
                AppError::refused(Code::MissingToken, "send `Authorization: Bearer <token>`")
            })?;
            let cfg = state.auth.clone();
            let who = state.db(move |c| authenticate(c, &cfg, &token)).await?;
            Ok(CurrentUser(
                reads_only_on_a_temporary_password(&request, Some(state), who).await?,
            ))
        })
    }
}

/// What a [`Caller`] must be: signed in ([`SignedIn`]), or allowed to do a
/// [`RoleRequirement`]'s action.
pub trait CallerRequirement {
    /// The action the caller's roles must allow; none: any signed-in user.
    const ACTION: Option<Action>;
}

impl<R: RoleRequirement> CallerRequirement for R {
    const ACTION: Option<Action> = Some(R::ACTION);
}

/// Any signed-in user.
#[derive(Debug)]
pub struct SignedIn;

impl CallerRequirement for SignedIn {
    const ACTION: Option<Action> = None;
}

/// The caller of a one-hop route: a token whose signature is good, its
/// session not yet checked. [`crate::http::Db::run_as`] checks the session,
/// the temporary-password rule and `R` in the use case's own blocking task,
/// then runs the use case: one hop for the request. No token, or a token
/// that is not ours, is refused here at once (401).
#[derive(Debug)]
pub struct Caller<R: CallerRequirement> {
    token: String,
    /// The session, when the middleware checked it already (a route not
    /// in [`ONE_HOP`]).
    checked: Option<Authenticated>,
    /// Whether a session on a temporary password may send this request.
    allowed_on_temporary: bool,
    method: String,
    path: String,
    _requirement: PhantomData<R>,
}

impl<R: CallerRequirement> Caller<R> {
    /// In the use case's task: the session, the temporary-password rule,
    /// then the role; the signed-in user.
    pub fn decide(
        &self,
        c: &mut diesel::PgConnection,
        cfg: &crate::services::auth::AuthConfig,
    ) -> Result<Authenticated, AppError> {
        let who = match &self.checked {
            Some(who) => who.clone(),
            None => authenticate(c, cfg, &self.token)?,
        };
        if who.actor.password_change_required && !self.allowed_on_temporary {
            return Err(crate::services::auth::refuse_write_on_temporary_password(
                c,
                &who,
                &self.method,
                &self.path,
            )?);
        }
        if let Some(action) = R::ACTION {
            check(&who.actor.roles, action)?;
        }
        Ok(who)
    }
}

impl<R: CallerRequirement + 'static> FromRequest for Caller<R> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let deferred = req.extensions().get::<Deferred>().cloned();
        let checked = req.extensions().get::<AuthOutcome>().cloned();
        // The token to check in the use case's task, or the session the
        // middleware checked already (a route not in `ONE_HOP`).
        let caller = match (deferred, checked) {
            (Some(Deferred(Ok(token))), _) => Ok((token, None)),
            (Some(Deferred(Err(p))), _) | (None, Some(AuthOutcome(Err(p)))) => {
                Err(AppError::Problem(Box::new(p)))
            }
            (None, Some(AuthOutcome(Ok(who)))) => Ok((String::new(), Some(who))),
            (None, None) => Err(AppError::refused(
                Code::MissingToken,
                "send `Authorization: Bearer <token>`",
            )),
        };
        std::future::ready(caller.map(|(token, checked)| Caller {
            token,
            checked,
            allowed_on_temporary: allowed_on_a_temporary_password(req),
            method: req.method().to_string(),
            path: req.path().to_owned(),
            _requirement: PhantomData,
        }))
    }
}

/// What a handler's caller must be allowed to do; the roles that allow it
/// come from the one table in [`crate::domain::roles`].
pub trait RoleRequirement {
    /// The action.
    const ACTION: Action;
}

macro_rules! requirement {
    ($($(#[$doc:meta])* $name:ident => $action:expr;)+) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl RoleRequirement for $name {
            const ACTION: Action = $action;
        }
    )+};
}

requirement! {
    /// Manage user accounts (`admin`).
    ManagesUsers => Action::ManageUsers;
    /// Create products and draft specifications.
    DefinesProducts => Action::DefineProducts;
    /// Approve a specification (signed).
    ApprovesSpecs => Action::Sign(Meaning::SpecApproved);
    /// Start a batch.
    CreatesBatches => Action::CreateBatch;
    /// Record a test result.
    RecordsResults => Action::RecordResult;
    /// Review a result (signed).
    ReviewsResults => Action::Sign(Meaning::Reviewed);
    /// Open a deviation by hand.
    OpensDeviations => Action::OpenDeviation;
    /// Close a deviation (signed).
    ClosesDeviations => Action::Sign(Meaning::DeviationClosed);
    /// Certify a batch for release (signed).
    Releases => Action::Sign(Meaning::Released);
    /// Reject a batch (signed).
    Rejects => Action::Sign(Meaning::Rejected);
    /// Recall a batch (signed).
    Recalls => Action::Sign(Meaning::Recalled);
    /// Record a custody event.
    RecordsCustody => Action::RecordCustody;
    /// Read the audit trail.
    AuditReader => Action::ReadAuditTrail;
    /// Qualify an analyst for a test (signed).
    QualifiesAnalysts => Action::Sign(Meaning::QualificationGranted);
    /// Withdraw a qualification (signed).
    RevokesQualifications => Action::Sign(Meaning::QualificationRevoked);
    /// Register an instrument.
    RegistersInstruments => Action::RegisterInstruments;
    /// Record a calibration or take an instrument out of service.
    MaintainsInstruments => Action::MaintainInstruments;
    /// Return an instrument to service (signed).
    ReturnsInstruments => Action::Sign(Meaning::InstrumentReturned);
    /// Receive a material lot into quarantine.
    ReceivesMaterials => Action::ReceiveMaterials;
    /// Release a material lot (signed).
    ReleasesMaterials => Action::Sign(Meaning::MaterialReleased);
    /// Reject a material lot (signed).
    RejectsMaterials => Action::Sign(Meaning::MaterialRejected);
    /// Review a batch's audit trail (signed).
    ReviewsAuditTrails => Action::Sign(Meaning::AuditTrailReviewed);
}

/// A signed-in user allowed to do `R::ACTION`; anyone else gets 403.
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
            check(&user.actor.roles, R::ACTION)?;
            Ok(Authorized {
                user,
                _requirement: PhantomData,
            })
        })
    }
}
