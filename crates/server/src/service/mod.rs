//! Use cases: what a request means, whichever door it came in by. The REST
//! handlers and the WebSocket frame handlers parse, call a function here and
//! map its result; the rules live in the domain and the state in the store.
//! Nothing here knows HTTP or WebSocket frames.

pub mod carriers;
pub mod directory;
pub mod inbound;
pub mod messaging;
pub mod sessions;
pub mod sms;

use crate::auth::PasswordError;
use switchboard_domain::{InvalidValue, MembershipError};
use switchboard_store::StoreError;

/// Why a use case did not happen. Expected outcomes are variants the
/// callers map to answers; `Store` and `Passwords` carry causes to log.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Passwords(#[from] PasswordError),
    /// Sign-in with an unknown organization, extension or a wrong password.
    #[error("the organization, extension or password is not right")]
    InvalidCredentials,
    /// Too many failed sign-ins; try again after this many seconds.
    #[error("too many failed attempts")]
    RateLimited { retry_after_secs: u64 },
    /// Allowed to ask, but not this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A request that breaks a rule of the organization.
    #[error("{0}")]
    Refused(&'static str),
    /// The organization already runs as many jobs as it may; one of them.
    #[error("an import is already running")]
    JobRunning { job: String },
    /// Our fault; the cause was logged where it happened.
    #[error("internal error")]
    Internal,
}

pub type ServiceResult<T> = Result<T, ServiceError>;
