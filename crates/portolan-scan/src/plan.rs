//! The order of a scan: which hosts, in which blocks, and which share of them one shard
//! takes.
//!
//! The hosts of the target set are put in the order of a keyed permutation (the seed).
//! Shard `i` of `n` takes every `n`-th host of that order, starting at the `i`-th: the
//! shards are disjoint, and together they hold every host once. A shard's hosts are
//! scanned in blocks of consecutive positions; inside a block, the (host, port) probes go
//! out in the order of a second permutation, so consecutive probes go to different hosts
//! and different ports. A block is the unit of progress a resume file records.

use std::net::IpAddr;

use crate::perm::{Permutation, mix};
use crate::target::TargetSet;

/// Probes one block holds at most; bounds the memory of the blocks in flight.
pub const BLOCK_PROBES: u64 = 1 << 16;

/// Hosts one block holds at most.
pub const BLOCK_HOSTS: u64 = 2048;

/// One shard of `count` (`index` from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

/// The default seed: a digest of the targets and the ports, so that copies of one command
/// line (the shards of one scan) agree on the order without being told a seed.
pub fn default_seed(targets: &TargetSet, tcp: &[u16], udp: &[u16]) -> u64 {
    let mut h = targets.digest();
    for &p in tcp {
        h = mix(h ^ u64::from(p));
    }
    h = mix(h ^ 0x5544_5000);
    for &p in udp {
        h = mix(h ^ u64::from(p));
    }
    h
}

/// The hosts of one shard, in blocks.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    targets: &'a TargetSet,
    order: Permutation,
    shard: Shard,
    /// Hosts in this shard.
    hosts: u64,
    /// Hosts per block.
    block: u64,
    seed: u64,
}

impl<'a> Plan<'a> {
    /// `per_host`: probes each host gets (sizes the blocks).
    pub fn new(targets: &'a TargetSet, seed: u64, shard: Shard, per_host: usize) -> Plan<'a> {
        let all = targets.len();
        let count = shard.count.max(1);
        let hosts = if shard.index < all {
            (all - shard.index).div_ceil(count)
        } else {
            0
        };
        Plan {
            targets,
            order: Permutation::new(all, seed),
            shard: Shard {
                index: shard.index,
                count,
            },
            hosts,
            block: (BLOCK_PROBES / per_host.max(1) as u64).clamp(1, BLOCK_HOSTS),
            seed,
        }
    }

    /// Hosts in this shard.
    pub fn hosts(&self) -> u64 {
        self.hosts
    }

    /// Blocks in this shard.
    pub fn blocks(&self) -> u64 {
        self.hosts.div_ceil(self.block)
    }

    /// The hosts of block `b`, in probe order.
    pub fn block(&self, b: u64) -> Vec<IpAddr> {
        let first = b * self.block;
        let last = (first + self.block).min(self.hosts);
        (first..last)
            .filter_map(|k| {
                let pos = self.shard.index + k * self.shard.count;
                self.targets.nth(self.order.get(pos))
            })
            .collect()
    }

    /// The seed of block `b`'s probe order.
    pub fn block_seed(&self, b: u64) -> u64 {
        mix(self.seed ^ mix(b ^ 0x0062_6c6f_636b))
    }

    /// How many hosts the blocks before `b` hold.
    pub fn hosts_before(&self, b: u64) -> u64 {
        (b * self.block).min(self.hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use std::collections::BTreeSet;

    fn set(t: &str) -> TargetSet {
        TargetSet::build(&[Target::parse(t).unwrap()], &[], false).unwrap()
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_host_once() {
        let targets = set("198.18.0.0/22");
        let all: BTreeSet<IpAddr> = targets.iter().collect();
        for n in [1u64, 2, 3, 7, 1024, 1500] {
            let mut seen = Vec::new();
            for i in 0..n {
                let plan = Plan::new(&targets, 5, Shard { index: i, count: n }, 3);
                for b in 0..plan.blocks() {
                    seen.extend(plan.block(b));
                }
            }
            assert_eq!(seen.len(), all.len(), "{n} shards");
            assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all, "{n} shards");
        }
    }

    #[test]
    fn blocks_are_bounded_and_the_seed_is_shared() {
        let targets = set("198.18.0.0/16");
        let plan = Plan::new(&targets, 1, Shard::default(), 5);
        assert_eq!(plan.blocks(), 32);
        assert_eq!(plan.block(0).len(), BLOCK_HOSTS as usize);
        let wide = Plan::new(&targets, 1, Shard::default(), 1000);
        assert_eq!(wide.block(0).len(), (BLOCK_PROBES / 1000) as usize);
        let single = set("198.18.0.1");
        let one = Plan::new(&single, 1, Shard::default(), 65535);
        assert_eq!((one.blocks(), one.block(0).len()), (1, 1));
        let a = default_seed(&targets, &[22, 80], &[]);
        assert_eq!(a, default_seed(&set("198.18.0.0/16"), &[22, 80], &[]));
        assert_ne!(a, default_seed(&targets, &[22, 81], &[]));
        assert_ne!(a, default_seed(&targets, &[], &[22, 80]));
    }
}
