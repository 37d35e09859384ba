//! Abuse limits of `POST /otp/start`: who may be sent a code, how often, and at whose
//! expense. Every decision is taken before the SMS provider is called, looks only at the
//! number, the client and the source address (never at whether the phone is known), and
//! is counted in the database so that it holds across instances.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};

use phonenumber::country::Id as Region;
use phonenumber::metadata::DATABASE;

use crate::config::{Cap, IpRange, LimitSettings, NumberKind};
use crate::phone::Phone;
use crate::services::Services;
use crate::store::{Admission, BackoffRule, CounterCheck, NewChallenge, SendAdmission, StoreError};

/// What refused a start; also the `reason` label of the refusal metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The resend cooldown of one phone and client.
    Cooldown,
    Phone,
    Client,
    Address,
    Region,
    Prefix,
    Budget,
    Backoff,
    LockedOut,
    /// Locked after too many consecutive wrong codes, until an operator unlocks it.
    Suspended,
    RegionNotAllowed,
    NumberType,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Cooldown => "cooldown",
            Refusal::Phone => "phone",
            Refusal::Client => "client",
            Refusal::Address => "address",
            Refusal::Region => "region",
            Refusal::Prefix => "prefix",
            Refusal::Budget => "budget",
            Refusal::Backoff => "backoff",
            Refusal::LockedOut => "locked_out",
            Refusal::Suspended => "suspended",
            Refusal::RegionNotAllowed => "region_not_allowed",
            Refusal::NumberType => "number_type",
        }
    }

    fn of_counter(kind: &str) -> Refusal {
        match kind {
            "phone" => Refusal::Phone,
            "client" => Refusal::Client,
            "address" => Refusal::Address,
            "region" => Refusal::Region,
            "prefix" => Refusal::Prefix,
            _ => Refusal::Budget,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("codes are not sent to this region")]
    RegionNotAllowed,
    #[error("codes are not sent to numbers of type {0:?}")]
    NumberTypeRefused(NumberKind),
    #[error("refused by the {} limit", reason.as_str())]
    Limited { reason: Refusal, retry_after: i64 },
    #[error("the phone is locked after too many consecutive wrong codes")]
    Suspended,
    #[error("the limit counters could not be read")]
    Store(#[from] StoreError),
}

impl LimitError {
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            LimitError::RegionNotAllowed => Some(Refusal::RegionNotAllowed),
            LimitError::NumberTypeRefused(_) => Some(Refusal::NumberType),
            LimitError::Limited { reason, .. } => Some(*reason),
            LimitError::Suspended => Some(Refusal::Suspended),
            LimitError::Store(_) => None,
        }
    }
}

/// Where a code would go: the facts about a number that limits look at.
#[derive(Debug, Clone)]
pub struct Destination {
    pub region: Option<Region>,
    pub calling_code: u16,
    pub kind: NumberKind,
}

impl Destination {
    pub fn of(phone: &Phone) -> Destination {
        match phonenumber::parse(None, phone.e164()) {
            Ok(number) => Destination {
                region: number.country().id(),
                calling_code: number.code().value(),
                kind: NumberKind::of(number.number_type(&DATABASE)),
            },
            Err(_) => Destination {
                region: None,
                calling_code: 0,
                kind: NumberKind::Unknown,
            },
        }
    }

    /// The ISO region for labels and logs, or `unknown`.
    pub fn region_label(&self) -> String {
        self.region
            .map_or_else(|| "unknown".to_owned(), |r| r.as_ref().to_owned())
    }
}

/// The region allowlist and denylist and the refused number types.
pub fn check_destination(
    settings: &LimitSettings,
    destination: &Destination,
) -> Result<(), LimitError> {
    let allowed = match destination.region {
        Some(region) => {
            (settings.allowed_regions.is_empty() || settings.allowed_regions.contains(&region))
                && !settings.denied_regions.contains(&region)
        }
        // A number no region claims passes only when no allowlist is configured.
        None => settings.allowed_regions.is_empty(),
    };
    if !allowed {
        return Err(LimitError::RegionNotAllowed);
    }
    if settings.refused_number_types.contains(&destination.kind) {
        return Err(LimitError::NumberTypeRefused(destination.kind));
    }
    Ok(())
}

