//! Stateless pseudo-random numbers: every value is a pure function of its coordinates, so any bar
//! of any day can be generated without generating the ones before it.

/// The SplitMix64 finaliser: a fast, well-mixed 64-bit permutation.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a sequence of words into one.
pub(crate) fn hash(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x6A09_E667_F3BC_C909, |acc, &w| mix(acc ^ mix(w)))
}

/// FNV-1a over bytes, for turning a ticker into a word.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |acc, &b| {
        (acc ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// A uniform number in `[0, 1)` from the high 53 bits of a word.
pub(crate) fn unit(word: u64) -> f64 {
    (word >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Two uniform numbers in `[0, 1)` from the two halves of a word (32 bits of precision each).
pub(crate) fn unit_pair(word: u64) -> (f64, f64) {
    let scale = 1.0 / 4_294_967_296.0;
    (
        (word >> 32) as f64 * scale,
        (word & 0xFFFF_FFFF) as f64 * scale,
    )
}

/// An approximately standard normal number (Irwin-Hall with four terms, rescaled) from two words.
pub(crate) fn normal(a: u64, b: u64) -> f64 {
    let (u1, u2) = unit_pair(a);
    let (u3, u4) = unit_pair(b);
    (u1 + u2 + u3 + u4 - 2.0) * 3f64.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_stay_in_range_and_normals_are_centred() {
        let mut sum = 0.0;
        let mut sum_sq = 0.0;
        let n = 100_000;
        for i in 0..n {
            let u = unit(mix(i));
            assert!((0.0..1.0).contains(&u));
            let z = normal(mix(i), mix(i + n));
            sum += z;
            sum_sq += z * z;
        }
        let mean = sum / n as f64;
        let var = sum_sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn hashes_depend_on_every_word_and_their_order() {
        assert_ne!(hash(&[1, 2]), hash(&[2, 1]));
        assert_ne!(hash(&[1, 2]), hash(&[1, 3]));
        assert_eq!(hash(&[1, 2]), hash(&[1, 2]));
        assert_ne!(fnv(b"AAPL"), fnv(b"AAPM"));
    }
}
