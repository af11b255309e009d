//! Per-extension counters for the API: calls, failures by kind, time
//! percentiles over the most recent calls, fuel used.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Calls kept for the percentiles.
const WINDOW: usize = 1024;

#[derive(Default)]
pub struct Stats {
    pub calls: u64,
    pub failures: u64,
    pub failures_in_a_row: u32,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub fuel_used: u64,
    pub last_error: Option<String>,
    recent_us: Vec<u32>,
    next: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatsView {
    pub calls: u64,
    pub failures: u64,
    pub failures_in_a_row: u32,
    pub failures_by_kind: BTreeMap<&'static str, u64>,
    pub fuel_used: u64,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    pub last_error: Option<String>,
}

impl Stats {
    pub fn record(&mut self, took: Duration, fuel: u64, failure: Option<(&'static str, String)>) {
        self.calls += 1;
        self.fuel_used = self.fuel_used.saturating_add(fuel);
        let us = took.as_micros().min(u128::from(u32::MAX)) as u32;
        if self.recent_us.len() < WINDOW {
            self.recent_us.push(us);
        } else {
            self.recent_us[self.next] = us;
        }
        self.next = (self.next + 1) % WINDOW;
        match failure {
            None => self.failures_in_a_row = 0,
            Some((kind, message)) => {
                self.failures += 1;
                self.failures_in_a_row += 1;
                *self.by_kind.entry(kind).or_default() += 1;
                self.last_error = Some(message);
            }
        }
    }

    pub fn view(&self) -> StatsView {
        let mut sorted = self.recent_us.clone();
        sorted.sort_unstable();
        let pct =
            |p: usize| (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) * p).div_ceil(100)]);
        StatsView {
            calls: self.calls,
            failures: self.failures,
            failures_in_a_row: self.failures_in_a_row,
            failures_by_kind: self.by_kind.clone(),
            fuel_used: self.fuel_used,
            p50_us: pct(50),
            p99_us: pct(99),
            last_error: self.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_failure_runs() {
        let mut s = Stats::default();
        for us in 1..=100 {
            s.record(Duration::from_micros(us), 10, None);
        }
        s.record(Duration::from_micros(5), 1, Some(("timeout", "t".into())));
        s.record(Duration::from_micros(5), 1, Some(("timeout", "t".into())));
        let v = s.view();
        assert_eq!(v.calls, 102);
        assert_eq!(v.failures_in_a_row, 2);
        assert_eq!(v.failures_by_kind["timeout"], 2);
        assert_eq!(v.p50_us, Some(50));
        assert_eq!(v.p99_us, Some(99));
        s.record(Duration::from_micros(5), 1, None);
        assert_eq!(s.view().failures_in_a_row, 0);
    }
}
