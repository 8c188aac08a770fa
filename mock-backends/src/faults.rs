//! Decides, per request, which scripted faults fire: the profile's
//! `[[faults]]` compiled into triggers, drawn against the host RNG.

use rand_chacha::ChaCha8Rng;

use crate::clock::ms_to_us;
use crate::rng::{HostRng, hits};
use crate::spec::{FaultClass, FaultKind, FaultSpec};

/// Status a `health_fail` fault answers when it names none.
pub const HEALTH_FAIL_STATUS_DEFAULT: u16 = 503;

/// The compiled faults of one backend instance, in profile order.
pub(crate) struct FaultTable {
    faults: Vec<Compiled>,
}

struct Compiled {
    kind: FaultKind,
    trigger: Trigger,
    models: Option<Vec<String>>,
    status: u16,
    after_tokens: u64,
    delay_ms: u64,
}

struct Trigger {
    probability: Option<f64>,
    nth: Vec<u64>,
    from_us: Option<u64>,
    until_us: Option<u64>,
}

/// How an injected fault ends a stream early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamStop {
    /// Keep the connection open and write nothing more.
    Stall,
    /// Close the connection (reset where the transport allows).
    Cut,
}

/// The faults that fire on one chat completion.
#[derive(Debug, Default)]
pub(crate) struct ChatPlan {
    /// Answer this status instead of generating.
    pub status: Option<u16>,
    /// Stop the stream this way after this many tokens.
    pub stop: Option<(StreamStop, u64)>,
    /// Write one broken SSE event after this many tokens.
    pub malformed_after: Option<u64>,
    /// Leave out the usage event.
    pub missing_usage: bool,
    /// The faults that took effect, for the record.
    pub fired: Vec<FaultKind>,
}

/// The faults that fire on one health check.
#[derive(Debug, Default)]
pub(crate) struct HealthPlan {
    /// Extra delay, the sum of every firing `health_slow`.
    pub delay_ms: u64,
    /// Answer this status instead of healthy.
    pub fail_status: Option<u16>,
    /// The faults that took effect, for the record.
    pub fired: Vec<FaultKind>,
}

impl Trigger {
    /// Outside its window a fault draws nothing; inside, a set probability
    /// is always drawn (so `nth` does not shift later draws).
    fn fires(&self, ordinal: u64, now_us: u64, rng: &mut ChaCha8Rng) -> bool {
        let after_start = self.from_us.is_none_or(|from| now_us >= from);
        let before_end = self.until_us.is_none_or(|until| now_us < until);
        if !(after_start && before_end) {
            return false;
        }
        let by_chance = self.probability.map(|p| hits(rng, p));
        if self.nth.is_empty() && by_chance.is_none() {
            return true;
        }
        self.nth.contains(&ordinal) || by_chance == Some(true)
    }
}

impl FaultTable {
    pub fn new(specs: &[FaultSpec]) -> Self {
        let faults = specs.iter().map(compile).collect();
        Self { faults }
    }

    fn of_class(&self, class: FaultClass) -> impl Iterator<Item = &Compiled> {
        self.faults.iter().filter(move |f| f.kind.class() == class)
    }

    /// Faults for the `ordinal`-th chat completion (1-based), for `model`.
    pub fn plan_chat(&self, ordinal: u64, model: &str, now_us: u64, rng: &HostRng) -> ChatPlan {
        let mut plan = ChatPlan::default();
        rng.with(|rng| {
            for fault in self.of_class(FaultClass::Chat) {
                let for_model = fault.models.as_ref().is_none_or(|ids| ids.iter().any(|id| id == model));
                if for_model && fault.trigger.fires(ordinal, now_us, rng) {
                    plan.apply(fault);
                }
            }
        });
        if let Some(status) = plan.status {
            // An error status replaces the stream, so nothing else applies.
            plan = ChatPlan {
                status: Some(status),
                fired: vec![FaultKind::Status],
                ..ChatPlan::default()
            };
        }
        plan
    }

    /// Faults for the `ordinal`-th health check (1-based).
    pub fn plan_health(&self, ordinal: u64, now_us: u64, rng: &HostRng) -> HealthPlan {
        let mut plan = HealthPlan::default();
        rng.with(|rng| {
            for fault in self.of_class(FaultClass::Health) {
                if !fault.trigger.fires(ordinal, now_us, rng) {
                    continue;
                }
                match fault.kind {
                    FaultKind::HealthSlow => plan.delay_ms += fault.delay_ms,
                    FaultKind::HealthFail if plan.fail_status.is_none() => {
                        plan.fail_status = Some(fault.status);
                    }
                    _ => continue,
                }
                plan.fired.push(fault.kind);
            }
        });
        plan
    }

    /// Whether the `ordinal`-th connection (1-based) is refused.
    pub fn host_down(&self, ordinal: u64, now_us: u64, rng: &HostRng) -> bool {
        rng.with(|rng| {
            let mut down = false;
            for fault in self.of_class(FaultClass::Connection) {
                // Every trigger is evaluated so its draws happen regardless.
                down |= fault.trigger.fires(ordinal, now_us, rng);
            }
            down
        })
    }
}

