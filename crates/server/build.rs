//! The portal's files are embedded at compile time; rebuild when any of them
//! is added, changed or removed (rust-embed tracks only the files it saw).

fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
