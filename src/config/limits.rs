//! `[limits]`: the caps and policies that decide, before any SMS is paid for, whether a
//! code may be sent. Every counter lives in the database; see `docs/abuse.md`.

use std::net::IpAddr;
use std::str::FromStr;

use phonenumber::country::Id as Region;
use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range, invalid};

/// The `[limits]` section as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Codes sent to one phone, across all clients.
    pub per_phone: CapConfig,
    /// Codes sent on behalf of one client.
    pub per_client: CapConfig,
    /// Codes requested from one source address (IPv6 counted per /64).
    pub per_address: CapConfig,
    /// Codes sent to one country calling code.
    pub per_region: CapConfig,
    /// Codes sent to numbers sharing their first `prefix_digits` digits.
    pub per_prefix: CapConfig,
    pub prefix_digits: u32,
    /// Codes sent by the whole server per UTC day; 0 means no budget.
    pub daily_sms_budget: u32,
    /// Unverified sends to one phone before each further send must wait longer.
    pub backoff_after: u32,
    pub backoff_base_seconds: u32,
    pub backoff_max_seconds: u32,
    /// Challenges of one phone exhausted by wrong codes before the phone is locked out.
    pub exhausted_max: u32,
    pub exhausted_window_seconds: u32,
    pub exhausted_lockout_seconds: u32,
    /// Consecutive wrong codes for one phone, since its last successful sign-in, that lock
    /// it until an operator unlocks it (at most 100, NIST SP 800-63B §5.2.2).
    pub max_consecutive_failures: u32,
    /// Peers whose `X-Forwarded-For` is believed: addresses or CIDR ranges.
    pub trusted_proxies: Vec<String>,
    /// ISO 3166 regions codes may be sent to; empty means every region not denied.
    pub allowed_regions: Vec<String>,
    pub denied_regions: Vec<String>,
    /// Number types never sent a code (`phonenumber`'s classification).
    pub refused_number_types: Vec<NumberKind>,
}

/// At most `max` sends per `window_seconds`; `max = 0` turns the cap off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapConfig {
    pub max: u32,
    pub window_seconds: u32,
}

/// The number types of libphonenumber, as configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberKind {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    PersonalNumber,
    Voip,
    Pager,
    Uan,
    Emergency,
    Voicemail,
    ShortCode,
    StandardRate,
    Carrier,
    NoInternational,
    Unknown,
}

impl NumberKind {
    pub fn of(kind: phonenumber::Type) -> NumberKind {
        use phonenumber::Type as T;
        match kind {
            T::FixedLine => NumberKind::FixedLine,
            T::Mobile => NumberKind::Mobile,
            T::FixedLineOrMobile => NumberKind::FixedLineOrMobile,
            T::TollFree => NumberKind::TollFree,
            T::PremiumRate => NumberKind::PremiumRate,
            T::SharedCost => NumberKind::SharedCost,
            T::PersonalNumber => NumberKind::PersonalNumber,
            T::Voip => NumberKind::Voip,
            T::Pager => NumberKind::Pager,
            T::Uan => NumberKind::Uan,
            T::Emergency => NumberKind::Emergency,
            T::Voicemail => NumberKind::Voicemail,
            T::ShortCode => NumberKind::ShortCode,
            T::StandardRate => NumberKind::StandardRate,
            T::Carrier => NumberKind::Carrier,
            T::NoInternational => NumberKind::NoInternational,
            T::Unknown => NumberKind::Unknown,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let hourly = |max| CapConfig {
            max,
            window_seconds: 3600,
        };
        Self {
            per_phone: hourly(5),
            per_client: hourly(1000),
            per_address: hourly(20),
            per_region: hourly(1000),
            per_prefix: hourly(20),
            prefix_digits: 9,
            daily_sms_budget: 5000,
            backoff_after: 3,
            backoff_base_seconds: 60,
            backoff_max_seconds: 3600,
            exhausted_max: 3,
            exhausted_window_seconds: 3600,
            exhausted_lockout_seconds: 3600,
            max_consecutive_failures: 100,
            trusted_proxies: Vec::new(),
            allowed_regions: Vec::new(),
            denied_regions: Vec::new(),
            refused_number_types: vec![
                NumberKind::PremiumRate,
                NumberKind::SharedCost,
                NumberKind::TollFree,
                NumberKind::Uan,
                NumberKind::Voicemail,
                NumberKind::Pager,
                NumberKind::Emergency,
                NumberKind::ShortCode,
                // NIST SP 800-63B §5.1.3.1: an internet telephony number does not prove
                // possession of a device on the phone network.
                NumberKind::Voip,
            ],
        }
    }
}

/// A cap in checked form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub max: i64,
    pub window: i64,
}

/// A CIDR range: an address and the number of leading bits that must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub network: IpAddr,
    pub bits: u8,
}

impl IpRange {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                prefix_matches(&net.octets(), &a.octets(), self.bits)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                prefix_matches(&net.octets(), &a.octets(), self.bits)
            }
            _ => false,
        }
    }
}

