//! The content-addressed file store.

use std::fs;
use std::io;

use switchboard_media::{InvalidMediaId, MediaId, MediaStore};

fn store() -> (tempfile::TempDir, MediaStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = MediaStore::open(dir.path().join("media")).expect("open the store");
    (dir, store)
}

// The SHA-256 of "hello", as `sha256sum` prints it.
const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

#[test]
fn a_file_is_named_by_the_sha256_of_its_content() {
    let (dir, store) = store();
    let id = store.put(b"hello").expect("put");
    assert_eq!(id.as_str(), HELLO);
    assert_eq!(id, MediaId::of_content(b"hello"));
    let expected = dir.path().join("media").join("2c").join(&HELLO[2..]);
    assert_eq!(store.path(&id), expected);
    assert_eq!(fs::read(&expected).expect("the file"), b"hello");
    assert_eq!(store.read(&id).expect("read"), b"hello");
    assert!(store.contains(&id).expect("contains"));
}

#[test]
fn storing_the_same_content_twice_is_one_file() {
    let (_dir, store) = store();
    let first = store.put(b"a picture").expect("put");
    let modified = fs::metadata(store.path(&first))
        .and_then(|m| m.modified())
        .expect("mtime");
    let second = store.put(b"a picture").expect("put again");
    assert_eq!(first, second);
    let shard = store.path(&first).parent().expect("a shard").to_owned();
    let entries: Vec<_> = fs::read_dir(&shard)
        .expect("list the shard")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    // One file, and no temporary file left behind.
    assert_eq!(entries.len(), 1, "{entries:?}");
    let again = fs::metadata(store.path(&first))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(modified, again, "the file was not rewritten");

    let other = store.put(b"another picture").expect("put another");
    assert_ne!(other, first);
    assert_eq!(store.read(&other).expect("read"), b"another picture");
    assert_eq!(store.read(&first).expect("read"), b"a picture");
}

#[test]
fn an_unknown_id_is_not_found() {
    let (_dir, store) = store();
    let id = MediaId::of_content(b"never stored");
    let error = store.read(&id).expect_err("nothing stored");
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
    assert!(!store.contains(&id).expect("contains"));
}

#[test]
fn the_store_survives_reopening() {
    let (dir, store) = store();
    let id = store.put(b"kept").expect("put");
    drop(store);
    let reopened = MediaStore::open(dir.path().join("media")).expect("reopen");
    assert_eq!(reopened.read(&id).expect("read"), b"kept");
}

#[test]
fn ids_are_exactly_64_lowercase_hex_characters() {
    assert_eq!(
        MediaId::parse(HELLO).map(|id| id.to_string()),
        Ok(HELLO.to_owned())
    );
    assert_eq!(
        HELLO.parse::<MediaId>().map(|id| id.to_string()),
        Ok(HELLO.to_owned())
    );
    let too_short = &HELLO[..63];
    let too_long = format!("{HELLO}0");
    let upper = HELLO.to_uppercase();
    let traversal = format!("../../../../etc/passwd{}", &HELLO[22..]);
    let slash = format!("2c/{}", &HELLO[3..]);
    let not_hex = format!("{}g", &HELLO[..63]);
    let unicode = format!("{}é", &HELLO[..62]);
    for bad in [
        "", too_short, &too_long, &upper, &traversal, &slash, &not_hex, &unicode, "..",
    ] {
        assert_eq!(MediaId::parse(bad), Err(InvalidMediaId), "{bad:?}");
    }
    assert_eq!(InvalidMediaId.code(), "invalid_media_id");
}
