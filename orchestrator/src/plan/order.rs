//! The order of a plan: which services start together ([`waves`]) and which must follow a
//! changed one ([`dependents`]).

use super::{Service, ServicePlan};

/// Groups services into waves: each wave's dependencies are all in earlier waves, so a wave's
/// services start in parallel.
pub fn waves(services: &[ServicePlan]) -> Vec<Vec<Service>> {
    let mut done: Vec<Service> = Vec::new();
    let mut waves = Vec::new();
    let distinct = {
        let mut all: Vec<Service> = services.iter().map(|s| s.service).collect();
        all.sort();
        all.dedup();
        all.len()
    };
    while done.len() < distinct {
        let mut wave: Vec<Service> = services
            .iter()
            .filter(|s| !done.contains(&s.service))
            .filter(|s| s.depends_on.iter().all(|d| done.contains(d)))
            .map(|s| s.service)
            .collect();
        wave.dedup();
        assert!(!wave.is_empty(), "the plan has a dependency cycle");
        done.extend(&wave);
        waves.push(wave);
    }
    waves
}

/// Every service that depends on one of `changed`, directly or through others.
pub fn dependents(services: &[ServicePlan], changed: &[Service]) -> Vec<Service> {
    let mut found: Vec<Service> = Vec::new();
    let mut frontier: Vec<Service> = changed.to_vec();
    while let Some(service) = frontier.pop() {
        for s in services {
            if s.depends_on.contains(&service)
                && !found.contains(&s.service)
                && !changed.contains(&s.service)
            {
                found.push(s.service);
                frontier.push(s.service);
            }
        }
    }
    found.sort();
    found
}
