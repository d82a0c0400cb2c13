//! The secret key for data at rest: from `TANDEM_SECRET_KEY`, or from the
//! key file, which the embedded default (SQLite) creates with mode 0600 on
//! first start. On PostgreSQL the key must be given: the database outlives
//! any one node's disk, and every node needs the same key.

use crate::settings::Secrets;
use anyhow::{bail, Context};
use std::io::Write;
use tandem_core::secret::SecretKey;

/// Loads the secret key, or creates the key file on first start when
/// `may_create` (the database is a SQLite file on this node's disk).
///
/// A PostgreSQL database is shared by nodes and outlives their disks: a key
/// file made on one node's disk (a container's, which a redeploy replaces)
/// would be lost with it, and with it every client secret stored under it,
/// and a second node would make a key of its own and be refused at start.
pub fn load(secrets: &Secrets, may_create: bool) -> anyhow::Result<SecretKey> {
    let key = load_current(secrets, may_create)?;
    if secrets.previous_key.trim().is_empty() {
        return Ok(key);
    }
    let previous = SecretKey::from_base64(&secrets.previous_key)
        .context("TANDEM_SECRETS__PREVIOUS_KEY (secrets.previous_key) is unusable")?;
    Ok(key.with_previous(previous))
}

/// The current key: given, read from the key file, or made (see [`load`]).
fn load_current(secrets: &Secrets, may_create: bool) -> anyhow::Result<SecretKey> {
    if !secrets.key.trim().is_empty() {
        return SecretKey::from_base64(&secrets.key).context("TANDEM_SECRET_KEY (secrets.key) is unusable");
    }
    let path = &secrets.key_file;
    // (`try_exists`: a file that cannot be looked at is read, and its error said.)
    if !matches!(path.try_exists(), Ok(false)) {
        warn_if_readable_by_others(path);
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the key file {}", path.display()))?;
        return SecretKey::from_base64(&text).with_context(|| format!("the key file {} is unusable", path.display()));
    }
    if !may_create {
        bail!(
            "no secret key: set TANDEM_SECRET_KEY (secrets.key, base64 of 32 bytes; `tandem secret-key generate` \
             prints a new one), or point TANDEM_SECRET_KEY_FILE (secrets.key_file) at a file that holds it; {} does \
             not exist. On PostgreSQL the key is never made at start: the database outlives this node's disk, and \
             every node must use the same key",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tandem_store::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (key, encoded) = SecretKey::generate()?;
    if encoded.is_empty() {
        bail!("generated an empty key");
    }
    // Written whole to a file of its own, then linked into place: a crash
    // or a full disk midway leaves no empty key file behind (which would
    // stop every later start), and of two processes starting at once the
    // second finds the first one's complete key.
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        tandem_core::new_id()
    ));
    let written = write_new(&tmp, encoded.as_bytes());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // The new name is durable once its directory is: a crash just
            // after the start would otherwise lose the file (and with it the
            // key of everything the server then stored) on some filesystems.
            #[cfg(unix)]
            if let Some(dir) =
                path.parent().map(|d| if d.as_os_str().is_empty() { std::path::Path::new(".") } else { d })
            {
                if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not sync the key file's directory");
                }
            }
            tracing::info!(path = %path.display(), "created a new secret key file; back it up: secrets stored in the database cannot be read without it");
            Ok(key)
        }
        // Another process created it meanwhile: its key is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the key file {}", path.display()))?;
            SecretKey::from_base64(&text).with_context(|| format!("the key file {} is unusable", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create the key file {}", path.display())),
    }
}

/// Creates `path` (mode 0600), writes `bytes` and syncs them.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the secret key file is readable by other users; chmod 600 it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_at_once_end_with_one_key_and_no_partial_file() {
        // Its threads start aws-lc, which may read the environment while a
        // settings test sets a variable.
        let _env = crate::settings::env_lock();
        let dir = std::env::temp_dir().join(format!("tandem-key-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let secrets =
            Secrets { key: String::new(), key_file: dir.join("data/secret.key"), previous_key: String::new() };
        let keys: Vec<SecretKey> = (0..6)
            .map(|_| {
                let s = secrets.clone();
                std::thread::spawn(move || load(&s, true).unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        // Every caller holds the key in the file: what one seals, the others open.
        let on_disk = load(&secrets, true).unwrap();
        let sealed = on_disk.encrypt("probe", "ctx");
        for k in &keys {
            assert_eq!(k.decrypt(&sealed, "ctx").unwrap().0, "probe");
        }
        let left: Vec<_> = std::fs::read_dir(dir.join("data")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("secret.key")], "no temporary file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_file_is_made_only_where_allowed_and_an_existing_one_is_always_read() {
        // aws-lc may read the environment while a settings test sets a variable.
        let _env = crate::settings::env_lock();
        let dir = std::env::temp_dir().join(format!("tandem-key-create-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let secrets = Secrets { key: String::new(), key_file: dir.join("secret.key"), previous_key: String::new() };
        let refused = load(&secrets, false).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(refused.contains("TANDEM_SECRET_KEY") && refused.contains("secret-key generate"), "{refused}");
        assert!(!secrets.key_file.exists(), "nothing is written when creating is not allowed");
        let made = load(&secrets, true).unwrap();
        let sealed = made.encrypt("probe", "ctx");
        assert_eq!(load(&secrets, false).unwrap().decrypt(&sealed, "ctx").unwrap().0, "probe");
        let (_, encoded) = SecretKey::generate().unwrap();
        let given = Secrets { key: encoded, key_file: dir.join("absent.key"), previous_key: String::new() };
        assert!(load(&given, false).is_ok(), "a key given in the settings needs no file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
