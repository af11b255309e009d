//! The recording engine.
//!
//! Data flow: shard threads ([`shard`]) accept connections and drive sans-IO ingest
//! sessions ([`ingest`]); frames go to per-recording tasks ([`recorder`]) that mux
//! (edgerec-mux) and write through the shard's io_uring ([`writer`]); finished parts
//! are committed to the sled [`index`]. The control plane talks to all of it through
//! [`Engine`], over channels.

pub mod config;
pub mod index;
pub mod naming;
pub mod policy;
pub mod units;
