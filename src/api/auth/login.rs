//! The login endpoints and the answers to requests without a login.
//!
//! - `POST /api/login` `{"username", "password"}` (JSON): 200 `{"user"}` and a `SID`
//!   cookie; 401 when wrong; 429 while the address is banned.
//! - `POST /api/logout`: 204, the session ends and the cookie is cleared.
//! - `POST /api/v2/auth/login` (form `username`, `password`), as qBittorrent answers it:
//!   200 `Ok.` with the cookie, 200 `Fails.`, 403 with qBittorrent's text when banned.
//! - `POST /api/v2/auth/logout`: 200, empty.
//! - `GET /api/session`: `{"required", "user"}`: whether a login is needed and who is
//!   logged in (`null`: nobody), for the UI.
//!
//! The cookie is `SID=<token>; HttpOnly; SameSite=Strict; Path=/`, plus `Secure` under
//! TLS; qBittorrent's name, so one cookie serves the native and the qBittorrent API.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::{Auth, Verdict};
use crate::api::ApiError;

/// qBittorrent's answer to a banned address (`APIErrorType::AccessDenied`, 403).
pub const QBT_BANNED: &str =
    "Your IP address has been banned after too many failed authentication attempts.";

/// A login form or JSON body.
#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn cookie(auth: &Auth, token: &str, max_age_zero: bool) -> HeaderValue {
    let mut c = format!("SID={token}; HttpOnly; SameSite=Strict; Path=/");
    if max_age_zero {
        c.push_str("; Max-Age=0");
    }
    if auth.tls() {
        c.push_str("; Secure");
    }
    // Token and attributes are ASCII.
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("SID=; Max-Age=0"))
}

/// `POST /api/login`.
pub async fn native_login(auth: &Auth, ip: IpAddr, req: Request) -> Response {
    if let Err(e) = crate::api::require_json(req.headers()) {
        return e.into_response();
    }
    let creds = match Json::<Credentials>::from_request(req, &()).await {
        Ok(Json(c)) => c,
        Err(e) => {
            return ApiError::bad_request(format!(
                "send {{\"username\": ..., \"password\": ...}}: {}",
                e.body_text()
            ))
            .into_response()
        }
    };
    match auth.verify(ip, &creds.username, &creds.password).await {
        Verdict::Ok => {
            let token = auth.start_session();
            (
                [(header::SET_COOKIE, cookie(auth, &token, false))],
                Json(json!({"user": auth.user()})),
            )
                .into_response()
        }
        Verdict::Wrong => {
            ApiError::new(StatusCode::UNAUTHORIZED, "wrong user name or password").into_response()
        }
        Verdict::Banned(d) => banned(d),
    }
}

/// `POST /api/v2/auth/login`, answered as qBittorrent does.
pub async fn qbt_login(auth: &Auth, ip: IpAddr, req: Request) -> Response {
    if auth.session_of(req.headers()).is_some() {
        return "Ok.".into_response();
    }
    let creds = match Form::<Credentials>::from_request(req, &()).await {
        Ok(Form(c)) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    match auth.verify(ip, &creds.username, &creds.password).await {
        Verdict::Ok => {
            let token = auth.start_session();
            ([(header::SET_COOKIE, cookie(auth, &token, false))], "Ok.").into_response()
        }
        Verdict::Wrong => "Fails.".into_response(),
        Verdict::Banned(_) => (StatusCode::FORBIDDEN, QBT_BANNED).into_response(),
    }
}

/// `POST /api/logout` (204) and `/api/v2/auth/logout` (200, empty, as qBittorrent).
pub fn logout(auth: &Auth, req: &Request, qbt: bool) -> Response {
    auth.end_session(req.headers());
    let status = if qbt {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    (status, [(header::SET_COOKIE, cookie(auth, "", true))]).into_response()
}

/// `GET /api/session`.
pub fn status(auth: &Auth, req: &Request) -> Response {
    let required = auth.required();
    let user = (required && auth.session_of(req.headers()).is_some()).then(|| auth.user());
    Json(json!({"required": required, "user": user})).into_response()
}

/// 429 for an address banned after too many failed logins.
pub fn banned(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        Json(json!({"error": format!(
            "too many failed logins from this address; try again in {} minutes",
            secs.div_ceil(60)
        )})),
    )
        .into_response()
}

/// The answer to a request without a valid session or credentials, in the manner of
/// the API it was for.
pub fn refused(path: &str) -> Response {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if under("/api/v2") {
        // qBittorrent's answer to a request without a session.
        (StatusCode::FORBIDDEN, "Forbidden").into_response()
    } else if under("/transmission") {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"Transmission\"")],
            "401: Unauthorized",
        )
            .into_response()
    } else if under("/api") {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "log in first: POST /api/login with {\"username\", \"password\"}, \
             or send HTTP Basic credentials",
        )
        .into_response()
    } else if path == "/" || path == "/index.html" {
        Redirect::to("/login").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "log in first at /login, or send HTTP Basic credentials",
        )
            .into_response()
    }
}
