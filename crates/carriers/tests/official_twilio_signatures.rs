//! Signatures made by Twilio's official Python package verify here, and
//! tampered ones do not. `scripts/test` installs the package into a virtual
//! environment and names its interpreter in `SWITCHBOARD_TEST_PYTHON`.

use std::io::Write;
use std::process::{Command, Stdio};
use switchboard_carriers::SignatureError;
use switchboard_carriers::twilio::verify;

const SIGN: &str = r#"
import json, sys
from twilio.request_validator import RequestValidator
request = json.load(sys.stdin)
print(RequestValidator(request["token"]).compute_signature(request["url"], request["params"]))
"#;

/// The signature Twilio's `RequestValidator` computes.
fn official_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let python = std::env::var("SWITCHBOARD_TEST_PYTHON").expect(
        "SWITCHBOARD_TEST_PYTHON must name a Python with the twilio package; scripts/test sets it",
    );
    let params: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let request = serde_json::json!({"token": token, "url": url, "params": params});
    let mut child = Command::new(python)
        .args(["-c", SIGN])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("python finished");
    assert!(out.status.success(), "the twilio package failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const URL: &str = "https://pbx.example.com/webhooks/twilio/7/messages";
const PARAMS: &[(&str, &str)] = &[
    ("MessageSid", "SM5f2a0c3e1b9d4e7fa6c8b2d1e0f9a8b7"),
    ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
    ("From", "+14155552671"),
    ("To", "+14155550100"),
    ("Body", "Héllo — can you call me? 👋"),
    ("NumMedia", "1"),
    (
        "MediaUrl0",
        "https://api.twilio.com/2010-04-01/Accounts/AC01/Messages/MM01/Media/ME01",
    ),
    ("MediaContentType0", "image/jpeg"),
];

#[test]
fn a_signature_from_the_official_package_is_accepted() {
    let sig = official_signature("auth-token-1", URL, PARAMS);
    assert_eq!(
        verify("auth-token-1", URL, &owned(PARAMS), Some(&sig)),
        Ok(())
    );
}

#[test]
fn tampered_url_body_or_signature_and_a_missing_header_are_refused() {
    let sig = official_signature("auth-token-1", URL, PARAMS);
    let other_url = "https://pbx.example.com/webhooks/twilio/8/messages";
    assert_eq!(
        verify("auth-token-1", other_url, &owned(PARAMS), Some(&sig)),
        Err(SignatureError::Mismatch)
    );
    let mut body = owned(PARAMS);
    body[4].1 = "Hello — can you call me? 👋".into();
    assert_eq!(
        verify("auth-token-1", URL, &body, Some(&sig)),
        Err(SignatureError::Mismatch)
    );
    let mut forged = sig.clone().into_bytes();
    forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        verify("auth-token-1", URL, &owned(PARAMS), Some(&forged)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify("auth-token-1", URL, &owned(PARAMS), None),
        Err(SignatureError::Missing)
    );
}
