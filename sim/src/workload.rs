//! The workload a scenario generates: its accounts, and every call, rate change
//! and card incident in time order. It depends on the scenario and its seed
//! alone, so every policy compared on it sees the same traffic; each account draws
//! from its own random stream, so adding an account leaves the others' calls as
//! they were.

use chrono::{DateTime, Datelike, Weekday};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use recharge_policy_sdk::model::{AutoRechargeSettings, MinuteType, Rates, Timestamp};

use crate::scenario::{Calls, Scenario, Target};
use recharge_host::AccountId;
use recharge_host::CardBehavior;

/// An hour in milliseconds.
pub const HOUR: Timestamp = 3_600_000;
/// A day in milliseconds.
pub const DAY: Timestamp = 24 * HOUR;
/// The card every account starts with.
pub const MAIN_CARD: &str = "main";

/// Random streams of one seed: one for picking incidents, one for holders'
/// responses, then one per account.
pub(crate) const INCIDENT_STREAM: u64 = 1;
pub(crate) const RESPONSE_STREAM: u64 = 2;
const FIRST_MEMBER_STREAM: u64 = 16;

/// An account of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Its id.
    pub id: AccountId,
    /// What it is and how it is set up.
    pub role: Role,
}

/// What an account is and how it is set up.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// An agency: pays for its sub-accounts' minutes, makes no calls.
    Agency,
    /// A sub-account on a monthly allocation.
    SubAccount {
        /// Its agency's index among the members.
        agency: usize,
        /// Basic minutes a month.
        basic_minutes: i64,
        /// Premium minutes a month.
        premium_minutes: i64,
    },
    /// A user on auto-recharge.
    User {
        /// Its settings (card [`MAIN_CARD`]).
        settings: AutoRechargeSettings,
    },
}

/// Something that happens at a planned time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A call by a member, if it can take calls.
    Call {
        /// The caller's index among the members.
        member: usize,
        /// The call's number among the caller's calls.
        number: u32,
        /// Its length.
        seconds: i64,
        /// Basic or premium.
        minute_type: MinuteType,
    },
    /// New rates.
    Rates(Rates),
    /// A member's main card starts behaving so.
    CardIncident {
        /// The card holder's index among the members.
        member: usize,
        /// The new behaviour.
        behavior: CardBehavior,
    },
}

/// An action and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// When.
    pub at: Timestamp,
    /// What.
    pub action: Action,
}

/// The generated workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// When it starts (accounts are set up then).
    pub start: Timestamp,
    /// When it ends.
    pub end: Timestamp,
    /// The accounts, agencies before their sub-accounts.
    pub members: Vec<Member>,
    /// Every planned action, in time order.
    pub planned: Vec<Planned>,
}

/// Generate a scenario's workload.
pub fn generate(scenario: &Scenario) -> Workload {
    let start = scenario.start;
    let end = start + Timestamp::from(scenario.days) * DAY;
    let (members, volumes) = population(scenario);
    let mut planned = Vec::new();
    if let (Some(day), Some(change)) = (scenario.rate_change_day(), scenario.rate_change) {
        let rates = Rates {
            basic: change.basic,
            premium: change.premium,
        };
        planned.push(Planned {
            at: start + Timestamp::from(day) * DAY,
            action: Action::Rates(rates),
        });
    }
    planned.extend(incidents(scenario, &members));
    for (member, volume) in volumes.into_iter().enumerate() {
        if volume > 0.0 {
            planned.extend(calls_of(scenario, member, volume));
        }
    }
    // Stable: actions at the same millisecond keep the order above.
    planned.sort_by_key(|action| action.at);
    Workload {
        start,
        end,
        members,
        planned,
    }
}

