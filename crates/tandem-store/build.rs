//! `embed_migrations!` reads the migration folders at compile time, but cargo
//! only knows to rebuild this crate when its sources change: a migration
//! added without touching a source file would be left out of the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
