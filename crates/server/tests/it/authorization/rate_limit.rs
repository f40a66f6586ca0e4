//! Guessing passwords is braked, per account.

use super::set_cookies;
use crate::common::{PASSWORD, Server, assert_error};

#[tokio::test]
async fn five_wrong_passwords_block_the_account() {
    let server = Server::start();
    for attempt in 1..=5 {
        let a = server
            .sign_in_answer("demo", "102", &format!("wrong password {attempt}"))
            .await;
        assert_error(
            &a,
            401,
            "invalid_credentials",
            &format!("wrong attempt {attempt}"),
        );
    }
    let blocked = server.sign_in_answer("demo", "102", PASSWORD).await;
    assert_error(
        &blocked,
        429,
        "rate_limited",
        "sixth attempt with the right password",
    );
    let retry_after: u64 = blocked
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in seconds: {:?}", blocked.headers));
    assert!(retry_after >= 1, "{retry_after}");
    assert!(set_cookies(&blocked).is_empty());

    // The brake is per account: colleagues sign in as usual.
    assert_eq!(
        server.sign_in_answer("demo", "103", PASSWORD).await.status,
        200
    );
    // A wrong organization or unknown extension counts as a failure too, and
    // answers like a wrong password.
    let unknown = server.sign_in_answer("demo", "199", PASSWORD).await;
    assert_error(&unknown, 401, "invalid_credentials", "unknown extension");
    let unknown = server.sign_in_answer("nowhere", "101", PASSWORD).await;
    assert_error(&unknown, 401, "invalid_credentials", "unknown organization");
}