/// The members, and each one's mean calls on a working day.
fn population(scenario: &Scenario) -> (Vec<Member>, Vec<f64>) {
    let mut members = Vec::new();
    let mut volumes = Vec::new();
    let agency_count: u32 = scenario.agencies.iter().map(|group| group.count).sum();
    let user_count: u32 = scenario.users.iter().map(|group| group.count).sum();
    let mut agency_number = 0;
    for group in &scenario.agencies {
        for _ in 0..group.count {
            agency_number += 1;
            let agency_id = format!("agency-{}", padded(agency_number, agency_count));
            let agency = members.len();
            members.push(Member {
                id: AccountId(agency_id.clone()),
                role: Role::Agency,
            });
            volumes.push(0.0);
            let calls = group
                .calls_per_working_day
                .unwrap_or(scenario.calls.per_working_day);
            for sub in 1..=group.sub_accounts {
                let id = AccountId(format!(
                    "{agency_id}-sub-{}",
                    padded(sub, group.sub_accounts)
                ));
                let role = Role::SubAccount {
                    agency,
                    basic_minutes: group.basic_minutes,
                    premium_minutes: group.premium_minutes,
                };
                members.push(Member { id, role });
                volumes.push(calls);
            }
        }
    }
    let mut user_number = 0;
    for group in &scenario.users {
        for _ in 0..group.count {
            user_number += 1;
            let settings = AutoRechargeSettings {
                enabled: true,
                threshold: group.threshold,
                amount: group.amount,
                card: MAIN_CARD.into(),
                mode: group.mode,
                monthly_limit: group.monthly_limit,
            };
            let id = AccountId(format!("user-{}", padded(user_number, user_count)));
            members.push(Member {
                id,
                role: Role::User { settings },
            });
            volumes.push(scenario.calls.per_working_day);
        }
    }
    (members, volumes)
}

fn padded(number: u32, count: u32) -> String {
    let width = count.max(1).to_string().len().max(2);
    format!("{number:0width$}")
}

/// The seed's random stream `stream`.
pub(crate) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Card incidents, each hitting accounts picked by the seed, distinct across
/// incidents while there are enough.
fn incidents(scenario: &Scenario, members: &[Member]) -> Vec<Planned> {
    let mut rng = stream(scenario.seed, INCIDENT_STREAM);
    let mut pick_order = |target: Target| {
        let mut picked: Vec<usize> = members
            .iter()
            .enumerate()
            .filter(|(_, member)| match target {
                Target::Users => matches!(member.role, Role::User { .. }),
                Target::Agencies => matches!(member.role, Role::Agency),
            })
            .map(|(index, _)| index)
            .collect();
        picked.shuffle(&mut rng);
        picked
    };
    let users = pick_order(Target::Users);
    let agencies = pick_order(Target::Agencies);
    let (mut next_user, mut next_agency) = (0, 0);
    let mut planned = Vec::new();
    for incident in &scenario.card_incidents {
        let (pool, next) = match incident.target {
            Target::Users => (&users, &mut next_user),
            Target::Agencies => (&agencies, &mut next_agency),
        };
        if pool.is_empty() {
            continue;
        }
        let at = scenario.start + Timestamp::from(incident.day) * DAY + 6 * HOUR;
        for _ in 0..incident
            .accounts
            .min(u32::try_from(pool.len()).unwrap_or(u32::MAX))
        {
            let member = pool[*next % pool.len()];
            *next += 1;
            planned.push(Planned {
                at,
                action: Action::CardIncident {
                    member,
                    behavior: incident.behavior,
                },
            });
        }
    }
    planned
}

/// One member's calls over the whole run.
fn calls_of(scenario: &Scenario, member: usize, volume: f64) -> Vec<Planned> {
    let calls = &scenario.calls;
    let mut rng = stream(scenario.seed, FIRST_MEMBER_STREAM + member as u64);
    let [low, high] = calls.volume_spread;
    let volume = volume
        * if high > low {
            rng.random_range(low..=high)
        } else {
            low
        };
    let mut planned = Vec::new();
    let mut number = 0;
    for day in 0..scenario.days {
        let midnight = scenario.start + Timestamp::from(day) * DAY;
        let mean = if is_weekend(midnight) {
            volume * calls.weekend_share
        } else {
            volume
        };
        let mut times: Vec<Timestamp> = (0..poisson(&mut rng, mean))
            .map(|_| midnight + time_of_day(&mut rng, calls))
            .collect();
        times.sort_unstable();
        for at in times {
            let seconds = call_length(&mut rng, calls);
            let premium = rng.random::<f64>() < calls.premium_share;
            let minute_type = if premium {
                MinuteType::Premium
            } else {
                MinuteType::Basic
            };
            planned.push(Planned {
                at,
                action: Action::Call {
                    member,
                    number,
                    seconds,
                    minute_type,
                },
            });
            number += 1;
        }
    }
    planned
}

/// Whether a time falls on a Saturday or Sunday (UTC).
pub fn is_weekend(at: Timestamp) -> bool {
    DateTime::from_timestamp_millis(at)
        .is_some_and(|time| matches!(time.weekday(), Weekday::Sat | Weekday::Sun))
}

/// The weight of each working hour: even, but for a lunch dip at 12:00.
fn hour_weight(hour: u32) -> f64 {
    if hour == 12 { 0.5 } else { 1.0 }
}