fn prefix_matches(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// The validated `[limits]` section.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub per_phone: Option<Cap>,
    pub per_client: Option<Cap>,
    pub per_address: Option<Cap>,
    pub per_region: Option<Cap>,
    pub per_prefix: Option<Cap>,
    pub prefix_digits: usize,
    pub daily_sms_budget: Option<i64>,
    pub backoff_after: i64,
    pub backoff_base: i64,
    pub backoff_max: i64,
    pub exhausted_max: i64,
    pub exhausted_window: i64,
    pub exhausted_lockout: i64,
    pub max_consecutive_failures: i64,
    pub trusted_proxies: Vec<IpRange>,
    pub allowed_regions: Vec<Region>,
    pub denied_regions: Vec<Region>,
    pub refused_number_types: Vec<NumberKind>,
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<LimitSettings, ConfigError> {
        check_range("limits.prefix_digits", self.prefix_digits, 2, 15)?;
        check_range("limits.backoff_after", self.backoff_after, 1, 1000)?;
        check_range(
            "limits.backoff_base_seconds",
            self.backoff_base_seconds,
            1,
            86_400,
        )?;
        check_range(
            "limits.backoff_max_seconds",
            self.backoff_max_seconds,
            self.backoff_base_seconds,
            86_400,
        )?;
        check_range("limits.exhausted_max", self.exhausted_max, 1, 1000)?;
        check_range(
            "limits.exhausted_window_seconds",
            self.exhausted_window_seconds,
            60,
            7 * 86_400,
        )?;
        check_range(
            "limits.exhausted_lockout_seconds",
            self.exhausted_lockout_seconds,
            60,
            7 * 86_400,
        )?;
        check_range(
            "limits.max_consecutive_failures",
            self.max_consecutive_failures,
            1,
            100,
        )?;
        let allowed_regions = regions("limits.allowed_regions", &self.allowed_regions)?;
        let denied_regions = regions("limits.denied_regions", &self.denied_regions)?;
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|range| parse_range(range).ok_or_else(|| bad_proxy(range)))
            .collect::<Result<_, _>>()?;
        Ok(LimitSettings {
            per_phone: cap("limits.per_phone", self.per_phone)?,
            per_client: cap("limits.per_client", self.per_client)?,
            per_address: cap("limits.per_address", self.per_address)?,
            per_region: cap("limits.per_region", self.per_region)?,
            per_prefix: cap("limits.per_prefix", self.per_prefix)?,
            prefix_digits: self.prefix_digits as usize,
            daily_sms_budget: (self.daily_sms_budget > 0).then_some(self.daily_sms_budget.into()),
            backoff_after: self.backoff_after.into(),
            backoff_base: self.backoff_base_seconds.into(),
            backoff_max: self.backoff_max_seconds.into(),
            exhausted_max: self.exhausted_max.into(),
            exhausted_window: self.exhausted_window_seconds.into(),
            exhausted_lockout: self.exhausted_lockout_seconds.into(),
            max_consecutive_failures: self.max_consecutive_failures.into(),
            trusted_proxies,
            allowed_regions,
            denied_regions,
            refused_number_types: self.refused_number_types.clone(),
        })
    }
}

fn cap(key: &str, cap: CapConfig) -> Result<Option<Cap>, ConfigError> {
    if cap.max == 0 {
        return Ok(None);
    }
    check_range(
        &format!("{key}.window_seconds"),
        cap.window_seconds,
        1,
        7 * 86_400,
    )?;
    Ok(Some(Cap {
        max: cap.max.into(),
        window: cap.window_seconds.into(),
    }))
}

fn regions(key: &str, names: &[String]) -> Result<Vec<Region>, ConfigError> {
    names
        .iter()
        .map(|name| {
            Region::from_str(&name.to_ascii_uppercase())
                .map_err(|_| invalid(key, format!("{name:?} is not an ISO 3166 region")))
        })
        .collect()
}

fn bad_proxy(range: &str) -> ConfigError {
    invalid(
        "limits.trusted_proxies",
        format!("{range:?} is not an IP address or CIDR range"),
    )
}

/// `10.0.0.7`, `10.0.0.0/8` or `fd00::/8`.
fn parse_range(text: &str) -> Option<IpRange> {
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let network = IpAddr::from_str(address.trim()).ok()?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some(IpRange { network, bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_their_prefix_only() {
        let range = parse_range("10.1.0.0/16").unwrap();
        assert!(range.contains("10.1.200.3".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        let single = parse_range("192.0.2.7").unwrap();
        assert!(single.contains("192.0.2.7".parse().unwrap()));
        assert!(!single.contains("192.0.2.8".parse().unwrap()));
        let v6 = parse_range("2001:db8::/33").unwrap();
        assert!(v6.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:8000::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        assert!(parse_range("10.0.0.0/33").is_none());
        assert!(parse_range("proxy.example.test").is_none());
    }
}