/// The address a request came from: the socket peer, or, when the peer is a trusted
/// proxy, the nearest untrusted address of `X-Forwarded-For` (read from the right, since
/// everything left of the last trusted hop may be forged by the client).
pub fn source_address(
    peer: Option<SocketAddr>,
    forwarded_for: &[&str],
    trusted: &[IpRange],
) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip()) else {
        return IpAddr::from([0u8; 16]);
    };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in forwarded_for.iter().rev().flat_map(|v| v.rsplit(',')) {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        nearest = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    nearest
}

/// The counter key of an address: IPv4 as is, IPv6 by its /64, since one subscriber
/// usually holds a whole /64.
fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Per-instance state of the limits: when old counters were last pruned.
#[derive(Debug, Default)]
pub struct Limiter {
    last_prune: AtomicI64,
}

/// How often one instance deletes expired counter rows.
const PRUNE_EVERY: i64 = 300;
/// Back-off rows of phones quiet this long are forgotten.
const BACKOFF_RESET: i64 = 86_400;
const DAY: i64 = 86_400;

/// The request to admit: a challenge for a destination, asked for by a client from an
/// address.
pub struct StartRequest<'a> {
    pub challenge: &'a NewChallenge,
    pub destination: &'a Destination,
    pub source: IpAddr,
    /// Test numbers cost nothing: only the resend cooldown and the lockout apply.
    pub test_number: bool,
}

/// Stores the challenge if every limit lets it through, or says which one did not.
pub async fn admit(services: &Services, request: StartRequest<'_>) -> Result<(), LimitError> {
    let settings = &services.settings.limits;
    let otp = services.settings.otp;
    let now = services.clock.now();
    let challenge = request.challenge;
    let admission = SendAdmission {
        challenge,
        cooldown_start: now - otp.resend_after,
        backoff: (!request.test_number).then_some(BackoffRule {
            after: settings.backoff_after,
            base: settings.backoff_base,
            max: settings.backoff_max,
            reset_after: BACKOFF_RESET,
        }),
        counters: if request.test_number {
            Vec::new()
        } else {
            counters(settings, &request)
        },
    };
    let outcome = services.store.admit_send(&admission, now).await?;
    prune(services, now).await;
    let (reason, until) = match outcome {
        Admission::Admitted => return Ok(()),
        Admission::CoolingDown { since } => (Refusal::Cooldown, since + otp.resend_after),
        Admission::LockedOut { until } => (Refusal::LockedOut, until),
        Admission::Suspended => {
            tracing::warn!(reason = "suspended", "code refused: the phone is locked");
            return Err(LimitError::Suspended);
        }
        Admission::BackingOff { until } => (Refusal::Backoff, until),
        Admission::Capped { kind, window_end } => (Refusal::of_counter(kind), window_end),
    };
    if reason == Refusal::Budget {
        tracing::error!("the daily SMS budget is used up; no codes are sent until it renews");
    } else {
        tracing::warn!(reason = reason.as_str(), "code refused by a send limit");
    }
    Err(LimitError::Limited {
        reason,
        retry_after: (until - now).max(1),
    })
}

