//! Sign-in and sign-out.

use super::Body;
use crate::app::App;
use crate::auth::{self, Authed, CSRF_COOKIE, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use switchboard_domain::{ExtensionNumber, OrgSlug, Password, Timestamp};
use switchboard_store::{Extension, Org};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The organization's short name, e.g. "demo".
    organization: String,
    /// Extension number, e.g. "101".
    extension: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// Bearer token for API clients. Browsers use the cookie instead.
    token: String,
    /// Send as `X-CSRF-Token` on cookie-authenticated changes.
    csrf_token: String,
    #[schema(value_type = String)]
    expires_at: Timestamp,
    #[schema(value_type = Object)]
    extension: Extension,
    #[schema(value_type = Object)]
    organization: Org,
}

fn cookie(
    name: &str,
    value: &str,
    max_age_secs: u64,
    http_only: bool,
    secure: bool,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age_secs}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// Signs in with organization, extension number and password.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "session",
    request_body = SignIn,
    responses(
        (status = 200, body = SignedIn, description = "Signed in; cookies set"),
        (status = 401, body = ErrorBody, description = "invalid_credentials"),
        (status = 429, body = ErrorBody, description = "rate_limited, with Retry-After"),
    ))]
pub async fn sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(req): Body<SignIn>,
) -> ApiResult<Response> {
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the organization, extension or password is not right",
        )
    };
    let slug = OrgSlug::parse(&req.organization).map_err(|_| invalid())?;
    let number = ExtensionNumber::parse(&req.extension).map_err(|_| invalid())?;
    let password = Password::parse_attempt(&req.password).map_err(|_| invalid())?;
    let account = format!("{slug}/{number}");
    let address = peer.ip();
    if let Err(wait) = app.limiter.check(&account, address, Instant::now()) {
        return Err(ApiError::rate_limited(wait));
    }

    let org = app.store.org_by_slug(&slug).await?;
    let found = match &org {
        Some(org) => app.store.extension_for_sign_in(org.id, &number).await?,
        None => None,
    };
    let stored = found.as_ref().map(|(_, hash)| hash.clone());
    let verified = app.passwords.verify(password, stored).await?;
    let (Some(org), Some((extension, _)), true) = (org, found, verified) else {
        app.limiter.failed(&account, address, Instant::now());
        tracing::info!(%account, %address, "failed sign-in");
        return Err(invalid());
    };
    if extension.disabled {
        app.limiter.failed(&account, address, Instant::now());
        return Err(ApiError::forbidden(
            "this extension is disabled; ask an administrator",
        ));
    }
    app.limiter.succeeded(&account);

    let token = auth::new_token().map_err(|e| {
        tracing::error!(error = %e, "cannot make a session token");
        ApiError::internal()
    })?;
    let now = app.clock.now();
    let expires_at = now.saturating_add(app.config.session_ttl);
    app.store
        .create_session(auth::token_hash(&token), extension.id, now, expires_at)
        .await?;
    tracing::info!(extension = %extension.id, org = %org.id, "signed in");

    let csrf = auth::csrf_token(&token);
    let ttl = app.config.session_ttl.as_secs();
    let secure = app.config.secure_cookies;
    let mut headers = HeaderMap::new();
    for c in [
        cookie(SESSION_COOKIE, &token, ttl, true, secure),
        cookie(CSRF_COOKIE, &csrf, ttl, false, secure),
    ]
    .into_iter()
    .flatten()
    {
        headers.append(header::SET_COOKIE, c);
    }
    Ok((
        headers,
        Json(SignedIn {
            token,
            csrf_token: csrf,
            expires_at,
            extension,
            organization: org,
        }),
    )
        .into_response())
}

/// Ends this session (cookie or bearer) and clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "session",
    responses((status = 204, description = "Signed out"), (status = 401, body = ErrorBody)))]
pub async fn sign_out(State(app): State<Arc<App>>, auth: Authed) -> ApiResult<Response> {
    app.store.revoke_session(&auth.token_hash).await?;
    app.session_revoked(&auth);
    let mut headers = HeaderMap::new();
    for c in [
        cookie(SESSION_COOKIE, "", 0, true, app.config.secure_cookies),
        cookie(CSRF_COOKIE, "", 0, false, app.config.secure_cookies),
    ]
    .into_iter()
    .flatten()
    {
        headers.append(header::SET_COOKIE, c);
    }
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}
