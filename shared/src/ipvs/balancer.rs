//! One virtual server's live balancing state for the userspace data path: the scheduler,
//! connection counts per real server (for lc, wlc, sed, nq) and client affinity with its
//! timeout. Time is an input, so the whole behaviour is testable without a clock.

use super::maglev::MaglevError;
use super::model::{RealServer, VirtualServer};
use super::scheduler::{Dest, Flow, Scheduler};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// At most this many remembered clients per virtual server; the oldest are forgotten first
/// when a flood of new clients arrives, so memory stays bounded.
pub const MAX_AFFINITY_ENTRIES: usize = 65_536;

/// Balancing state of one virtual server.
#[derive(Debug)]
pub struct Balancer {
    servers: Vec<RealServer>,
    dests: Vec<Dest>,
    scheduler: Scheduler,
    affinity: Option<Duration>,
    /// Client → (real server index, expiry).
    clients: HashMap<IpAddr, (usize, Instant)>,
}

impl Balancer {
    pub fn new(vs: &VirtualServer) -> Result<Self, MaglevError> {
        let dests: Vec<Dest> = vs.real_servers.iter().map(RealServer::dest).collect();
        Ok(Balancer {
            scheduler: Scheduler::new(vs.scheduler, &dests)?,
            servers: vs.real_servers.clone(),
            dests,
            affinity: vs.affinity,
            clients: HashMap::new(),
        })
    }

    /// Take a new definition of the virtual server, keeping the connection counts and the
    /// affinity of real servers that remain (a client stays where it was if it still can).
    /// An unchanged definition changes nothing: the data path hands every virtual server its
    /// definition on every snapshot, and restarting the scheduler each time would skew the
    /// rotation of rr and wrr toward the first real servers (and rebuild Maglev tables).
    pub fn update(&mut self, vs: &VirtualServer) -> Result<(), MaglevError> {
        if self.servers == vs.real_servers
            && self.scheduler.kind() == vs.scheduler
            && self.affinity == vs.affinity
        {
            return Ok(());
        }
        let mut next = Balancer::new(vs)?;
        for d in &mut next.dests {
            if let Some(old) = self.dests.iter().find(|o| o.id == d.id) {
                d.active = old.active;
                d.inactive = old.inactive;
            }
        }
        for (client, (idx, expiry)) in self.clients.drain() {
            let id = &self.dests[idx].id;
            if let Some(new_idx) = next.dests.iter().position(|d| &d.id == id) {
                next.clients.insert(client, (new_idx, expiry));
            }
        }
        *self = next;
        Ok(())
    }

    /// The real server for a new connection from `flow.src` at `now`, counted as active.
    pub fn pick(&mut self, now: Instant, flow: &Flow) -> Option<(usize, &RealServer)> {
        let idx = match self.affinity.and_then(|_| self.clients.get(&flow.src)) {
            Some(&(idx, expiry)) if expiry > now && self.dests[idx].weight > 0 => idx,
            _ => self.scheduler.pick(flow, &self.dests)?,
        };
        if let Some(timeout) = self.affinity {
            if self.clients.len() >= MAX_AFFINITY_ENTRIES && !self.clients.contains_key(&flow.src) {
                self.clients.retain(|_, (_, e)| *e > now);
                if self.clients.len() >= MAX_AFFINITY_ENTRIES {
                    // Still full of live clients: forget the one closest to expiry.
                    if let Some(victim) = self
                        .clients
                        .iter()
                        .min_by_key(|(_, (_, e))| *e)
                        .map(|(k, _)| *k)
                    {
                        self.clients.remove(&victim);
                    }
                }
            }
            self.clients.insert(flow.src, (idx, now + timeout));
        }
        self.dests[idx].active += 1;
        Some((idx, &self.servers[idx]))
    }

    /// The identity of real server `idx` as [`Balancer::pick`] numbers them.
    pub fn id(&self, idx: usize) -> &str {
        &self.dests[idx].id
    }

    /// A connection to real server `idx` (by the id it had when picked) has closed.
    pub fn closed(&mut self, id: &str) {
        if let Some(d) = self.dests.iter_mut().find(|d| d.id == id) {
            d.active = d.active.saturating_sub(1);
        }
    }

    /// Current active connection counts, by real server id.
    pub fn active(&self) -> Vec<(String, u32)> {
        self.dests
            .iter()
            .map(|d| (d.id.clone(), d.active))
            .collect()
    }

    /// Whether a real server with this id is (still) part of the virtual server.
    pub fn has(&self, id: &str) -> bool {
        self.dests.iter().any(|d| d.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

#[cfg(test)]
mod tests;
