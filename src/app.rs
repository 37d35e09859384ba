//! Building and running the server: bind, open the store, load the keys, serve until told
//! to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::crypto::random_bytes;
use crate::http::{AppState, StaticFiles, router};
use crate::keys::{KeyError, KeyProtector, KeySettings, Keys};
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::otp::OtpHasher;
use crate::services::Services;
use crate::sms::{self, SmsSender};
use crate::store::{Store, StoreError};

/// Name of the server secret that keys the OTP hashes.
const OTP_SECRET: &str = "otp_hmac";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the database")]
    Store(#[from] StoreError),
    #[error("cannot load the signing keys")]
    Keys(#[from] KeyError),
    #[error("cannot set up the SMS provider")]
    Sms(#[from] crate::sms::SmsError),
    #[error("cannot read the well-known folder")]
    StaticFiles(#[source] std::io::Error),
}

/// A server bound to its address and ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    services: Arc<Services>,
}

/// Chooses the parts a server is built from; the defaults come from the settings.
pub struct ApplicationBuilder {
    settings: Settings,
    sms: Option<Arc<dyn SmsSender>>,
    clock: Option<Arc<dyn Clock>>,
}

impl ApplicationBuilder {
    /// Sends codes through `sender` instead of the configured provider.
    pub fn sms_sender(mut self, sender: Arc<dyn SmsSender>) -> Self {
        self.sms = Some(sender);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub async fn build(self) -> Result<Application, StartError> {
        let settings = self.settings;
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
        let issuer = settings
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let sms = match self.sms {
            Some(sms) => sms,
            None => sms::from_config(&settings.sms.provider, clock.clone())?,
        };

        let store = Store::connect(&settings.database_url).await?;
        let keys = Keys::start(
            store.clone(),
            clock.clone(),
            key_settings(&settings),
            "startup",
        )
        .await?;
        let otp_key = store
            .server_secret(OTP_SECRET, &random_bytes::<32>(), clock.now())
            .await?;
        let static_files =
            StaticFiles::load(&settings.well_known_dir).map_err(StartError::StaticFiles)?;
        tracing::info!(%issuer, backend = store.kind(), "server ready");

        let services = Arc::new(Services {
            issuer,
            settings,
            store,
            keys,
            sms,
            clock,
            otp: OtpHasher::new(otp_key),
            limiter: Limiter::default(),
            metrics: Metrics::default(),
        });
        let state = AppState {
            services: services.clone(),
            static_files: Arc::new(static_files),
            discovery: Arc::default(),
        };
        Ok(Application {
            listener,
            router: router(state),
            services,
        })
    }
}

impl Application {
    pub fn builder(settings: Settings) -> ApplicationBuilder {
        ApplicationBuilder {
            settings,
            sms: None,
            clock: None,
        }
    }

    /// A server with the configured SMS provider and the system clock.
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        Self::builder(settings).build().await
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn issuer(&self) -> &str {
        &self.services.issuer
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "listening");
        let store = self.services.store.clone();
        let maintenance = tokio::spawn(maintain_keys(self.services.clone()));
        // The peer address feeds the per-address limits of the OTP start endpoint.
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(signal)
            .await;
        maintenance.abort();
        served?;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The key settings a server runs with.
pub fn key_settings(settings: &Settings) -> KeySettings {
    let keys = &settings.keys;
    KeySettings {
        phone_token_algorithm: keys.phone_token_algorithm,
        access_token_algorithm: keys.access_token_algorithm,
        id_token_algorithm: keys.id_token_algorithm,
        rotation_period: keys.rotation_period,
        jwks_max_age: i64::from(settings.jwks_max_age),
        refresh_interval: keys.refresh_interval,
        phone_token_ttl: settings.phone_token_ttl,
        id_token_ttl: settings.tokens.id_token_ttl,
        protector: KeyProtector::new(keys.encryption_secret.as_ref().map(|s| s.expose())),
    }
}

/// Reloads the keys and runs due rotations at the configured interval, so every instance
/// sees keys that another instance or the CLI created.
async fn maintain_keys(services: Arc<Services>) {
    let seconds = u64::try_from(services.keys.settings().refresh_interval).unwrap_or(30);
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(seconds));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        if let Err(error) = services.keys.maintain().await {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            tracing::error!(error = %error, cause = cause.unwrap_or_default(), "key maintenance failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