impl ChatPlan {
    fn apply(&mut self, fault: &Compiled) {
        let took_effect = match fault.kind {
            FaultKind::Status => self.status.is_none().then(|| self.status = Some(fault.status)),
            FaultKind::Stall => self
                .stop
                .is_none()
                .then(|| self.stop = Some((StreamStop::Stall, fault.after_tokens))),
            FaultKind::Cut => self
                .stop
                .is_none()
                .then(|| self.stop = Some((StreamStop::Cut, fault.after_tokens))),
            FaultKind::MalformedSse => self
                .malformed_after
                .is_none()
                .then(|| self.malformed_after = Some(fault.after_tokens)),
            FaultKind::MissingUsage => (!self.missing_usage).then(|| self.missing_usage = true),
            FaultKind::HealthSlow | FaultKind::HealthFail | FaultKind::HostDown => None,
        };
        if took_effect.is_some() {
            self.fired.push(fault.kind);
        }
    }
}

fn compile(spec: &FaultSpec) -> Compiled {
    let default_status = match spec.kind {
        FaultKind::HealthFail => HEALTH_FAIL_STATUS_DEFAULT,
        _ => 500,
    };
    Compiled {
        kind: spec.kind,
        trigger: Trigger {
            probability: spec.probability,
            nth: spec.nth.clone(),
            from_us: spec.from_ms.map(ms_to_us),
            until_us: spec.until_ms.map(ms_to_us),
        },
        models: spec.models.clone(),
        status: spec.status.unwrap_or(default_status),
        after_tokens: spec.after_tokens.unwrap_or(0),
        delay_ms: spec.delay_ms.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml_faults: &str) -> FaultTable {
        let text = format!("[[models]]\nid = \"m\"\ncontext_window = 9\n{toml_faults}");
        let spec = crate::spec::parse_profile_toml(&text).unwrap();
        FaultTable::new(&spec.faults)
    }

    /// `nth` fires exactly on the listed ordinals.
    #[test]
    fn nth_fires_on_listed_ordinals() {
        let t = table("[[faults]]\nkind = \"cut\"\nafter_tokens = 2\nnth = [2, 4]\n");
        let rng = HostRng::new(0);
        let fired: Vec<u64> = (1..=5)
            .filter(|&n| t.plan_chat(n, "m", 0, &rng).stop.is_some())
            .collect();
        assert_eq!(fired, vec![2, 4]);
    }

    /// A status fault replaces every other chat fault.
    #[test]
    fn status_wins() {
        let t = table(
            "[[faults]]\nkind = \"stall\"\nafter_tokens = 1\n\
             [[faults]]\nkind = \"status\"\nstatus = 429\n",
        );
        let plan = t.plan_chat(1, "m", 0, &HostRng::new(0));
        assert_eq!(plan.status, Some(429));
        assert!(plan.stop.is_none());
        assert_eq!(plan.fired, vec![FaultKind::Status]);
    }

    /// The time window bounds a fault; without nth or probability it always fires.
    #[test]
    fn window_bounds_host_down() {
        let t = table("[[faults]]\nkind = \"host_down\"\nfrom_ms = 10\nuntil_ms = 20\n");
        let rng = HostRng::new(0);
        assert!(!t.host_down(1, 9_999, &rng));
        assert!(t.host_down(2, 10_000, &rng));
        assert!(!t.host_down(3, 20_000, &rng));
    }

    /// Probability draws are seeded: same seed, same firing pattern, near p.
    #[test]
    fn probability_is_seeded() {
        let t = table("[[faults]]\nkind = \"missing_usage\"\nprobability = 0.25\n");
        let pattern = |seed| {
            let rng = HostRng::new(seed);
            (1..=400)
                .map(|n| t.plan_chat(n, "m", 0, &rng).missing_usage)
                .collect::<Vec<_>>()
        };
        let first = pattern(5);
        assert_eq!(first, pattern(5));
        let count = first.iter().filter(|&&b| b).count();
        assert!((60..140).contains(&count), "{count}");
    }

    /// Model filters and health faults: slow delays add up, fail uses 503.
    #[test]
    fn model_filter_and_health() {
        let t = table(
            "[[faults]]\nkind = \"missing_usage\"\nmodels = [\"m\"]\n\
             [[faults]]\nkind = \"health_slow\"\ndelay_ms = 5\n\
             [[faults]]\nkind = \"health_slow\"\ndelay_ms = 7\n\
             [[faults]]\nkind = \"health_fail\"\n",
        );
        let rng = HostRng::new(0);
        assert!(t.plan_chat(1, "m", 0, &rng).missing_usage);
        assert!(!t.plan_chat(1, "other", 0, &rng).missing_usage);
        let health = t.plan_health(1, 0, &rng);
        assert_eq!(health.delay_ms, 12);
        assert_eq!(health.fail_status, Some(HEALTH_FAIL_STATUS_DEFAULT));
    }
}
