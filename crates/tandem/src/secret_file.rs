//! The secret key for data at rest: from `TANDEM_SECRET_KEY`, or from the
//! key file, which is created with mode 0600 on first start.

use crate::settings::Secrets;
use anyhow::{bail, Context};
use std::io::Write;
use tandem_core::secret::SecretKey;

/// Loads (or on first start creates) the secret key.
pub fn load(secrets: &Secrets) -> anyhow::Result<SecretKey> {
    if !secrets.key.trim().is_empty() {
        return SecretKey::from_base64(&secrets.key).context("TANDEM_SECRET_KEY (secrets.key) is unusable");
    }
    let path = &secrets.key_file;
    if path.exists() {
        warn_if_readable_by_others(path);
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the key file {}", path.display()))?;
        return SecretKey::from_base64(&text).with_context(|| format!("the key file {} is unusable", path.display()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (key, encoded) = SecretKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create the key file {}", path.display()))?;
    file.write_all(encoded.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "created a new secret key file; back it up: secrets stored in the database cannot be read without it");
    if encoded.is_empty() {
        bail!("generated an empty key");
    }
    Ok(key)
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
