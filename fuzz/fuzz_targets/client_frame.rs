//! The WebSocket client frame parser, exactly as a connection calls it on
//! every text frame. Any text either reads as a frame that writes back to
//! the same frame, or is refused with an error the connection can put in a
//! well-formed `error` frame; it never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::ws::frames::{ClientFrame, error_frame, parse_client_frame};
use switchboard_domain::{IdempotencyKey, MessageText};

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are valid UTF-8 by the time they are read; the
    // transport refuses the others.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_frame(text) {
        Ok(frame) => {
            let written =
                serde_json::to_string(&frame).expect("a frame that was read can be written");
            let again = parse_client_frame(&written)
                .unwrap_or_else(|e| panic!("{written} does not read back: {e}"));
            assert_eq!(again, frame, "{written}");
            if let ClientFrame::Send(send) = &frame {
                // What the send path parses next (messaging::post_message).
                if let Ok(parsed) = MessageText::parse(&send.text) {
                    assert_eq!(parsed.as_str(), send.text, "message text is kept as typed");
                    assert_eq!(MessageText::parse(parsed.as_str()).as_ref(), Ok(&parsed));
                }
                if let Ok(key) = IdempotencyKey::parse(&send.idempotency_key) {
                    assert_eq!(key.as_str(), send.idempotency_key);
                }
            }
        }
        Err(e) => {
            // The connection answers an unreadable frame with this.
            let reply = error_frame("bad_request", &format!("unreadable frame: {e}"), None);
            let reply: serde_json::Value =
                serde_json::from_str(&reply).expect("an error frame is JSON");
            assert_eq!(reply["type"], "error");
            assert_eq!(reply["data"]["code"], "bad_request");
            assert!(reply["data"]["message"].is_string());
        }
    }
});