/// The caps in the order they are checked: the narrowest key first, the global budget
/// last.
fn counters(settings: &LimitSettings, request: &StartRequest<'_>) -> Vec<CounterCheck> {
    let phone = &request.challenge.phone;
    let digits = phone.trim_start_matches('+');
    let prefix: String = digits.chars().take(settings.prefix_digits).collect();
    let sliding = |kind, cap: Option<Cap>, key: String| {
        cap.map(|cap| CounterCheck {
            kind,
            key,
            window: cap.window,
            max: cap.max,
            sliding: true,
        })
    };
    let budget = settings.daily_sms_budget.map(|max| CounterCheck {
        kind: "budget",
        key: String::new(),
        window: DAY,
        max,
        sliding: false,
    });
    [
        sliding("phone", settings.per_phone, phone.clone()),
        sliding("prefix", settings.per_prefix, prefix),
        sliding("address", settings.per_address, address_key(request.source)),
        sliding(
            "region",
            settings.per_region,
            request.destination.calling_code.to_string(),
        ),
        sliding(
            "client",
            settings.per_client,
            request.challenge.client_id.clone(),
        ),
        budget,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Deletes expired counters, at most once per [`PRUNE_EVERY`] on this instance. A failure
/// is logged and otherwise ignored: stale rows only cost space.
async fn prune(services: &Services, now: i64) {
    let limiter = &services.limiter;
    let last = limiter.last_prune.load(Ordering::Relaxed);
    if now - last < PRUNE_EVERY
        || limiter
            .last_prune
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let settings = &services.settings.limits;
    let longest = [
        settings.per_phone,
        settings.per_client,
        settings.per_address,
        settings.per_region,
        settings.per_prefix,
    ]
    .into_iter()
    .flatten()
    .map(|cap| cap.window)
    .chain([DAY, settings.exhausted_window])
    .max()
    .unwrap_or(DAY);
    // A sliding window still reads the window before the current one.
    let before = now - 2 * longest;
    match services
        .store
        .prune_limits(now, before, now - BACKOFF_RESET)
        .await
    {
        Ok(removed) => tracing::debug!(removed, "expired limit counters pruned"),
        Err(error) => tracing::warn!(error = %error, "pruning limit counters failed"),
    }
}

/// Counts one wrong code for `phone`. The configured maximum of consecutive wrong codes,
/// across all its challenges and since its last successful sign-in, locks the phone
/// until an operator unlocks it (NIST SP 800-63B §5.2.2 caps them at 100).
pub async fn record_failure(services: &Services, phone: &Phone) -> Result<(), StoreError> {
    let max = services.settings.limits.max_consecutive_failures;
    let locked = services
        .store
        .record_failure(phone.e164(), services.clock.now(), max)
        .await?;
    if locked {
        tracing::warn!(%phone, max, "phone locked after consecutive wrong codes");
        let event = crate::store::AuditEvent {
            at: services.clock.now(),
            actor: "server".into(),
            action: "phone.locked".into(),
            subject: phone.to_string(),
            detail: format!("{max} consecutive wrong codes"),
            address: String::new(),
        };
        services.store.record_audit(&event).await?;
    }
    Ok(())
}

/// Counts a challenge of `phone` whose attempts were all used by wrong codes; too many
/// lock the phone out of new codes for a while.
pub async fn record_exhaustion(services: &Services, phone: &Phone) -> Result<(), StoreError> {
    let settings = &services.settings.limits;
    let locked = services
        .store
        .record_exhaustion(
            phone.e164(),
            services.clock.now(),
            settings.exhausted_window,
            settings.exhausted_max,
            settings.exhausted_lockout,
        )
        .await?;
    if locked {
        tracing::warn!(%phone, "phone locked out after repeated exhausted challenges");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(network: &str, bits: u8) -> IpRange {
        IpRange {
            network: network.parse().unwrap(),
            bits,
        }
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted = [range("10.0.0.0", 8)];
        let proxy: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let direct: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let header = ["203.0.113.9, 198.51.100.20"];

        assert_eq!(
            source_address(Some(direct), &header, &trusted).to_string(),
            "198.51.100.7"
        );
        assert_eq!(
            source_address(Some(proxy), &header, &trusted).to_string(),
            "198.51.100.20"
        );
        let chain = ["203.0.113.9, 10.0.0.5"];
        assert_eq!(
            source_address(Some(proxy), &chain, &trusted).to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            source_address(Some(proxy), &["garbage"], &trusted).to_string(),
            "10.0.0.2"
        );
        assert_eq!(
            source_address(Some(proxy), &[], &trusted).to_string(),
            "10.0.0.2"
        );
    }

    #[test]
    fn ipv6_addresses_are_counted_per_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1"
        );
    }

    #[test]
    fn regions_are_checked_against_both_lists() {
        let destination = Destination::of(&Phone::parse("+447400123456", None).unwrap());
        assert_eq!(destination.region, Some(Region::GB));
        let mut settings = crate::config::Config::default().validate().unwrap().limits;
        assert!(check_destination(&settings, &destination).is_ok());
        settings.denied_regions = vec![Region::GB];
        assert!(check_destination(&settings, &destination).is_err());
        settings.denied_regions.clear();
        settings.allowed_regions = vec![Region::US];
        assert!(check_destination(&settings, &destination).is_err());
    }
}
