//! The neo clients' credentials, shared by every shard: read at start from
//! `server.credentials`, replaced as a whole by the admin command
//! `update-credentials`. Read once per authentication, never on the request path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dmq_proto::neo::Credentials;

#[derive(Debug)]
pub struct CredentialStore {
    path: PathBuf,
    current: RwLock<Arc<Credentials>>,
}

/// Why the credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        source: dmq_proto::neo::CredentialsError,
    },
}

fn read(path: &Path) -> Result<Credentials, CredentialsFileError> {
    let content = std::fs::read(path).map_err(|source| CredentialsFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    Credentials::parse_bytes(&content).map_err(|source| CredentialsFileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

impl CredentialStore {
    /// Loads the file at start. A missing file is not an error: no neo client
    /// can authenticate until one is written and reloaded (logged as a warning).
    /// An unreadable or invalid file is an error (the start fails).
    pub fn load(path: &Path) -> Result<CredentialStore, CredentialsFileError> {
        let credentials = match read(path) {
            Ok(credentials) => credentials,
            Err(CredentialsFileError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                tracing::warn!(
                    path = %path.display(),
                    "no credentials file: no neo client can authenticate until one is written and `update-credentials` is sent"
                );
                Credentials::default()
            }
            Err(e) => return Err(e),
        };
        Ok(CredentialStore {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(credentials)),
        })
    }

    /// A store with the given credentials (for tests and tools).
    pub fn with(credentials: Credentials) -> CredentialStore {
        CredentialStore {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(credentials)),
        }
    }

    /// The credentials in force.
    pub fn get(&self) -> Arc<Credentials> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the file again; on any error the old credentials stay in force.
    /// Returns the number of clients now known.
    pub fn reload(&self) -> Result<usize, CredentialsFileError> {
        let credentials = read(&self.path)?;
        let count = credentials.len();
        let credentials = Arc::new(credentials);
        match self.current.write() {
            Ok(mut guard) => *guard = credentials,
            Err(poisoned) => *poisoned.into_inner() = credentials,
        }
        tracing::info!(path = %self.path.display(), clients = count, "credentials reloaded");
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, digit: char) -> String {
        format!("{name}:{}\n", digit.to_string().repeat(256))
    }

    #[test]
    fn missing_file_means_no_clients_and_a_bad_reload_keeps_the_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials");
        let store = CredentialStore::load(&path).expect("missing is fine");
        assert!(store.get().is_empty());
        std::fs::write(&path, line("alice", '0')).expect("write");
        assert_eq!(store.reload().expect("reload"), 1);
        std::fs::write(&path, "bob:not-hex\n").expect("write");
        assert!(store.reload().is_err());
        assert_eq!(store.get().names().collect::<Vec<_>>(), ["alice"]);
    }

    #[test]
    fn invalid_file_fails_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials");
        std::fs::write(&path, "x:y\n").expect("write");
        assert!(CredentialStore::load(&path).is_err());
    }
}
