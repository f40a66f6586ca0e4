//! Sign-in and sign-out.

use super::extract::Body;
use crate::app::App;
use crate::auth::{self, Authed, CSRF_COOKIE, SESSION_COOKIE};
use crate::http::error::{ApiResult, ErrorBody};
use crate::service::sessions::{self, Credentials};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use switchboard_domain::Timestamp;
use switchboard_store::{Extension, Org};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The organization's short name, e.g. "demo".
    pub(super) organization: String,
    /// Extension number, e.g. "101".
    pub(super) extension: String,
    pub(super) password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// Bearer token for API clients. Browsers use the cookie instead.
    token: String,
    /// Send as `X-CSRF-Token` on cookie-authenticated changes.
    csrf_token: String,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
    #[schema(value_type = super::openapi::Extension)]
    extension: Extension,
    #[schema(value_type = super::openapi::Organization)]
    organization: Org,
}

/// Whether the portal's scripts may read a cookie.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    /// `HttpOnly`: the session token, which scripts never need.
    Hidden,
    /// The CSRF token, which the portal sends back as a header.
    Readable,
}

/// Whether cookies travel over HTTPS only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Any,
    HttpsOnly,
}

fn secure(app: &App) -> Transport {
    if app.config.secure_cookies {
        Transport::HttpsOnly
    } else {
        Transport::Any
    }
}

fn cookie(
    name: &str,
    value: &str,
    max_age_secs: u64,
    script: Script,
    transport: Transport,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age_secs}");
    if script == Script::Hidden {
        c.push_str("; HttpOnly");
    }
    if transport == Transport::HttpsOnly {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// Signs in with organization, extension number and password.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "session",
    request_body = SignIn,
    responses(
        (status = 200, body = SignedIn, description = "Signed in; the session and CSRF cookies are set"),
        (status = 401, body = ErrorBody, description = "`invalid_credentials`: the organization, extension or password is not right"),
        (status = 403, body = ErrorBody, description = "`forbidden`: the extension is disabled"),
        (status = 429, body = ErrorBody, description = "`rate_limited`: too many failed sign-ins; wait as Retry-After says",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
pub async fn sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(req): Body<SignIn>,
) -> ApiResult<Response> {
    let credentials = Credentials {
        organization: &req.organization,
        extension: &req.extension,
        password: &req.password,
    };
    let signed_in = sessions::sign_in(&app, credentials, peer.ip()).await?;
    let token = signed_in.token;
    let csrf = auth::csrf_token(&token);
    let ttl = app.config.session_ttl.as_secs();
    let secure = secure(&app);
    let mut headers = HeaderMap::new();
    for c in [
        cookie(SESSION_COOKIE, &token, ttl, Script::Hidden, secure),
        cookie(CSRF_COOKIE, &csrf, ttl, Script::Readable, secure),
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
            expires_at: signed_in.expires_at,
            extension: signed_in.extension,
            organization: signed_in.org,
        }),
    )
        .into_response())
}

/// Ends this session (cookie or bearer) and clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "session",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Signed out; the cookies are cleared")))]
pub async fn sign_out(State(app): State<Arc<App>>, auth: Authed) -> ApiResult<Response> {
    sessions::sign_out(&app, &auth).await?;
    let secure = secure(&app);
    let mut headers = HeaderMap::new();
    for c in [
        cookie(SESSION_COOKIE, "", 0, Script::Hidden, secure),
        cookie(CSRF_COOKIE, "", 0, Script::Readable, secure),
    ]
    .into_iter()
    .flatten()
    {
        headers.append(header::SET_COOKIE, c);
    }
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}
