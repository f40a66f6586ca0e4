//! Signed, expiring tokens for the carrier's copy of a file.

use switchboard_media::{MediaId, SignatureError, UrlSigner};

const KEY: [u8; 32] = [7; 32];
const NOW: i64 = 1_780_000_000;

fn id(content: &[u8]) -> MediaId {
    MediaId::of_content(content)
}

#[test]
fn a_token_verifies_until_it_expires() {
    let signer = UrlSigner::new(KEY);
    let photo = id(b"photo");
    let token = signer.sign(&photo, NOW + 3600);
    assert_eq!(signer.verify(&photo, &token, NOW), Ok(()));
    assert_eq!(signer.verify(&photo, &token, NOW + 3599), Ok(()));
    assert_eq!(
        signer.verify(&photo, &token, NOW + 3600),
        Err(SignatureError::Expired)
    );
    assert_eq!(
        signer.verify(&photo, &token, NOW + 86_400),
        Err(SignatureError::Expired)
    );
    assert_eq!(SignatureError::Expired.code(), "media_link_expired");
}

#[test]
fn a_token_is_url_safe() {
    let token = UrlSigner::new(KEY).sign(&id(b"photo"), NOW);
    assert_eq!(token.len(), 54);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
}

#[test]
fn a_token_is_for_one_file_and_one_key() {
    let signer = UrlSigner::new(KEY);
    let token = signer.sign(&id(b"photo"), NOW + 60);
    assert_eq!(
        signer.verify(&id(b"another photo"), &token, NOW),
        Err(SignatureError::Mismatch)
    );
    let mut other_key = KEY;
    other_key[31] ^= 1;
    assert_eq!(
        UrlSigner::new(other_key).verify(&id(b"photo"), &token, NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_tampered_token_is_refused() {
    let signer = UrlSigner::new(KEY);
    let photo = id(b"photo");
    let token = signer.sign(&photo, NOW + 60);

    // Moving the expiry forward, with the MAC of the old one.
    let later = signer.sign(&photo, NOW + 1_000_000);
    let spliced = format!("{}{}", &later[..10], &token[10..]);
    assert_ne!(spliced, token);
    assert_eq!(
        signer.verify(&photo, &spliced, NOW + 120),
        Err(SignatureError::Mismatch)
    );

    // Every character changed in turn. The last one holds only two bits of
    // the token; 'A' and 'w' differ in both.
    for at in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'w' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        let verdict = signer.verify(&photo, &tampered, NOW);
        assert!(
            matches!(
                verdict,
                Err(SignatureError::Mismatch | SignatureError::Malformed)
            ),
            "changing character {at} gave {verdict:?}"
        );
    }
}

#[test]
fn a_malformed_token_is_refused() {
    let signer = UrlSigner::new(KEY);
    let photo = id(b"photo");
    let token = signer.sign(&photo, NOW + 60);
    for bad in [
        String::new(),
        "not a token".to_owned(),
        token[..53].to_owned(),
        format!("{token}A"),
        format!("{}+", &token[..53]),
        format!("{}=", &token[..53]),
        "é".repeat(27),
    ] {
        assert_eq!(
            signer.verify(&photo, &bad, NOW),
            Err(SignatureError::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn the_key_never_shows_in_debug() {
    let shown = format!("{:?}", UrlSigner::new(KEY));
    assert_eq!(shown, "UrlSigner { key: <redacted> }");
}
