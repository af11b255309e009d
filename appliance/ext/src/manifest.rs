//! `extension.toml`: what the daemon needs to know about a component besides
//! its bytes (id, world, default config, limits, webhook and HTTP prefixes). Operators'
//! `[[extensions]]` entries use the same fields and override the manifest's.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::extension::ExtensionSpec;
use crate::limits::LimitOverrides;
use crate::world::World;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub world: Option<World>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: LimitOverrides,
    #[serde(default)]
    pub webhook_allow: Vec<String>,
    #[serde(default)]
    pub http_allow: Vec<String>,
    pub failure_limit: Option<u32>,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Lays what this manifest sets over `spec` (an upload replacing an
    /// extension): world, limits and failure limit where given, config key by
    /// key, webhook prefixes added. The id stays the spec's.
    pub fn apply_to(self, spec: &mut ExtensionSpec) {
        if let Some(w) = self.world {
            spec.world = w;
        }
        for (k, v) in self.config {
            spec.config.retain(|(key, _)| *key != k);
            spec.config.push((k, v));
        }
        let l = &mut spec.limits;
        l.fuel = self.limits.fuel.or(l.fuel);
        l.deadline_ms = self.limits.deadline_ms.or(l.deadline_ms);
        l.memory_bytes = self.limits.memory_bytes.or(l.memory_bytes);
        for p in self.webhook_allow {
            if !spec.webhook_allow.contains(&p) {
                spec.webhook_allow.push(p);
            }
        }
        for p in self.http_allow {
            if !spec.http_allow.contains(&p) {
                spec.http_allow.push(p);
            }
        }
        if let Some(n) = self.failure_limit {
            spec.failure_limit = n;
        }
    }

    /// The spec for loading, with `config` overriding the manifest's key by key.
    pub fn spec(&self, config: &BTreeMap<String, String>) -> Result<ExtensionSpec, String> {
        let world = self
            .world
            .ok_or_else(|| format!("extension {}: no world", self.id))?;
        let mut merged = self.config.clone();
        merged.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut spec = ExtensionSpec::new(self.id.clone(), world);
        spec.config = merged.into_iter().collect();
        spec.limits = self.limits;
        spec.webhook_allow = self.webhook_allow.clone();
        spec.http_allow = self.http_allow.clone();
        if let Some(n) = self.failure_limit {
            spec.failure_limit = n;
        }
        Ok(spec)
    }
}
