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

#[tokio::test]
async fn a_hundred_concurrent_guesses_get_no_more_than_five_checked() {
    let server = Server::start();
    let guesses = (0..100).map(|i| {
        let server = &server;
        async move {
            server
                .sign_in_answer("demo", "102", &format!("wrong password {i}"))
                .await
        }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|a| a.status == 401).count();
    let braked = answers.iter().filter(|a| a.status == 429).count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + braked, 100, "every other guess is braked");
    for a in &answers {
        if a.status == 429 {
            assert_error(a, 429, "rate_limited", "a braked guess");
        } else {
            assert_error(a, 401, "invalid_credentials", "a checked guess");
        }
    }
    let blocked = server.sign_in_answer("demo", "102", PASSWORD).await;
    assert_error(&blocked, 429, "rate_limited", "the right password after");
}
