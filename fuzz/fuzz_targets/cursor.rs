//! Event cursors and the replay gate. The input is lines of text: each line
//! is offered to `Cursor::parse`; of the lines that parse, the first is the
//! cursor a client resumes from and the others arrive in order, as replayed
//! and live events interleave on a connection.
//!
//! Checked: a cursor that parses is non-negative, prints in the form it
//! reads back from (as text, as JSON, in `ready` and `resync` frames); the
//! gate admits exactly the cursors above every cursor before them, so what it
//! lets through strictly increases and nothing newer is held back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::ws::frames::{ready_frame, resync_frame};
use switchboard_domain::{Cursor, ReplayGate};

fn check_text(line: &str) -> Option<Cursor> {
    let Some(cursor) = Cursor::parse(line) else {
        // Refused as text, refused in JSON too.
        let json = serde_json::to_string(line).expect("a string is JSON");
        assert!(serde_json::from_str::<Cursor>(&json).is_err(), "{json}");
        return None;
    };
    assert!(cursor >= Cursor::START, "{line:?} parsed as {cursor:?}");
    let shown = cursor.to_string();
    assert_eq!(Cursor::parse(&shown), Some(cursor));
    let canonical =
        line.bytes().all(|b| b.is_ascii_digit()) && (line == "0" || !line.starts_with('0'));
    if canonical {
        assert_eq!(
            shown, line,
            "a cursor in its own form prints as it was given"
        );
    }
    let json = serde_json::to_string(&cursor).expect("a cursor is JSON");
    assert_eq!(
        json,
        format!("\"{shown}\""),
        "clients see cursors as decimal strings"
    );
    assert_eq!(serde_json::from_str::<Cursor>(&json).ok(), Some(cursor));
    for frame in [ready_frame(cursor), resync_frame(cursor)] {
        let frame: serde_json::Value = serde_json::from_str(&frame).expect("a frame is JSON");
        let carried = frame["cursor"].as_str().and_then(Cursor::parse);
        assert_eq!(carried, Some(cursor), "{frame}");
    }
    Some(cursor)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let cursors: Vec<Cursor> = text.split('\n').filter_map(check_text).collect();
    let Some((&from, arriving)) = cursors.split_first() else {
        return;
    };
    let mut gate = ReplayGate::new(from);
    let mut newest = from;
    let mut admitted = Vec::new();
    for &cursor in arriving {
        let let_through = gate.admit(cursor);
        assert_eq!(
            let_through,
            cursor > newest,
            "{cursor} after {newest}: an event is sent exactly when it is newer than all before it"
        );
        if let_through {
            admitted.push(cursor);
            newest = cursor;
        }
        assert_eq!(gate.last(), newest);
    }
    assert!(admitted.windows(2).all(|w| w[0] < w[1]), "{admitted:?}");
    assert!(admitted.first().is_none_or(|&c| c > from));
});
