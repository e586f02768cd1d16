//! The login layer over a small router, requests sent in memory.

use super::*;
use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceExt;

fn app(auth: &Auth) -> Router {
    Router::new()
        .route("/api/node", get(|| async { "node" }))
        .route("/api/torrents", post(|| async { "added" }))
        .route("/", get(|| async { "index" }))
        .route("/login", get(|| async { "login page" }))
        .route("/assets/:v/*p", get(|| async { "asset" }))
        .layer(axum::middleware::from_fn_with_state(auth.clone(), layer))
}

fn with_password(pw: &str) -> Auth {
    Auth::new(AuthSettings {
        user: "admin".into(),
        password_hash: Some(password::hash(pw).unwrap()),
        ..AuthSettings::default()
    })
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &Router, req: HttpRequest<Body>) -> Reply {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get_req(path: &str, headers: &[(&str, &str)]) -> HttpRequest<Body> {
    let mut b = HttpRequest::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

fn from(ip: [u8; 4], mut req: HttpRequest<Body>) -> HttpRequest<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    req
}

fn login_req(user: &str, pw: &str) -> HttpRequest<Body> {
    HttpRequest::post("/api/login")
        .header("content-type", "application/json")
        .body(Body::from(
            serde_json::json!({"username": user, "password": pw}).to_string(),
        ))
        .unwrap()
}

fn sid(r: &Reply) -> String {
    let c = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"));
    c.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn without_a_password_everything_is_open() {
    let auth = Auth::new(AuthSettings {
        user: "admin".into(),
        ..AuthSettings::default()
    });
    let app = app(&auth);
    assert_eq!(send(&app, get_req("/api/node", &[])).await.body, "node");
    assert_eq!(send(&app, get_req("/", &[])).await.body, "index");
    let s = send(&app, get_req("/api/session", &[])).await;
    assert_eq!(s.body, r#"{"required":false,"user":null}"#);
}

#[tokio::test]
async fn every_kind_of_path_is_refused_in_its_apis_manner() {
    let auth = with_password("pw");
    let app = app(&auth);
    let r = send(&app, get_req("/api/node", &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("\"error\""), "{}", r.body);
    // Paths with no route are refused too: the layer runs before routing.
    let r = send(&app, get_req("/api/v2/app/version", &[])).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::FORBIDDEN, "Forbidden")
    );
    let r = send(&app, get_req("/transmission/rpc", &[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"Transmission\""
    );
    let r = send(&app, get_req("/", &[])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/login");
    assert_eq!(
        send(&app, get_req("/metrics", &[])).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The login page and its assets are public.
    assert_eq!(send(&app, get_req("/login", &[])).await.body, "login page");
    assert_eq!(
        send(&app, get_req("/assets/1/app.css", &[])).await.body,
        "asset"
    );
    // A made-up cookie is no session.
    let r = send(
        &app,
        get_req(
            "/api/node",
            &[("cookie", "SID=0123456789abcdef0123456789abcdef")],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_gives_a_session_until_logout() {
    let auth = with_password("s3cret");
    let app = app(&auth);
    let r = send(&app, login_req("admin", "s3cret")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Secure"));
    let cookie = sid(&r);
    let h = [("cookie", cookie.as_str())];
    assert_eq!(send(&app, get_req("/api/node", &h)).await.body, "node");
    assert_eq!(send(&app, get_req("/", &h)).await.body, "index");
    let s = send(&app, get_req("/api/session", &h)).await;
    assert_eq!(s.body, r#"{"required":true,"user":"admin"}"#);
    let req = HttpRequest::post("/api/logout")
        .header("cookie", cookie.as_str())
        .body(Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = send(&app, get_req("/api/node", &h)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_get_401_then_the_address_429() {
    let auth = with_password("right");
    let app = app(&auth);
    for _ in 0..throttle::MAX_FAILURES {
        let r = send(&app, from([10, 0, 0, 1], login_req("admin", "wrong"))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Banned: even the right password is not checked.
    let r = send(&app, from([10, 0, 0, 1], login_req("admin", "right"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    // The right user name matters too, and other addresses are not banned.
    let r = send(&app, from([10, 0, 0, 2], login_req("root", "right"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, from([10, 0, 0, 2], login_req("admin", "right"))).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn qbittorrent_login_answers_as_qbittorrent() {
    let auth = with_password("pw");
    let app = app(&auth);
    let form = |body: &'static str| {
        from(
            [10, 0, 0, 3],
            HttpRequest::post("/api/v2/auth/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let r = send(&app, form("username=admin&password=pw")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "Ok."));
    let cookie = sid(&r);
    // The same cookie opens the native API.
    let r = send(&app, get_req("/api/node", &[("cookie", cookie.as_str())])).await;
    assert_eq!(r.body, "node");
    for _ in 0..throttle::MAX_FAILURES {
        let r = send(&app, form("username=admin&password=nope")).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "Fails."));
    }
    let r = send(&app, form("username=admin&password=pw")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, login::QBT_BANNED);
}

#[tokio::test]
async fn basic_credentials_pass_and_wrong_ones_count() {
    let auth = with_password("pw");
    let app = app(&auth);
    let b64 = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let good = b64("admin:pw");
    for _ in 0..3 {
        let r = send(
            &app,
            get_req("/api/node", &[("authorization", good.as_str())]),
        )
        .await;
        assert_eq!(r.body, "node");
    }
    let bad = b64("admin:nope");
    for _ in 0..throttle::MAX_FAILURES {
        let r = send(
            &app,
            from(
                [10, 0, 0, 4],
                get_req("/transmission/rpc", &[("authorization", bad.as_str())]),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = send(
        &app,
        from(
            [10, 0, 0, 4],
            get_req("/api/node", &[("authorization", bad.as_str())]),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    for junk in ["Basic !!!", "Bearer x", "Basic YWRtaW4="] {
        let r = send(&app, get_req("/api/node", &[("authorization", junk)])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{junk}");
    }
}

#[tokio::test]
async fn a_new_password_in_the_config_file_ends_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(AuthSettings {
        user: "admin".into(),
        password_hash: Some(password::hash("old").unwrap()),
        data_dir: Some(dir.path().to_path_buf()),
        ..AuthSettings::default()
    });
    let app = app(&auth);
    let cookie = sid(&send(&app, login_req("admin", "old")).await);
    std::fs::write(
        dir.path().join("config.toml"),
        format!("web_password = '{}'\n", password::hash("new").unwrap()),
    )
    .unwrap();
    // Logins re-read the file at once.
    assert_eq!(
        send(&app, login_req("admin", "old")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(&app, get_req("/api/node", &[("cookie", cookie.as_str())])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&app, login_req("admin", "new")).await.status,
        StatusCode::OK
    );
}

#[test]
fn cookies_and_basic_values_parse() {
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, "a=1; SID=abc ;b=2".parse().unwrap());
    assert_eq!(sid_cookie(&h).as_deref(), Some("abc"));
    assert_eq!(
        basic_credentials("basic YWRtaW46cDpx"),
        Some(("admin".into(), "p:q".into()))
    );
    assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
}
