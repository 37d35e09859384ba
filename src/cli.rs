//! The `callsign` command line: serve, migrate, and register audiences and clients.
//! With `--json`, every command prints one JSON object for scripts.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::admin::roles;
use crate::app::{Application, key_settings};
use crate::clock::{Clock, SystemClock, format_utc};
use crate::config::{Config, Settings};
use crate::keys::{Keys, Purpose};
use crate::phone::Phone;
use crate::registry::{self, NewAudience, NewClient};
use crate::store::{AuditEvent, Store};

#[derive(Debug, Parser)]
#[command(
    name = "callsign",
    version,
    about = "A phone-first OAuth 2.0 / OpenID Connect server"
)]
pub struct Cli {
    /// Configuration file (default: callsign.toml in the working folder, when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates the schema and the first keys if absent).
    Serve,
    /// Apply the schema migrations and exit.
    Migrate,
    /// Register APIs that access tokens are issued for.
    #[command(subcommand)]
    Audience(AudienceCommand),
    /// Register applications.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Show and rotate the signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Set up access to the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Look after a phone number.
    #[command(subcommand)]
    Phone(PhoneCommand),
}

#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// Lift the lock that too many consecutive wrong codes put on a number.
    Unlock {
        /// The number, in international form (+...).
        number: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the admin audience and a first admin machine client; prints its secret once.
    Bootstrap {
        /// Add another admin client although bootstrap ran before.
        #[arg(long)]
        force: bool,
    },
    /// Give the admin console to the user holding a phone, creating the user when absent.
    Grant {
        /// The phone number, in international form (+44...).
        #[arg(long, value_name = "E164")]
        phone: String,
        /// Take the role back instead, and end that user's console sessions.
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AudienceCommand {
    /// Register an audience.
    Create {
        /// An absolute URI (e.g. https://orders.api.example.com) or a short name.
        #[arg(long)]
        identifier: String,
        /// A scope the audience defines; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Access-token lifetime in seconds.
        #[arg(long, value_name = "SECS")]
        ttl: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and, for a confidential client, its secret once.
    Create {
        #[arg(long)]
        name: String,
        /// A public client (native or browser app) with no secret.
        #[arg(long)]
        public: bool,
        /// A grant type as on the wire, or sms-otp / token-exchange; repeat for several.
        #[arg(long = "grant", value_name = "G")]
        grants: Vec<String>,
        /// An audience the client may request; repeat for several.
        #[arg(long = "audience", value_name = "ID")]
        audiences: Vec<String>,
        /// The audience used when a request names none (default: the only audience).
        #[arg(long, value_name = "ID")]
        default_audience: Option<String>,
        /// A scope the client may request; repeat for several.
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// One of the operator's own apps: its users are not asked for consent.
        #[arg(long)]
        first_party: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys with their purpose and state.
    List,
    /// Publish a new key that starts signing once every JWKS cache can have seen it.
    Rotate {
        /// phone_token, access_token or id_token (default: all three).
        #[arg(long, value_name = "P")]
        purpose: Option<String>,
        /// Remove this key at once instead: an emergency measure for a compromised key.
        #[arg(long, value_name = "KID", conflicts_with = "purpose")]
        revoke: Option<String>,
    },
}

/// Loads the configuration and runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    let settings = config.validate()?;
    // Held to the end, so the log lines still in memory are written before the program ends.
    let _log = crate::telemetry::init(&config.log.level, config.log.format);
    let out = Output { json: cli.json };
    match cli.command {
        Command::Serve => serve(settings, out).await,
        Command::Migrate => {
            let store = open(&settings).await?;
            out.print(json!({"migrated": true, "backend": store.kind()}), || {
                format!("schema up to date ({})", store.kind())
            });
            Ok(())
        }
        Command::Audience(AudienceCommand::Create {
            identifier,
            scopes,
            ttl,
        }) => {
            let store = open(&settings).await?;
            let audience = NewAudience {
                identifier,
                scopes,
                ttl,
            };
            let audience = registry::create_audience(&store, &SystemClock, audience).await?;
            let value = json!({
                "identifier": audience.identifier,
                "scopes": audience.scopes,
                "ttl": audience.access_token_ttl,
            });
            out.print(value, || {
                format!("audience {} registered", audience.identifier)
            });
            Ok(())
        }
        Command::Client(ClientCommand::Create {
            name,
            public,
            grants,
            audiences,
            default_audience,
            scopes,
            redirect_uris,
            first_party,
        }) => {
            let store = open(&settings).await?;
            let new = NewClient {
                name,
                public,
                grants,
                audiences,
                default_audience,
                scopes,
                redirect_uris,
                first_party,
            };
            let created = registry::create_client(&store, &SystemClock, new).await?;
            print_client(out, &created);
            Ok(())
        }
        Command::Keys(command) => keys(command, &settings, out).await,
        Command::Phone(PhoneCommand::Unlock { number }) => {
            let phone = Phone::parse(&number, settings.default_region)
                .map_err(|e| anyhow::anyhow!("{number} is not a valid phone number: {e}"))?;
            let store = open(&settings).await?;
            let unlocked = store.unlock_phone(phone.e164()).await?;
            if unlocked {
                let event = AuditEvent {
                    at: SystemClock.now(),
                    actor: cli_actor(),
                    action: "phone.unlocked".into(),
                    subject: phone.to_string(),
                    detail: String::new(),
                    address: String::new(),
                };
                store.record_audit(&event).await?;
            }
            out.print(json!({"phone": phone.e164(), "unlocked": unlocked}), || {
                if unlocked {
                    format!("{} unlocked: codes may be sent to it again", phone.e164())
                } else {
                    format!("{} was not locked; nothing changed", phone.e164())
                }
            });
            Ok(())
        }
        Command::Admin(AdminCommand::Bootstrap { force }) => {
            let store = open(&settings).await?;
            let issuer = settings
                .issuer
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.listen));
            let created = registry::bootstrap_admin(&store, &SystemClock, &issuer, force).await?;
            print_client(out, &created);
            Ok(())
        }
        Command::Admin(AdminCommand::Grant { phone, revoke }) => {
            grant(&settings, out, &phone, revoke).await
        }
    }
}

async fn grant(settings: &Settings, out: Output, phone: &str, revoke: bool) -> anyhow::Result<()> {
    let phone = Phone::parse(phone, settings.default_region)
        .map_err(|e| anyhow::anyhow!("--phone: {e}"))?;
    let store = open(settings).await?;
    let actor = cli_actor();
    let change = if revoke {
        roles::revoke_admin(&store, &SystemClock, &phone, &actor).await?
    } else {
        roles::grant_admin(&store, &SystemClock, &phone, &actor).await?
    };
    let value = json!({
        "phone_number": phone.e164(),
        "user_id": change.user_id,
        "role": "admin",
        "granted": !revoke && change.user_id.is_some(),
        "changed": change.changed,
        "created_user": change.created_user,
    });
    out.print(value, || {
        let user = change.user_id.as_deref().unwrap_or("no user");
        let e164 = phone.e164();
        match (revoke, change.changed) {
            (false, true) if change.created_user => {
                format!("user {user} created for {e164} and given the admin role")
            }
            (false, true) => format!("user {user} ({e164}) now holds the admin role"),
            (false, false) => format!("user {user} ({e164}) already holds the admin role"),
            (true, true) => format!(
                "user {user} ({e164}) no longer holds the admin role; its console sessions ended"
            ),
            (true, false) => format!("{user} ({e164}) does not hold the admin role"),
        }
    });
    Ok(())
}

async fn serve(settings: Settings, out: Output) -> anyhow::Result<()> {
    let app = Application::build(settings)
        .await
        .context("cannot start the server")?;
    let addr = app.local_addr();
    let issuer = app.issuer().to_owned();
    out.print(
        json!({"listening": addr.to_string(), "issuer": issuer}),
        || format!("callsign listening on {addr}, issuer {issuer}"),
    );
    app.run_until_stopped().await.context("server failed")
}

/// Who did it, as the audit trail names a command-line user.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn keys(command: KeysCommand, settings: &Settings, out: Output) -> anyhow::Result<()> {
    let store = open(settings).await?;
    let actor = cli_actor();
    let clock = std::sync::Arc::new(SystemClock);
    let keys = Keys::start(store.clone(), clock, key_settings(settings), &actor).await?;
    match command {
        KeysCommand::List => {}
        KeysCommand::Rotate {
            revoke: Some(kid), ..
        } => {
            let revoked = keys.revoke(&kid, &actor).await?;
            let max_age = settings.jwks_max_age;
            let reload = settings.keys.refresh_interval;
            let value = json!({
                "revoked": revoked.kid, "purpose": revoked.purpose.as_str(),
                "state": revoked.state, "replacement": revoked.replacement,
            });
            out.print(value, || {
                let mut text = format!(
                    "revoked {} ({} key, was {}).\nTokens it signed stop verifying here once \
                     each instance reloads its keys, and at resource servers when their cached \
                     JWKS expires (max-age {max_age} s); their holders must sign in again.",
                    revoked.kid,
                    revoked.purpose.as_str(),
                    revoked.state
                );
                if let Some(replacement) = &revoked.replacement {
                    text.push_str(&format!(
                        "\n{replacement} signs from now on; resource servers holding an older \
                         JWKS may refuse its tokens for up to {max_age} s plus the {reload} s \
                         it takes every instance to reload its keys."
                    ));
                }
                text
            });
            return Ok(());
        }
        KeysCommand::Rotate { purpose, .. } => {
            let purposes = match purpose.as_deref() {
                None => Purpose::ALL.to_vec(),
                Some(name) => vec![Purpose::parse(name).with_context(|| {
                    format!("unknown purpose {name}: use phone_token, access_token or id_token")
                })?],
            };
            let mut rotated = Vec::new();
            for purpose in purposes {
                rotated.push(keys.rotate(purpose, &actor).await?);
            }
            let value: Vec<_> = rotated
                .iter()
                .map(|k| json!({"kid": k.kid, "purpose": k.purpose, "activate_at": k.activate_at}))
                .collect();
            out.print(json!({ "rotated": value }), || {
                rotated
                    .iter()
                    .map(|k| {
                        let at = k.activate_at.map(format_utc).unwrap_or_default();
                        format!(
                            "{}: {} is published now and signs from {at}",
                            k.purpose, k.kid
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            return Ok(());
        }
    }
    let records = store.signing_keys().await?;
    let list: Vec<_> = records
        .iter()
        .map(|k| {
            json!({"kid": k.kid, "purpose": k.purpose, "algorithm": k.algorithm,
                   "state": k.state, "created_at": k.created_at, "activate_at": k.activate_at,
                   "retired_at": k.retired_at})
        })
        .collect();
    out.print(json!({ "keys": list }), || {
        records
            .iter()
            .map(|k| {
                format!(
                    "{}  {:<12}  {:<5}  {:<7}  created {}",
                    k.kid,
                    k.purpose,
                    k.algorithm,
                    k.state,
                    format_utc(k.created_at)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

async fn open(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(&settings.database_url)
        .await
        .context("cannot open the database")
}

fn print_client(out: Output, created: &registry::CreatedClient) {
    let client = &created.client;
    let secret = created.secret.as_ref().map(|s| s.expose());
    let value = json!({
        "client_id": client.id,
        "client_secret": secret,
        "name": client.name,
        "type": client.kind.as_str(),
        "grant_types": client.grant_types,
        "audiences": client.audiences,
        "default_audience": client.default_audience,
        "scopes": client.scopes,
        "redirect_uris": client.redirect_uris,
    });
    out.print(value, || {
        let mut text = format!("client_id: {}\n", client.id);
        if let Some(secret) = secret {
            text.push_str(&format!(
                "client_secret: {secret}\n(the secret is shown this once; store it now)\n"
            ));
        }
        text.push_str(&format!(
            "type: {}\ngrant types: {}",
            client.kind.as_str(),
            client.grant_types.join(" ")
        ));
        text
    });
}

#[derive(Debug, Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn print(self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}
