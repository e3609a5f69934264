//! A keyed pseudo-random permutation of `[0, n)`, computed one element at a time in O(1)
//! memory: a balanced Feistel network over the smallest even power of two at or above `n`,
//! with cycle walking (an output at or above `n` is fed through again until it lands in
//! range). Each Feistel network is a bijection of its power-of-two domain, and cycle walking
//! restricts a bijection to `[0, n)`, so the result is a bijection of `[0, n)` whatever `n`.
//!
//! The scanner orders its probes with it: position `i` of the scan sends probe `get(i)`.

/// Feistel rounds; four make the order look random for scanning (not for cryptography).
const ROUNDS: usize = 4;

/// A permutation of `[0, n)` chosen by a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutation {
    n: u64,
    half: u32,
    mask: u64,
    keys: [u64; ROUNDS],
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fast hasher for maps keyed by our own targets' addresses (FxHash's fold, finished
/// with [`mix`]); not for keys an attacker picks.
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// A map keyed by target addresses, hashed with [`AddrHasher`].
pub type AddrMap<V> =
    std::collections::HashMap<std::net::IpAddr, V, std::hash::BuildHasherDefault<AddrHasher>>;

impl Permutation {
    /// The permutation of `[0, n)` for `seed` (`n` at most 2^62).
    pub fn new(n: u64, seed: u64) -> Permutation {
        let n = n.min(1 << 62);
        // Bits of the whole domain, rounded up to even, at least 2.
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let half = bits.div_ceil(2);
        let mut keys = [0; ROUNDS];
        let mut s = seed;
        for k in &mut keys {
            s = mix(s);
            *k = s;
        }
        Permutation {
            n,
            half,
            mask: (1u64 << half) - 1,
            keys,
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn round(&self, k: usize, x: u64) -> u64 {
        mix(x ^ self.keys[k]) & self.mask
    }

    fn forward(&self, x: u64) -> u64 {
        let (mut l, mut r) = (x >> self.half, x & self.mask);
        for k in 0..ROUNDS {
            let next = l ^ self.round(k, r);
            l = r;
            r = next;
        }
        (l << self.half) | r
    }

    fn backward(&self, x: u64) -> u64 {
        let (mut l, mut r) = (x >> self.half, x & self.mask);
        for k in (0..ROUNDS).rev() {
            let prev = r ^ self.round(k, l);
            r = l;
            l = prev;
        }
        (l << self.half) | r
    }

    /// The element at position `i` (`i < len()`).
    pub fn get(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = self.forward(i);
        // The domain is under 4n, so this walks fewer than 4 steps on average; it ends,
        // as the cycle through i holds an element below n (i itself).
        while x >= self.n {
            x = self.forward(x);
        }
        x
    }

    /// The position of element `x` (`x < len()`): `index(get(i)) == i`.
    pub fn index(&self, x: u64) -> u64 {
        debug_assert!(x < self.n);
        let mut i = self.backward(x);
        while i >= self.n {
            i = self.backward(i);
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_bijection(n: u64, seed: u64) -> bool {
        let p = Permutation::new(n, seed);
        let mut seen = vec![false; n as usize];
        for i in 0..n {
            let x = p.get(i);
            if x >= n || seen[x as usize] || p.index(x) != i {
                return false;
            }
            seen[x as usize] = true;
        }
        true
    }

    #[test]
    fn small_and_prime_sizes() {
        for n in [
            1, 2, 3, 4, 5, 7, 8, 31, 97, 65_521, 65_535, 65_536, 327_680, 999_983,
        ] {
            assert!(is_bijection(n, 7), "{n}");
        }
    }

    #[test]
    fn the_largest_target_set_times_ten_ports() {
        // 2^24 hosts x 10 ports: sampled in both directions (the full walk is for the
        // release test below).
        let n = (1u64 << 24) * 10;
        let p = Permutation::new(n, 42);
        for k in 0..200_000u64 {
            let i = mix(k) % n;
            let x = p.get(i);
            assert!(x < n);
            assert_eq!(p.index(x), i);
        }
    }

    #[test]
    #[cfg_attr(debug_assertions, ignore = "walks 167M elements: run with --release")]
    fn the_largest_target_set_times_ten_ports_in_full() {
        assert!(is_bijection((1u64 << 24) * 10, 42));
    }

    #[test]
    fn seeds_give_different_orders_and_the_same_seed_the_same() {
        let a: Vec<u64> = (0..100).map(|i| Permutation::new(100, 1).get(i)).collect();
        let b: Vec<u64> = (0..100).map(|i| Permutation::new(100, 2).get(i)).collect();
        let c: Vec<u64> = (0..100).map(|i| Permutation::new(100, 1).get(i)).collect();
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn neighbours_are_spread() {
        // Of 4096 hosts x 5 ports (probe = host * 5 + port), consecutive probes go to the
        // same host about as rarely as chance has it.
        let n = 4096 * 5;
        let p = Permutation::new(n, 9);
        let same = (1..n).filter(|&i| p.get(i) / 5 == p.get(i - 1) / 5).count();
        assert!(same < 20, "{same} consecutive probes to one host");
    }

    proptest! {
        #[test]
        fn any_size_is_a_bijection(n in 1u64..20_000, seed: u64) {
            prop_assert!(is_bijection(n, seed));
        }
    }
}
