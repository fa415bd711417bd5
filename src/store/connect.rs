//! Connecting to the configured [`Database`]: the driver's options with the password read at
//! connect time, and a refused server certificate told apart from other failures.

use std::str::FromStr;

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;

use super::StoreError;
use crate::config::database::Database;

impl Database {
    /// The driver's options, with the password read now (it may have been rotated).
    pub(super) fn pg_options(&self) -> Result<PgConnectOptions, StoreError> {
        let Database::Postgres {
            url, password, tls, ..
        } = self
        else {
            return Err(StoreError::NotPostgres);
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Connect {
                url: self.to_string(),
                source,
            })?
            .application_name("igmod")
            .ssl_mode(tls.mode.driver());
        match password {
            Some(source) => {
                let secret = source.load().map_err(StoreError::Password)?;
                Ok(options.password(secret.expose_secret()))
            }
            None => Ok(options),
        }
    }
}

impl Database {
    /// A failed connection as the operator should read it: a certificate the TLS checks
    /// refused is said in so many words (decided on rustls's typed error, which the driver
    /// wraps in an I/O error during the handshake).
    pub(super) fn connect_error(&self, source: sqlx::Error) -> StoreError {
        let url = self.to_string();
        if certificate_refused(&source) {
            StoreError::UntrustedCertificate { url, source }
        } else {
            StoreError::Connect { url, source }
        }
    }
}

fn certificate_refused(error: &sqlx::Error) -> bool {
    let tls = match error {
        sqlx::Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        sqlx::Error::Tls(e) => e.downcast_ref::<rustls::Error>(),
        _ => None,
    };
    matches!(
        tls,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgSslMode;

    /// The TLS mode `config::database` chose is what the driver is given.
    #[test]
    fn the_chosen_sslmode_reaches_the_driver() {
        let db = Database::parse("postgres://igmod@db.internal/igmod", None).expect("url");
        let options = db.pg_options().expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(options.get_host(), "db.internal");
        let db = Database::parse("postgres://igmod@db.internal/igmod?sslmode=verify-ca", None)
            .expect("url");
        let options = db.pg_options().expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyCa));
    }
}