/// When in its day a call starts (milliseconds after midnight): in working hours,
/// but for the after-hours share spread evenly over the other hours.
pub fn time_of_day(rng: &mut impl Rng, calls: &Calls) -> Timestamp {
    let [from, to] = calls.working_hours;
    let outside = 24 - (to - from);
    let hour = if outside > 0 && rng.random::<f64>() < calls.after_hours_share {
        let pick = rng.random_range(0..outside);
        if pick < from {
            pick
        } else {
            pick + (to - from)
        }
    } else {
        let total: f64 = (from..to).map(hour_weight).sum();
        let mut left = rng.random::<f64>() * total;
        (from..to)
            .find(|&hour| {
                left -= hour_weight(hour);
                left < 0.0
            })
            .unwrap_or(to - 1)
    };
    Timestamp::from(hour) * HOUR + rng.random_range(0..HOUR)
}

/// A call's length: exponential around the mean, whole seconds, clamped.
fn call_length(rng: &mut impl Rng, calls: &Calls) -> i64 {
    let draw = -calls.mean_seconds * (1.0 - rng.random::<f64>()).ln();
    (draw.ceil() as i64).clamp(calls.min_seconds, calls.max_seconds)
}

/// A Poisson count: Knuth's method for small means, the normal approximation for
/// large ones.
fn poisson(rng: &mut impl Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let floor = (-mean).exp();
        let mut product = rng.random::<f64>();
        let mut count = 0;
        while product > floor {
            product *= rng.random::<f64>();
            count += 1;
        }
        return count;
    }
    let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mean + mean.sqrt() * normal).round().max(0.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_follow_the_hours_of_a_working_day() {
        let calls = Calls {
            after_hours_share: 0.05,
            working_hours: [8, 18],
            ..Calls::default()
        };
        let mut rng = stream(7, 99);
        let mut per_hour = [0u32; 24];
        for _ in 0..20_000 {
            let at = time_of_day(&mut rng, &calls);
            assert!((0..DAY).contains(&at));
            per_hour[(at / HOUR) as usize] += 1;
        }
        let working: u32 = per_hour[8..18].iter().sum();
        assert!(
            (18_700..=19_300).contains(&working),
            "{working} of 20000 in working hours"
        );
        // The lunch hour sees about half of a usual working hour.
        let lunch = f64::from(per_hour[12]) / f64::from(per_hour[10]);
        assert!((0.4..0.6).contains(&lunch), "lunch ratio {lunch}");
        assert!(per_hour[3] > 0 && per_hour[3] < per_hour[9] / 5);
    }

    #[test]
    fn weekends_see_fewer_calls() {
        let scenario = Scenario {
            days: 28,
            users: vec![user_group(10)],
            calls: Calls {
                weekend_share: 0.1,
                ..Calls::default()
            },
            ..Scenario::default()
        };
        let workload = generate(&scenario);
        let (weekend, weekday) =
            workload
                .planned
                .iter()
                .fold((0, 0), |(weekend, weekday), planned| {
                    if is_weekend(planned.at) {
                        (weekend + 1, weekday)
                    } else {
                        (weekend, weekday + 1)
                    }
                });
        // 8 weekend days at a tenth of 20 working days' volume.
        assert!(
            weekend * 10 < weekday,
            "{weekend} weekend calls, {weekday} weekday calls"
        );
        assert!(weekend > 0);
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic() {
        let scenario = Scenario {
            users: vec![user_group(3)],
            seed: 5,
            ..Scenario::default()
        };
        assert_eq!(generate(&scenario), generate(&scenario));
        let other = Scenario {
            seed: 6,
            ..scenario.clone()
        };
        assert_ne!(generate(&scenario).planned, generate(&other).planned);
        assert!(
            generate(&scenario)
                .planned
                .windows(2)
                .all(|pair| pair[0].at <= pair[1].at)
        );
    }

    #[test]
    fn poisson_counts_average_their_mean() {
        let mut rng = stream(1, 3);
        for mean in [0.5, 10.0, 80.0] {
            let total: u32 = (0..4_000).map(|_| poisson(&mut rng, mean)).sum();
            let average = f64::from(total) / 4_000.0;
            assert!(
                (average - mean).abs() < mean * 0.05 + 0.05,
                "mean {mean}: {average}"
            );
        }
    }

    fn user_group(count: u32) -> crate::scenario::Users {
        crate::scenario::Users {
            count,
            threshold: rust_decimal::Decimal::TEN,
            amount: rust_decimal::Decimal::TEN,
            mode: recharge_policy_sdk::model::Mode::Fixed,
            monthly_limit: None,
        }
    }
}
