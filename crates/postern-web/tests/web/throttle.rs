//! Sign-in throttling: after five failures for one account from one address within 15
//! minutes, sign-in answers 429 with `Retry-After`, even with the right password, while the
//! same account from elsewhere still signs in.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use postern_testkit::both;

use crate::support::{PASSWORD, Reply, Web, set_cookie_pair, urlencode};

async fn sign_in(web: &Web, from: &str, username: &str, password: &str) -> Reply {
    let form = web.get("/login", None).await;
    let login_cookie = set_cookie_pair(&form, "postern_login").unwrap();
    let csrf = form.csrf();
    let peer: SocketAddr = from.parse().unwrap();
    let request = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::COOKIE, login_cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .extension(ConnectInfo(peer))
        .body(Body::from(urlencode(&[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
        ])))
        .unwrap();
    web.call(request).await
}

both!(
    repeated_failed_sign_ins_are_refused_with_retry_after,
    |db| {
        let web = Web::new(db).await?;
        web.user("alice", false).await?;
        web.user("bob", false).await?;
        let attacker = "192.0.2.7:40000";
        for attempt in 0..5 {
            let reply = sign_in(&web, attacker, "alice", "wrong password").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        }
        // Even the right password is refused now: nothing is verified while limited.
        let limited = sign_in(&web, attacker, "Alice", PASSWORD).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = limited.header("retry-after").parse()?;
        assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
        assert!(
            limited.body.contains("Too many failed sign-ins"),
            "{}",
            limited.body
        );
        assert!(set_cookie_pair(&limited, "postern_session").is_none());

        // Another account from that address, and the account from elsewhere, still sign in.
        let bob = sign_in(&web, attacker, "bob", PASSWORD).await;
        assert_eq!(bob.status, StatusCode::SEE_OTHER);
        let elsewhere = sign_in(&web, "198.51.100.3:50000", "alice", PASSWORD).await;
        assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
        Ok(())
    }
);

both!(one_address_guessing_many_accounts_is_refused, |db| {
    let web = Web::new(db).await?;
    web.user("alice", false).await?;
    let sprayer = "[2001:db8::9]:40000";
    for n in 0..20 {
        let reply = sign_in(&web, sprayer, &format!("user{n}"), "guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let limited = sign_in(&web, sprayer, "alice", PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!limited.header("retry-after").is_empty());
    let other = sign_in(&web, "[2001:db8::10]:40000", "alice", PASSWORD).await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
    Ok(())
});
