//! The ACME cache (`--acme-cache`): rustls-acme's directory cache, kept
//! private to the service's own user. The account key and the certificate's
//! private key are in these files: the directory is made (or set) 0700
//! before anything is written, so nothing in it can be read by another
//! user even while a file is being written, and every file in it is set to
//! 0600 after each write.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rustls_acme::caches::DirCache;
use rustls_acme::{AccountCache, CertCache};

pub struct PrivateDirCache {
    dir: PathBuf,
    inner: DirCache<PathBuf>,
}

impl PrivateDirCache {
    /// The cache in `dir`, created 0700 if missing (its mode set to 0700 if
    /// not).
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(PrivateDirCache { inner: DirCache::new(dir.clone()), dir })
    }

    /// Every file in the cache: 0600.
    async fn lock_down(&self) -> std::io::Result<()> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || private_files(&dir)).await.map_err(std::io::Error::other)?
    }
}

fn private_files(dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[async_trait]
impl CertCache for PrivateDirCache {
    type EC = std::io::Error;
    async fn load_cert(&self, domains: &[String], directory_url: &str) -> Result<Option<Vec<u8>>, Self::EC> {
        self.inner.load_cert(domains, directory_url).await
    }
    async fn store_cert(&self, domains: &[String], directory_url: &str, cert: &[u8]) -> Result<(), Self::EC> {
        self.inner.store_cert(domains, directory_url, cert).await?;
        self.lock_down().await
    }
}

#[async_trait]
impl AccountCache for PrivateDirCache {
    type EA = std::io::Error;
    async fn load_account(&self, contact: &[String], directory_url: &str) -> Result<Option<Vec<u8>>, Self::EA> {
        self.inner.load_account(contact, directory_url).await
    }
    async fn store_account(&self, contact: &[String], directory_url: &str, account: &[u8]) -> Result<(), Self::EA> {
        self.inner.store_account(contact, directory_url, account).await?;
        self.lock_down().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_cached_is_readable_by_the_service_alone() {
        let dir = std::env::temp_dir().join(format!("aconfi-acme-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = PrivateDirCache::new(dir.join("cache")).unwrap();
        let domains = ["meet.example.org".to_string()];
        cache.store_account(&["mailto:a@example.org".into()], "https://ca.example/dir", b"account key").await.unwrap();
        cache.store_cert(&domains, "https://ca.example/dir", b"key and chain").await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("cache")), 0o700);
        let files: Vec<_> = std::fs::read_dir(dir.join("cache")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 2);
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        assert_eq!(
            cache.load_cert(&domains, "https://ca.example/dir").await.unwrap().as_deref(),
            Some(&b"key and chain"[..])
        );
        // An existing directory of a looser mode is tightened.
        std::fs::set_permissions(dir.join("cache"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let _again = PrivateDirCache::new(dir.join("cache")).unwrap();
        assert_eq!(mode(&dir.join("cache")), 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
