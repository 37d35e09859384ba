//! Counters for operators, served as Prometheus text at `GET /metrics`.
//!
//! Each [`crate::Application`] owns its own registry (no global recorder), so several
//! servers can run in one process. Labels carry client ids, ISO regions and reasons,
//! never a phone number or a code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::limits::Refusal;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    client: String,
    region: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    client: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: String,
    client: String,
    region: String,
}

/// The server's counters and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sends: Family<SendLabels, Counter>,
    delivery_failures: Family<ProviderLabels, Counter>,
    verifications: Family<VerificationLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("callsign");
        let sends = Family::<SendLabels, Counter>::default();
        let delivery_failures = Family::<ProviderLabels, Counter>::default();
        let verifications = Family::<VerificationLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "otp_sends",
            "Codes handed to the SMS provider (test numbers excluded)",
            sends.clone(),
        );
        registry.register(
            "sms_delivery_failures",
            "Codes the SMS provider did not accept",
            delivery_failures.clone(),
        );
        registry.register(
            "otp_verifications",
            "Codes checked at the token endpoint, by result",
            verifications.clone(),
        );
        registry.register(
            "otp_refusals",
            "Code requests refused by a limit or policy, by reason",
            refusals.clone(),
        );
        Self {
            registry,
            sends,
            delivery_failures,
            verifications,
            refusals,
        }
    }

    pub fn code_sent(&self, client: &str, region: &str) {
        let labels = SendLabels {
            client: client.to_owned(),
            region: region.to_owned(),
        };
        self.sends.get_or_create(&labels).inc();
    }

    pub fn delivery_failed(&self, provider: &str) {
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        self.delivery_failures.get_or_create(&labels).inc();
    }

    pub fn code_checked(&self, client: &str, succeeded: bool) {
        let labels = VerificationLabels {
            client: client.to_owned(),
            result: if succeeded { "succeeded" } else { "failed" }.to_owned(),
        };
        self.verifications.get_or_create(&labels).inc();
    }

    pub fn refused(&self, reason: Refusal, client: &str, region: &str) {
        let labels = RefusalLabels {
            reason: reason.as_str().to_owned(),
            client: client.to_owned(),
            region: region.to_owned(),
        };
        self.refusals.get_or_create(&labels).inc();
    }

    /// The exposition text of every counter.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
